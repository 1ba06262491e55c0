//! Dialling the relay: URL mapping, TLS trust, the bearer token, the upgrade.
//!
//! Agents run behind NAT and firewalls, so they dial *out*; everything that can go
//! wrong on the way is sorted here into "try again later" (the relay is restarting,
//! the network is down) and "no retry will help" (the relay refused the token), so the
//! reconnect loop neither gives up on a restart nor hammers a relay that said no.
//!
//! TLS trusts the web PKI roots by default, or only the CAs of `--ca-cert` for a relay
//! with a private CA. ALPN is left empty on purpose: the relay offers h2, and a
//! WebSocket upgrade needs HTTP/1.1.

use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::common::tls::client_config;
pub use crate::common::tls::TlsFiles;

/// The relay's agent endpoint, appended when the relay URL has no path.
pub const STREAM_PATH: &str = "/v1/stream";
/// Longest a connect + TLS + upgrade may take.
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(15);
/// Read buffer of the WebSocket; events larger than this are assembled in place, so
/// this only trades a little throughput for a small resident size.
const READ_BUFFER_BYTES: usize = 16 * 1024;

/// A connected WebSocket to the relay.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Why dialling failed.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    /// The relay URL cannot be used (usage error).
    #[error("--relay {0:?}: expected a ws://, wss://, http:// or https:// URL")]
    BadUrl(String),
    /// A TLS or certificate file problem (configuration error).
    #[error("TLS setup: {0}")]
    Tls(String),
    /// The token cannot be sent as a header (configuration error).
    #[error("the token contains characters that are not allowed in an HTTP header")]
    BadToken,
    /// The relay refused the credentials before the upgrade (401/403).
    #[error("the relay refused the connection: HTTP {status} ({hint})", status = .0, hint = if *.0 == 403 { "check the token and the client certificate" } else { "check the token" })]
    Unauthorized(u16),
    /// Anything worth retrying: refused connection, timeout, a 5xx or 404 at upgrade.
    #[error("{0}")]
    Transient(String),
}

impl DialError {
    /// Whether retrying cannot help (the agent exits with code 2).
    pub fn is_fatal(&self) -> bool {
        !matches!(self, DialError::Transient(_))
    }
}

/// Where and how to dial; built once, used for every reconnect.
#[derive(Clone)]
pub struct Endpoint {
    url: Url,
    authorization: Option<http::HeaderValue>,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.display_url())
            .field("token", &self.authorization.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Endpoint {
    /// The endpoint for `relay` with `token` (sent as a Bearer header) and TLS material.
    pub fn new(relay: &str, token: Option<&str>, tls: TlsFiles<'_>) -> Result<Endpoint, DialError> {
        let url = relay_url(relay)?;
        let authorization = match token.filter(|t| !t.is_empty()) {
            Some(t) => {
                let mut v = http::HeaderValue::from_str(&format!("Bearer {t}"))
                    .map_err(|_| DialError::BadToken)?;
                v.set_sensitive(true);
                Some(v)
            }
            None => None,
        };
        let tls = if url.scheme() == "wss" {
            Some(client_config(&tls).map_err(|e| DialError::Tls(e.0))?)
        } else {
            None
        };
        Ok(Endpoint {
            url,
            authorization,
            tls,
        })
    }

    /// The URL for logs (no userinfo, no query).
    pub fn display_url(&self) -> String {
        crate::common::redact::redact(self.url.as_str())
    }

    /// Connects and upgrades, within [`DIAL_TIMEOUT`].
    pub async fn dial(&self) -> Result<Ws, DialError> {
        let mut req = self
            .url
            .as_str()
            .into_client_request()
            .map_err(|_| DialError::BadUrl(self.display_url()))?;
        if let Some(auth) = &self.authorization {
            req.headers_mut()
                .insert(http::header::AUTHORIZATION, auth.clone());
        }
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER_BYTES)
            .max_message_size(Some(crate::common::protocol::MAX_SERVER_FRAME_BYTES))
            .max_frame_size(Some(crate::common::protocol::MAX_SERVER_FRAME_BYTES));
        let connector = self.tls.clone().map(Connector::Rustls);
        let dialled = tokio::time::timeout(
            DIAL_TIMEOUT,
            tokio_tungstenite::connect_async_tls_with_config(req, Some(config), true, connector),
        )
        .await;
        match dialled {
            Err(_) => Err(DialError::Transient("timed out connecting".into())),
            Ok(Ok((ws, _))) => Ok(ws),
            Ok(Err(e)) => Err(classify(e)),
        }
    }
}

fn classify(e: tokio_tungstenite::tungstenite::Error) -> DialError {
    use tokio_tungstenite::tungstenite::Error as E;
    match e {
        E::Http(resp) => match resp.status().as_u16() {
            s @ (401 | 403) => DialError::Unauthorized(s),
            s => DialError::Transient(format!("the relay answered HTTP {s} to the upgrade")),
        },
        E::Io(io) => DialError::Transient(io.to_string()),
        E::Tls(t) => DialError::Transient(format!("TLS: {t}")),
        other => DialError::Transient(other.to_string()),
    }
}

/// Parses a relay URL given as http(s):// or ws(s):// and rewrites its scheme to
/// `plain` or `secure`; None when it is not such a URL or has no host.
pub fn map_scheme(input: &str, plain: &str, secure: &str) -> Option<Url> {
    let url = Url::parse(input.trim()).ok()?;
    let scheme = match url.scheme() {
        "ws" | "http" => plain,
        "wss" | "https" => secure,
        _ => return None,
    };
    if url.host_str().is_none_or(str::is_empty) {
        return None;
    }
    // `set_scheme` refuses some special-to-special changes, so rebuild from text.
    let rest = url.as_str().split_once("://").map(|(_, r)| r)?;
    Url::parse(&format!("{scheme}://{rest}")).ok()
}

/// Maps a relay URL to the stream endpoint: http → ws, https → wss, and
/// [`STREAM_PATH`] when the URL has no path.
pub fn relay_url(input: &str) -> Result<Url, DialError> {
    let bad = || DialError::BadUrl(crate::common::redact::redact(input));
    let mut mapped = map_scheme(input, "ws", "wss").ok_or_else(bad)?;
    if mapped.path().is_empty() || mapped.path() == "/" {
        mapped.set_path(STREAM_PATH);
    }
    mapped.set_fragment(None);
    Ok(mapped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn relay_urls_are_mapped() {
        for (input, want) in [
            ("ws://127.0.0.1:8080", "ws://127.0.0.1:8080/v1/stream"),
            ("http://127.0.0.1:8080", "ws://127.0.0.1:8080/v1/stream"),
            ("http://127.0.0.1:8080/", "ws://127.0.0.1:8080/v1/stream"),
            ("https://relay.example", "wss://relay.example/v1/stream"),
            (
                "wss://relay.example:9443/",
                "wss://relay.example:9443/v1/stream",
            ),
            (
                "https://relay.example/base/v1/stream",
                "wss://relay.example/base/v1/stream",
            ),
            ("ws://h/custom", "ws://h/custom"),
        ] {
            assert_eq!(relay_url(input).expect(input).as_str(), want, "{input}");
        }
    }

    #[test]
    fn bad_relay_urls_are_refused() {
        for input in ["ftp://h", "127.0.0.1:8080", "", "http://", "ws://"] {
            assert!(relay_url(input).is_err(), "{input:?}");
        }
    }

    #[test]
    fn the_token_never_shows() {
        let e = Endpoint::new("ws://h:1", Some("s3cret-token"), TlsFiles::default()).expect("ok");
        assert!(!format!("{e:?}").contains("s3cret"));
        let e = Endpoint::new("ws://h:1", Some("bad\ntoken"), TlsFiles::default()).unwrap_err();
        assert!(!e.to_string().contains("token\n") && e.is_fatal());
    }

    #[test]
    fn a_missing_ca_file_is_a_tls_error() {
        let e = Endpoint::new(
            "wss://h:1",
            None,
            TlsFiles {
                ca_cert: Some(Path::new("/nonexistent/ca.pem")),
                client_cert: None,
            },
        )
        .unwrap_err();
        assert!(matches!(e, DialError::Tls(_)) && e.to_string().contains("ca.pem"));
    }
}
