//! The values `config.toml` falls back to, and the bounds it is held to.

/// Default listen address of `serve`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default data directory of `serve`.
pub const DEFAULT_DATA_DIR: &str = "./data";
/// Default body limit in bytes (25 MiB): GitHub sends payloads of up to 25 MB and does
/// not redeliver one refused with 413 by itself.
pub const DEFAULT_MAX_BODY_BYTES: usize = 25 * 1024 * 1024;
/// Default timestamp tolerance in seconds for schemes that sign a timestamp.
pub const DEFAULT_TOLERANCE_SECS: u64 = 300;
/// Default dedup window in seconds (24 h).
pub const DEFAULT_DEDUP_WINDOW_SECS: u64 = 86_400;
/// Default seconds between the relay's heartbeats on an agent stream.
pub const DEFAULT_STREAM_HEARTBEAT_SECS: u64 = crate::common::protocol::HEARTBEAT_INTERVAL_SECS;
/// Default seconds of silence after which the relay drops an agent stream.
pub const DEFAULT_STREAM_IDLE_TIMEOUT_SECS: u64 = crate::common::protocol::IDLE_TIMEOUT_SECS;
/// Default bytes of events one agent connection may hold unsent (8 MiB).
pub const DEFAULT_STREAM_CONNECTION_BUFFER_BYTES: usize = 8 * 1024 * 1024;
/// Default bytes of events all agent connections together may hold unsent (256 MiB).
pub const DEFAULT_STREAM_TOTAL_BUFFER_BYTES: usize = 256 * 1024 * 1024;
/// Default seconds a new connection has for its TLS handshake and first request head
/// (and an HTTP/1 head for all of its bytes).
pub const DEFAULT_FIRST_BYTE_TIMEOUT_SECS: u64 = 10;
/// Default seconds a request body has to arrive whole.
pub const DEFAULT_BODY_TIMEOUT_SECS: u64 = 60;
/// Default seconds a keep-alive connection may sit idle between requests.
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 60;
/// Default most open HTTP connections (agent streams not counted once upgraded).
pub const DEFAULT_MAX_CONNECTIONS: u64 = 10_000;
/// Default request body bytes buffered at once across all requests (256 MiB).
pub const DEFAULT_MAX_INFLIGHT_BODY_BYTES: u64 = 256 * 1024 * 1024;
/// Upper bound for the stream timers (one day): longer makes no sense for a heartbeat,
/// and keeps every deadline computed from them far from overflowing.
pub const MAX_STREAM_TIMER_SECS: u64 = 86_400;
/// Most `[[channel]]` tables in one config: far beyond any real relay, and it bounds the
/// per-channel state (rate limiters, retention tasks) a config can ask for.
pub const MAX_CHANNELS: usize = 10_000;
/// Default free-space reserve of the data directory's disk (64 MiB): appends stop there
/// (503) rather than let the embedded log hit a full disk, which it cannot survive
/// in-process.
pub const DEFAULT_DISK_RESERVE_BYTES: u64 = 64 * 1024 * 1024;
