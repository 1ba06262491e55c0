//! The connection limits, read once from `[server]`.

use std::time::Duration;

use crate::common::config::ServerConfig;

/// A lingering close reads and discards at least this much, whatever the body limit.
pub const LINGER_MIN_BYTES: u64 = 16 * 1024 * 1024;
/// A lingering close ends after this long in any case.
pub const LINGER_TIMEOUT: Duration = Duration::from_secs(10);
/// ... or after this long without a byte from the client.
pub const LINGER_READ_IDLE: Duration = Duration::from_secs(2);

/// The limits every connection is held to (see [`crate::relay::listen`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// TLS handshake and first byte of a connection; each HTTP/1 head after its first byte.
    pub first_byte: Duration,
    /// Receiving a whole request body, from the end of its head.
    pub body: Duration,
    /// Between two requests; also a response the client does not read.
    pub idle: Duration,
    /// Open HTTP connections (upgraded agent streams not counted).
    pub max_connections: usize,
    /// Request body bytes held at once across all requests.
    pub max_inflight_body_bytes: u64,
    /// `max_body_bytes`: a Content-Length above it is not reserved up front (the
    /// handler refuses it with 413 without reading).
    pub max_body_bytes: u64,
    /// Bytes a lingering close discards at most: twice `max_body_bytes`, at least
    /// [`LINGER_MIN_BYTES`].
    pub linger_bytes: u64,
}

impl ConnLimits {
    /// The limits of a `[server]` table.
    pub fn from_config(c: &ServerConfig) -> ConnLimits {
        ConnLimits {
            first_byte: Duration::from_secs(c.first_byte_timeout_secs),
            body: Duration::from_secs(c.body_timeout_secs),
            idle: Duration::from_secs(c.idle_timeout_secs),
            max_connections: usize::try_from(c.max_connections).unwrap_or(usize::MAX),
            max_inflight_body_bytes: c.max_inflight_body_bytes,
            max_body_bytes: c.max_body_bytes as u64,
            linger_bytes: (c.max_body_bytes as u64)
                .saturating_mul(2)
                .max(LINGER_MIN_BYTES),
        }
    }
}

#[cfg(test)]
impl ConnLimits {
    /// Limits for unit tests of a connection's pieces: generous timeouts, tiny budgets.
    pub(crate) fn for_tests() -> ConnLimits {
        ConnLimits {
            first_byte: Duration::from_secs(10),
            body: Duration::from_secs(60),
            idle: Duration::from_secs(60),
            max_connections: 10,
            max_inflight_body_bytes: 1,
            max_body_bytes: 1,
            linger_bytes: 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::config::Config;

    #[test]
    fn defaults_and_overrides() {
        let c = Config::parse("[server]\n", "c").expect("defaults");
        let l = ConnLimits::from_config(&c.server);
        assert_eq!(
            (l.first_byte, l.body, l.idle, l.max_connections),
            (
                Duration::from_secs(10),
                Duration::from_secs(60),
                Duration::from_secs(60),
                10_000
            )
        );
        let text = "[server]\nfirst_byte_timeout_secs = 1\nbody_timeout_secs = 2\nidle_timeout_secs = 3\nmax_connections = 4\n";
        let l = ConnLimits::from_config(&Config::parse(text, "c").expect("ok").server);
        assert_eq!(
            (l.first_byte, l.body, l.idle, l.max_connections),
            (
                Duration::from_secs(1),
                Duration::from_secs(2),
                Duration::from_secs(3),
                4
            )
        );
    }

    #[test]
    fn bad_values_name_the_key() {
        for (text, key) in [
            (
                "[server]\nfirst_byte_timeout_secs = 0\n",
                "server.first_byte_timeout_secs",
            ),
            (
                "[server]\nbody_timeout_secs = -1\n",
                "server.body_timeout_secs",
            ),
            (
                "[server]\nidle_timeout_secs = 86401\n",
                "server.idle_timeout_secs",
            ),
            ("[server]\nmax_connections = 0\n", "server.max_connections"),
        ] {
            let e = Config::parse(text, "c.toml").expect_err(text);
            assert_eq!(e.key, key, "{e}");
        }
    }
}
