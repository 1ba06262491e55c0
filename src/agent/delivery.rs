//! Per-route settings of the requests to the local service: `--timeout`,
//! `--forward-ca-cert` and `--header`, or the same keys of a `[[route]]`.

use std::path::PathBuf;
use std::time::Duration;

use http::{HeaderName, HeaderValue};

/// Default longest wait for the local service's response head, per attempt.
pub const DEFAULT_TIMEOUT_SECS: f64 = 60.0;
/// The longest `--timeout` accepted, in seconds (one day).
pub const MAX_TIMEOUT_SECS: f64 = 86_400.0;

/// How requests to one local service are made.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliverySettings {
    /// Longest one attempt may take (connect, send, response head).
    pub timeout: Duration,
    /// A PEM CA to trust for an https:// service instead of the web PKI roots.
    pub ca_cert: Option<PathBuf>,
    /// Headers set on every forwarded request (replacing the event's own of that name).
    pub headers: Vec<ExtraHeader>,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            timeout: Duration::from_secs_f64(DEFAULT_TIMEOUT_SECS),
            ca_cert: None,
            headers: Vec::new(),
        }
    }
}

/// Checks a `--timeout` in seconds.
pub fn check_timeout(secs: f64) -> Result<Duration, String> {
    if secs.is_finite() && secs > 0.0 && secs <= MAX_TIMEOUT_SECS {
        Ok(Duration::from_secs_f64(secs))
    } else {
        Err(format!(
            "must be a number of seconds above 0 and at most {MAX_TIMEOUT_SECS}"
        ))
    }
}

/// One header added to every forwarded request. Its value may be a secret (an internal
/// auth token): it is marked sensitive and never shown by `Debug` or in logs.
#[derive(Clone, PartialEq, Eq)]
pub struct ExtraHeader {
    /// The header's name.
    pub name: HeaderName,
    /// Its value (marked sensitive: never logged).
    pub value: HeaderValue,
}

impl std::fmt::Debug for ExtraHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: <redacted>", self.name)
    }
}

impl ExtraHeader {
    /// A header from its name and value.
    pub fn new(name: &str, value: &str) -> Result<ExtraHeader, String> {
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| format!("{:?} is not a valid header name", name.trim()))?;
        if is_reserved(&name) {
            return Err(format!("{name} is set by the agent itself"));
        }
        let mut value = HeaderValue::from_str(value.trim())
            .map_err(|_| format!("the value of {name} is not a valid header value"))?;
        value.set_sensitive(true);
        Ok(ExtraHeader { name, value })
    }

    /// Parses `Name: value` (the error never echoes the value).
    pub fn parse(text: &str) -> Result<ExtraHeader, String> {
        let (name, value) = text
            .split_once(':')
            .ok_or_else(|| "expected 'Name: value'".to_string())?;
        ExtraHeader::new(name, value)
    }
}

/// Headers that describe the connection or the body, which the agent sets itself.
fn is_reserved(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "host" | "content-length" | "transfer-encoding" | "connection" | "te" | "upgrade"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_parse_and_are_redacted() {
        let h = ExtraHeader::parse("X-Internal-Token:  s3cret ").expect("parses");
        assert_eq!(
            (h.name.as_str(), h.value.as_bytes()),
            ("x-internal-token", &b"s3cret"[..])
        );
        assert!(h.value.is_sensitive());
        assert!(!format!("{h:?}").contains("s3cret"));
        for bad in ["no colon", "bad name: v", "Host: x", "X-A: a\nb"] {
            let e = ExtraHeader::parse(bad).unwrap_err();
            assert!(!e.contains("a\nb"), "{e}");
        }
    }

    #[test]
    fn timeouts_are_checked() {
        assert_eq!(check_timeout(0.5), Ok(Duration::from_millis(500)));
        for bad in [0.0, -1.0, f64::NAN, 1e9] {
            assert!(check_timeout(bad).is_err(), "{bad}");
        }
    }
}
