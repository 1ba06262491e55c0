//! The `[server]` table: where the relay listens, keeps its log, and how it treats
//! bodies, admin calls, TLS and agent streams.

use std::net::SocketAddr;
use std::path::PathBuf;

use toml::Spanned;

use super::defaults::{
    DEFAULT_BODY_TIMEOUT_SECS, DEFAULT_DATA_DIR, DEFAULT_DISK_RESERVE_BYTES,
    DEFAULT_FIRST_BYTE_TIMEOUT_SECS, DEFAULT_IDLE_TIMEOUT_SECS, DEFAULT_LISTEN,
    DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_INFLIGHT_BODY_BYTES,
    DEFAULT_STREAM_CONNECTION_BUFFER_BYTES, DEFAULT_STREAM_HEARTBEAT_SECS,
    DEFAULT_STREAM_IDLE_TIMEOUT_SECS, DEFAULT_STREAM_TOTAL_BUFFER_BYTES, MAX_STREAM_TIMER_SECS,
};
use super::raw::{RawServer, RawTls};
use super::source::{FileError, Source};
use super::tokens::{parse_tokens, TokenSet};

/// The validated `[server]` table.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address the relay listens on for webhooks, streams and admin calls.
    pub listen: SocketAddr,
    /// Directory of the relay's durable log (created if missing).
    pub data_dir: PathBuf,
    /// Largest webhook body accepted, in bytes; larger ones get 413 (25 MiB by default).
    pub max_body_bytes: usize,
    /// Bearer token(s) of the admin API; `None` disables it (every admin route is 404).
    pub admin_token: Option<TokenSet>,
    /// The base URL providers call (`https://relay.example.com`), for schemes that sign
    /// the URL; see [`super::public_url`].
    pub public_url: Option<String>,
    /// `[server.tls]`: serve HTTPS/WSS instead of plain HTTP when set.
    pub tls: Option<TlsConfig>,
    /// Seconds between the relay's `Ping`s on an agent stream (announced to the agent in
    /// `Welcome.heartbeat_secs`, which paces the agent's own pings and idle timeout).
    pub stream_heartbeat_secs: u64,
    /// Seconds without any frame after which the relay drops an agent stream with
    /// `idle_timeout`; always more than `stream_heartbeat_secs`.
    pub stream_idle_timeout_secs: u64,
    /// Free space, in bytes, that appends never eat into on the disk holding the data
    /// directory (webhooks get 503 instead, until space is freed).
    pub disk_reserve_bytes: u64,
    /// Bytes of events read for one agent connection and not yet written to it.
    pub stream_connection_buffer_bytes: usize,
    /// Bytes of events read for all agent connections and not yet written to them.
    pub stream_total_buffer_bytes: usize,
    /// Seconds for the TLS handshake and the first request head (see `relay::listen`).
    pub first_byte_timeout_secs: u64,
    /// Seconds a request body has to arrive whole (else 408 `request_timeout`).
    pub body_timeout_secs: u64,
    /// Seconds a keep-alive connection may sit idle between requests.
    pub idle_timeout_secs: u64,
    /// Most open HTTP connections; more are closed at once.
    pub max_connections: u64,
    /// Request body bytes buffered at once across all requests (else 503 with
    /// `Retry-After`).
    pub max_inflight_body_bytes: u64,
}

/// `[server.tls]`: PEM file paths, read when the relay starts.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// PEM certificate chain the relay presents.
    pub cert: PathBuf,
    /// PEM private key of `cert`.
    pub key: PathBuf,
    /// PEM CA bundle: when set, agent streams (`/v1/stream`) must present a client
    /// certificate signed by it; webhook posts need none.
    pub client_ca: Option<PathBuf>,
}

/// Validates `[server]`; every key has a default, and so does the whole table.
pub fn server(src: &Source, raw: Option<Spanned<RawServer>>) -> Result<ServerConfig, FileError> {
    let raw = raw.map(Spanned::into_inner);
    let raw = raw.as_ref();
    let listen = listen(src, raw.and_then(|r| r.listen.as_ref()))?;
    let max_body_bytes = match raw.and_then(|r| r.max_body_bytes.as_ref()) {
        Some(v) => src.positive(v, "server.max_body_bytes")? as usize,
        None => DEFAULT_MAX_BODY_BYTES,
    };
    let admin_token = match raw.and_then(|r| r.admin_token.as_ref()) {
        Some(t) => Some(parse_tokens(
            src,
            std::slice::from_ref(t),
            "server.admin_token",
        )?),
        None => None,
    };
    let (stream_heartbeat_secs, stream_idle_timeout_secs) = stream_timers(src, raw)?;
    let public_url = match raw.and_then(|r| r.public_url.as_ref()) {
        Some(u) => Some(
            super::public_url::check(u.get_ref())
                .map_err(|why| src.err(u.span(), "server.public_url", why))?,
        ),
        None => None,
    };
    ServerConfig {
        public_url,
        listen,
        data_dir: raw
            .and_then(|r| r.data_dir.as_ref())
            .map(|d| PathBuf::from(d.get_ref()))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
        max_body_bytes,
        admin_token,
        tls: raw.and_then(|r| r.tls.as_ref()).map(|t| tls(t.get_ref())),
        stream_heartbeat_secs,
        stream_idle_timeout_secs,
        stream_connection_buffer_bytes: DEFAULT_STREAM_CONNECTION_BUFFER_BYTES,
        stream_total_buffer_bytes: DEFAULT_STREAM_TOTAL_BUFFER_BYTES,
        first_byte_timeout_secs: DEFAULT_FIRST_BYTE_TIMEOUT_SECS,
        body_timeout_secs: DEFAULT_BODY_TIMEOUT_SECS,
        idle_timeout_secs: DEFAULT_IDLE_TIMEOUT_SECS,
        max_connections: DEFAULT_MAX_CONNECTIONS,
        max_inflight_body_bytes: DEFAULT_MAX_INFLIGHT_BODY_BYTES,
        disk_reserve_bytes: DEFAULT_DISK_RESERVE_BYTES,
    }
    .with_limits(src, raw)
}

impl ServerConfig {
    /// The byte budgets, connection limits and disk reserve written in `raw`.
    fn with_limits(self, src: &Source, raw: Option<&RawServer>) -> Result<ServerConfig, FileError> {
        Ok(ServerConfig {
            stream_connection_buffer_bytes: buffer(
                src,
                raw.and_then(|r| r.stream_connection_buffer_bytes.as_ref()),
                "server.stream_connection_buffer_bytes",
                DEFAULT_STREAM_CONNECTION_BUFFER_BYTES,
            )?,
            stream_total_buffer_bytes: buffer(
                src,
                raw.and_then(|r| r.stream_total_buffer_bytes.as_ref()),
                "server.stream_total_buffer_bytes",
                DEFAULT_STREAM_TOTAL_BUFFER_BYTES,
            )?,
            first_byte_timeout_secs: limit(
                src,
                raw.and_then(|r| r.first_byte_timeout_secs.as_ref()),
                "server.first_byte_timeout_secs",
                DEFAULT_FIRST_BYTE_TIMEOUT_SECS,
                MAX_STREAM_TIMER_SECS,
            )?,
            body_timeout_secs: limit(
                src,
                raw.and_then(|r| r.body_timeout_secs.as_ref()),
                "server.body_timeout_secs",
                DEFAULT_BODY_TIMEOUT_SECS,
                MAX_STREAM_TIMER_SECS,
            )?,
            idle_timeout_secs: limit(
                src,
                raw.and_then(|r| r.idle_timeout_secs.as_ref()),
                "server.idle_timeout_secs",
                DEFAULT_IDLE_TIMEOUT_SECS,
                MAX_STREAM_TIMER_SECS,
            )?,
            max_connections: limit(
                src,
                raw.and_then(|r| r.max_connections.as_ref()),
                "server.max_connections",
                DEFAULT_MAX_CONNECTIONS,
                u64::from(u32::MAX),
            )?,
            max_inflight_body_bytes: limit(
                src,
                raw.and_then(|r| r.max_inflight_body_bytes.as_ref()),
                "server.max_inflight_body_bytes",
                DEFAULT_MAX_INFLIGHT_BODY_BYTES,
                u64::MAX,
            )?,
            disk_reserve_bytes: match raw.and_then(|r| r.disk_reserve_bytes.as_ref()) {
                Some(v) => src.non_negative(v, "server.disk_reserve_bytes")?,
                None => DEFAULT_DISK_RESERVE_BYTES,
            },
            ..self
        })
    }
}

/// A positive value of at most `max` (timeouts stay within a day, like the stream
/// timers, so deadlines never overflow), or `default` when absent.
fn limit(
    src: &Source,
    v: Option<&Spanned<i64>>,
    key: &str,
    default: u64,
    max: u64,
) -> Result<u64, FileError> {
    let Some(v) = v else { return Ok(default) };
    let n = src.positive(v, key)?;
    if n > max {
        return Err(src.err(v.span(), key, format!("must be at most {max}")));
    }
    Ok(n)
}

/// A positive byte count, or `default` when absent.
fn buffer(
    src: &Source,
    v: Option<&Spanned<i64>>,
    key: &str,
    default: usize,
) -> Result<usize, FileError> {
    match v {
        Some(v) => src
            .positive(v, key)
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        None => Ok(default),
    }
}

fn listen(src: &Source, raw: Option<&Spanned<String>>) -> Result<SocketAddr, FileError> {
    match raw {
        Some(l) => l.get_ref().parse().map_err(|_| {
            src.err(
                l.span(),
                "server.listen",
                "expected an address like 127.0.0.1:8080",
            )
        }),
        None => Ok(DEFAULT_LISTEN
            .parse()
            .unwrap_or_else(|_| unreachable!("constant address parses"))),
    }
}

/// The files are read when the relay starts (and by `check`), not here.
fn tls(raw: &RawTls) -> TlsConfig {
    TlsConfig {
        cert: PathBuf::from(raw.cert.get_ref()),
        key: PathBuf::from(raw.key.get_ref()),
        client_ca: raw.client_ca.as_ref().map(|c| PathBuf::from(c.get_ref())),
    }
}

/// `server.stream_heartbeat_secs` and `server.stream_idle_timeout_secs`: positive, at
/// most [`MAX_STREAM_TIMER_SECS`], and the timeout longer than the heartbeat — else a
/// healthy but quiet agent would be dropped between two heartbeats.
fn stream_timers(src: &Source, raw: Option<&RawServer>) -> Result<(u64, u64), FileError> {
    let heartbeat = raw.and_then(|r| r.stream_heartbeat_secs.as_ref());
    let idle = raw.and_then(|r| r.stream_idle_timeout_secs.as_ref());
    let heartbeat_secs = match heartbeat {
        Some(v) => stream_timer(src, v, "server.stream_heartbeat_secs")?,
        None => DEFAULT_STREAM_HEARTBEAT_SECS,
    };
    let idle_secs = match idle {
        Some(v) => stream_timer(src, v, "server.stream_idle_timeout_secs")?,
        None => DEFAULT_STREAM_IDLE_TIMEOUT_SECS,
    };
    if idle_secs <= heartbeat_secs {
        // Point at the key that was written; with both written, at the timeout.
        let (span, key) = match (idle, heartbeat) {
            (Some(v), _) => (v.span(), "server.stream_idle_timeout_secs"),
            (None, Some(v)) => (v.span(), "server.stream_heartbeat_secs"),
            (None, None) => (0..0, "server.stream_idle_timeout_secs"),
        };
        return Err(src.err(
            span,
            key,
            format!(
                "stream_idle_timeout_secs ({idle_secs}) must be greater than \
                 stream_heartbeat_secs ({heartbeat_secs})"
            ),
        ));
    }
    Ok((heartbeat_secs, idle_secs))
}

fn stream_timer(src: &Source, v: &Spanned<i64>, key: &str) -> Result<u64, FileError> {
    let n = src.positive(v, key)?;
    if n > MAX_STREAM_TIMER_SECS {
        return Err(src.err(
            v.span(),
            key,
            format!("must be at most {MAX_STREAM_TIMER_SECS} (one day)"),
        ));
    }
    Ok(n)
}
