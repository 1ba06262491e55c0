//! The log options `serve` and `agent` share (`--log-format`, `--log-syslog`,
//! `--log-bodies`), and the body field of event log lines.
//!
//! Bodies are off by default: a webhook body is the provider's data (personal data,
//! order details) and a log is kept longer and read by more people than the service
//! it was meant for. When `--log-bodies` is on, the lines about an event carry its
//! body, clipped to [`LOG_BODY_MAX_BYTES`] and decoded as lossy UTF-8. Headers never
//! appear in log lines, so signatures and tokens stay out either way.

use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Args, ValueEnum};

/// The environment variable that sets `--log-format` (the flag wins).
pub const LOG_FORMAT_ENV: &str = "HOOKRELAY_LOG_FORMAT";
/// Most body bytes one log line carries with `--log-bodies`.
pub const LOG_BODY_MAX_BYTES: usize = 4 * 1024;

/// How stderr log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line, fields at the top level.
    Json,
}

/// The log flags of `serve` and `agent`.
#[derive(Debug, Clone, Default, Args)]
pub struct LogArgs {
    /// Format of the log on stderr: text or json (one object per line).
    #[arg(long, value_enum, env = LOG_FORMAT_ENV, default_value = "text")]
    pub log_format: LogFormat,
    /// Also send the log to syslog as RFC 5424 frames: udp://HOST:PORT or
    /// unix:/dev/log (a local datagram socket).
    #[arg(long, value_name = "TARGET")]
    pub log_syslog: Option<String>,
    /// Put event bodies (clipped to 4 KiB, lossy UTF-8) in the lines about events.
    #[arg(long)]
    pub log_bodies: bool,
}

static LOG_BODIES: AtomicBool = AtomicBool::new(false);

/// Turns body logging on or off for the process (`--log-bodies`).
pub fn set_log_bodies(on: bool) {
    LOG_BODIES.store(on, Ordering::Relaxed);
}

/// The `body` field of an event's log line: None unless `--log-bodies` is on.
pub fn body_field(body: &[u8]) -> Option<String> {
    LOG_BODIES.load(Ordering::Relaxed).then(|| clip_body(body))
}

/// `body` as lossy UTF-8, at most [`LOG_BODY_MAX_BYTES`] of it, marked when clipped.
pub fn clip_body(body: &[u8]) -> String {
    let head = body.get(..LOG_BODY_MAX_BYTES).unwrap_or(body);
    let mut text = String::from_utf8_lossy(head).into_owned();
    if head.len() < body.len() {
        text.push_str(&format!("…[{} more bytes]", body.len() - head.len()));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_clipped_and_lossy() {
        assert_eq!(clip_body(b"{\"a\":1}"), "{\"a\":1}");
        assert_eq!(clip_body(&[0x66, 0xff]), "f\u{fffd}");
        let big = vec![b'x'; LOG_BODY_MAX_BYTES + 10];
        let clipped = clip_body(&big);
        assert!(clipped.starts_with(&"x".repeat(LOG_BODY_MAX_BYTES)));
        assert!(clipped.ends_with("…[10 more bytes]"), "{clipped}");
    }
}
