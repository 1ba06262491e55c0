//! `--log-syslog`: the log as RFC 5424 syslog frames, one datagram per event, to a
//! UDP collector (`udp://HOST:PORT`) or the local syslog socket (`unix:/dev/log`).
//!
//! Why RFC 5424 over datagrams rather than journald's native protocol: it reaches
//! every collector (rsyslog, syslog-ng, Vector, Loki's syslog receiver, and journald
//! itself through /dev/log), and under systemd the stderr lines already land in the
//! journal, so a second journald path would add nothing. Each frame is
//! `<PRI>1 TIMESTAMP HOSTNAME hookrelay PID - [hookrelay@32473 k="v"...] MESSAGE`:
//! facility daemon, the event's fields as structured data (32473 is the example
//! enterprise number of RFC 5612), so a collector can index `channel`, `offset` and
//! `id` without parsing the message. A datagram that cannot be sent is dropped: a
//! log sink must never stall or fail the relay.

use std::fmt::Write as _;
use std::net::UdpSocket;
use std::os::unix::net::UnixDatagram;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

/// The APP-NAME of every frame.
pub const APP_NAME: &str = "hookrelay";
/// Syslog facility "daemon" (RFC 5424 §6.2.1).
const FACILITY_DAEMON: u8 = 3;
/// The SD-ID of the structured data element carrying the event's fields.
const SD_ID: &str = "hookrelay@32473";
/// Largest frame sent; longer messages are clipped (many collectors take 8 KiB).
pub const MAX_FRAME_BYTES: usize = 8 * 1024;

/// A `--log-syslog` value that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SyslogError {
    /// Neither `udp://HOST:PORT` nor `unix:PATH`.
    #[error("--log-syslog {0:?}: expected udp://HOST:PORT or unix:/dev/log")]
    BadTarget(String),
    /// The socket could not be opened or connected.
    #[error("--log-syslog {target}: {source}")]
    Connect {
        /// The target as given.
        target: String,
        /// Why.
        source: std::io::Error,
    },
}

/// Where frames go.
#[derive(Debug)]
enum Sink {
    Udp(UdpSocket),
    Unix(UnixDatagram),
}

/// The tracing layer that sends each event as one RFC 5424 frame.
#[derive(Debug)]
pub struct SyslogLayer {
    sink: Sink,
    hostname: String,
    pid: u32,
}

impl SyslogLayer {
    /// Opens the socket for `target` (`udp://HOST:PORT` or `unix:PATH`).
    pub fn connect(target: &str) -> Result<SyslogLayer, SyslogError> {
        let io = |source| SyslogError::Connect {
            target: target.to_string(),
            source,
        };
        let sink = if let Some(addr) = target.strip_prefix("udp://") {
            let socket = UdpSocket::bind(if addr.starts_with('[') {
                "[::]:0"
            } else {
                "0.0.0.0:0"
            })
            .map_err(io)?;
            socket.connect(addr).map_err(io)?;
            Sink::Udp(socket)
        } else if let Some(path) = target.strip_prefix("unix:") {
            let socket = UnixDatagram::unbound().map_err(io)?;
            socket.connect(path).map_err(io)?;
            Sink::Unix(socket)
        } else {
            return Err(SyslogError::BadTarget(target.to_string()));
        };
        Ok(SyslogLayer {
            sink,
            hostname: hostname(),
            pid: std::process::id(),
        })
    }

    fn send(&self, frame: &[u8]) {
        let _ = match &self.sink {
            Sink::Udp(s) => s.send(frame),
            Sink::Unix(s) => s.send(frame),
        };
    }
}

impl<S: Subscriber> Layer<S> for SyslogLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let header = Header {
            severity: severity(event.metadata().level()),
            timestamp: &crate::common::time::format_time_ms(crate::common::time::now_unix_ms()),
            hostname: &self.hostname,
            pid: self.pid,
        };
        self.send(frame(&header, &fields).as_bytes());
    }
}

/// The parts of a frame's header that change per event.
struct Header<'a> {
    severity: u8,
    timestamp: &'a str,
    hostname: &'a str,
    pid: u32,
}

/// An event's message and its other fields, as text.
#[derive(Default)]
struct Fields {
    message: String,
    params: Vec<(&'static str, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.push(field, format!("{value:?}"));
    }
}

impl Fields {
    fn push(&mut self, field: &Field, value: String) {
        if field.name() == "message" {
            self.message = value;
        } else {
            self.params.push((field.name(), value));
        }
    }
}

/// RFC 5424 severity of a tracing level.
fn severity(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

/// One frame: header, structured data, message; clipped to [`MAX_FRAME_BYTES`].
fn frame(h: &Header<'_>, fields: &Fields) -> String {
    let pri = FACILITY_DAEMON * 8 + h.severity;
    let mut out = format!(
        "<{pri}>1 {} {} {APP_NAME} {} - ",
        h.timestamp,
        header_field(h.hostname),
        h.pid
    );
    if fields.params.is_empty() {
        out.push('-');
    } else {
        out.push('[');
        out.push_str(SD_ID);
        for (name, value) in &fields.params {
            let _ = write!(out, " {}=\"{}\"", param_name(name), sd_escape(value));
        }
        out.push(']');
    }
    out.push(' ');
    out.push_str(&fields.message);
    clip(out)
}

/// Cuts `out` to [`MAX_FRAME_BYTES`] on a character boundary.
fn clip(mut out: String) -> String {
    if out.len() > MAX_FRAME_BYTES {
        let mut end = MAX_FRAME_BYTES;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
    }
    out
}

/// A header field: printable US-ASCII without spaces, at most 255 characters, or `-`.
fn header_field(value: &str) -> String {
    let clean: String = value
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(255)
        .collect();
    if clean.is_empty() {
        "-".into()
    } else {
        clean
    }
}

/// A PARAM-NAME: at most 32 printable ASCII characters other than `=`, `]`, `"`.
fn param_name(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_graphic() && !matches!(c, '=' | ']' | '"'))
        .take(32)
        .collect()
}

/// A PARAM-VALUE: `"`, `\` and `]` escaped with a backslash (RFC 5424 §6.3.3).
fn sd_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// This host's name for the HOSTNAME field (uname(2): no /proc needed, which a
/// hardened unit may hide); [`header_field`] turns an empty one into `-`.
fn hostname() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header<'static> {
        Header {
            severity: 6,
            timestamp: "2026-01-02T03:04:05.678Z",
            hostname: "box one",
            pid: 42,
        }
    }

    #[test]
    fn frames_follow_rfc5424() {
        let fields = Fields {
            message: "delivered".into(),
            params: vec![("channel", "gh".into()), ("id", "a\"b]c\\".into())],
        };
        assert_eq!(
            frame(&header(), &fields),
            "<30>1 2026-01-02T03:04:05.678Z boxone hookrelay 42 - \
             [hookrelay@32473 channel=\"gh\" id=\"a\\\"b\\]c\\\\\"] delivered"
        );
        let bare = Fields {
            message: "hi".into(),
            params: vec![],
        };
        assert!(frame(&header(), &bare).ends_with(" 42 - - hi"));
    }

    #[test]
    fn frames_are_clipped_on_a_char_boundary() {
        let fields = Fields {
            message: "é".repeat(MAX_FRAME_BYTES),
            params: vec![],
        };
        let f = frame(&header(), &fields);
        assert!(f.len() <= MAX_FRAME_BYTES && f.len() > MAX_FRAME_BYTES - 4);
    }

    #[test]
    fn bad_targets_are_refused() {
        for bad in ["tcp://x:1", "/dev/log", "udp://"] {
            assert!(SyslogLayer::connect(bad).is_err(), "{bad}");
        }
    }
}
