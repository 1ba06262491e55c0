//! How a session ends, and which of the relay's refusals end the whole run: a refusal
//! no reconnect fixes (a bad token, an unknown channel) is fatal (exit code 2);
//! anything else is a lost connection that the supervisor dials again.

use super::clip::{clip, MAX_RELAY_CODE_BYTES, MAX_RELAY_MESSAGE_BYTES};
use super::sub::Sub;
use crate::common::protocol::codes;

/// Subscription refusals that no reconnect can fix.
const FATAL_SUB_CODES: &[&str] = &[
    "unauthorized",
    codes::FORBIDDEN_CHANNEL,
    codes::UNKNOWN_CHANNEL,
    codes::INVALID_GROUP,
    codes::OFFSET_COMPACTED,
    codes::OFFSET_OUT_OF_RANGE,
];
/// Connection refusals that no reconnect can fix.
const FATAL_CONN_CODES: &[&str] = &["unauthorized", codes::UNSUPPORTED_VERSION];

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEnd {
    /// Every subscription finished (reads ended, limits reached).
    Finished,
    /// Shutdown was requested and the session drained.
    Shutdown,
    /// Stdout was closed (tail into `head`).
    OutputClosed,
    /// The relay refused something no retry fixes.
    Fatal(String),
    /// The connection was lost; reconnecting may help.
    Lost(String),
}

/// A session's end, and whether it got as far as a subscription (which resets the
/// reconnect backoff).
#[derive(Debug)]
pub struct SessionResult {
    /// How the session ended.
    pub end: SessionEnd,
    /// Whether the relay had welcomed the session (a reconnect resets the backoff).
    pub established: bool,
}

/// Maps an `Error` frame to how the session ends: fatal for a refusal no reconnect
/// fixes (of subscription `target`, or of the connection when there is none), lost
/// otherwise.
/// The relay's code and message are clipped ([`crate::agent::clip`]): they end up in
/// the log and in the run's final error.
pub fn refusal(target: Option<&Sub>, code: &str, message: &str) -> SessionEnd {
    let fatal = match target {
        Some(_) => FATAL_SUB_CODES.contains(&code),
        None => FATAL_CONN_CODES.contains(&code),
    };
    let code = clip(code, MAX_RELAY_CODE_BYTES);
    let message = clip(message, MAX_RELAY_MESSAGE_BYTES);
    match target {
        Some(t) if fatal => SessionEnd::Fatal(match t.group() {
            Some(g) => format!(
                "the relay refused channel {:?} (group {g:?}): {code}: {message}",
                t.channel
            ),
            None => format!(
                "the relay refused channel {:?}: {code}: {message}",
                t.channel
            ),
        }),
        None if fatal => SessionEnd::Fatal(format!(
            "the relay refused the connection: {code}: {message}"
        )),
        _ => SessionEnd::Lost(format!("the relay reported {code}: {message}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::sink::Handler;
    use crate::agent::sub::SubKind;

    fn sub(kind: SubKind) -> Sub {
        Sub {
            channel: "c".into(),
            kind,
            start: crate::common::protocol::Start::Earliest,
            window: 1,
            concurrency: 1,
            handler: Handler::Print,
            limit: None,
            delivered: 0,
            failed: 0,
            finished: false,
            until_ms: None,
            progress: None,
        }
    }

    #[test]
    fn refusals_no_retry_fixes_are_fatal() {
        let group = sub(SubKind::Group { group: "g".into() });
        let read = sub(SubKind::Read {
            to: None,
            follow: false,
        });
        let fatal = |end: SessionEnd| match end {
            SessionEnd::Fatal(m) => m,
            other => panic!("not fatal: {other:?}"),
        };
        let m = fatal(refusal(Some(&group), codes::UNKNOWN_CHANNEL, "no such"));
        assert_eq!(
            m,
            "the relay refused channel \"c\" (group \"g\"): unknown_channel: no such"
        );
        let m = fatal(refusal(Some(&read), codes::OFFSET_COMPACTED, "gone"));
        assert_eq!(m, "the relay refused channel \"c\": offset_compacted: gone");
        let m = fatal(refusal(None, "unauthorized", "bad token"));
        assert_eq!(
            m,
            "the relay refused the connection: unauthorized: bad token"
        );
        // Worth a reconnect: a relay shutting down, or a code that is about a
        // subscription but arrives without one.
        for (target, code) in [
            (Some(&group), codes::SHUTTING_DOWN),
            (None, codes::UNKNOWN_CHANNEL),
            (None, codes::IDLE_TIMEOUT),
        ] {
            assert!(
                matches!(refusal(target, code, "m"), SessionEnd::Lost(_)),
                "{code}"
            );
        }
    }

    #[test]
    fn the_relays_text_is_clipped() {
        let group = sub(SubKind::Group { group: "g".into() });
        let long = "m".repeat(1 << 20);
        let code = "c".repeat(1000);
        for end in [
            refusal(Some(&group), codes::UNKNOWN_CHANNEL, &long),
            refusal(None, &code, &long),
        ] {
            let (SessionEnd::Fatal(m) | SessionEnd::Lost(m)) = end else {
                panic!("{end:?}")
            };
            assert!(m.len() < 1024, "{} bytes", m.len());
            assert!(m.contains("… (1048576 bytes)"), "{m}");
        }
        let SessionEnd::Lost(m) = refusal(None, "internal", "a\nforged") else {
            panic!("not lost")
        };
        assert_eq!(m, "the relay reported internal: a\\nforged");
    }
}
