//! hookrelay: a self-hosted webhook relay.
//!
//! The modules follow the data flow of one event:
//!
//! ```text
//! provider ─▶ ingest (limits, allowlist, rate limit) ─▶ verify (signature) ─▶ log (append + fsync)
//!          ◀─ 200 {"offset": N}
//! log ─▶ stream (WebSocket, relay side) ─▶ agent (private side) ─▶ forward (HTTP to the local service)
//! ```
//!
//! `config` loads and validates `config.toml`, `server` wires the HTTP routes and TLS,
//! `admin` is the read API, `protocol` is the wire format between `stream` and `agent`,
//! and `cli` is the command-line edge (the only place that uses `anyhow`).

pub mod admin;
pub mod admin_cli;
pub mod admin_groups;
pub mod agent;
pub mod api_error;
pub mod bench;
pub mod cli;
pub mod config;
pub mod forward;
pub mod ingest;
pub mod log;
pub mod maintenance;
pub mod metrics;
pub mod progress;
pub mod protocol;
pub mod ratelimit;
pub mod send;
pub mod server;
pub mod shutdown;
pub mod stream;
pub mod verify;

/// Current unix time in milliseconds; the only wall clock read in the crate, so that
/// callers that need a deterministic time can pass their own instead.
pub fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
