//! The WebSocket under a stream connection, and how it is set up.
//!
//! The relay performs the upgrade itself instead of through `warp::ws()`, for one
//! reason: warp does not expose tungstenite's `read_buffer_size`, whose 128 KiB default
//! is zero-filled on the first read — about 140 KB of resident memory for every
//! connected agent, 1.4 GB for 10,000 idle ones. A small read buffer grows on demand
//! for large frames and costs a few KB when idle.

use std::sync::{Arc, Mutex};

use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;

pub(crate) use tokio_tungstenite::tungstenite::Error as WsError;
pub(crate) use tokio_tungstenite::tungstenite::Message;

/// An upgraded agent connection.
pub(crate) type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// Initial read buffer per connection, in bytes; it grows for larger frames.
pub const READ_BUFFER_BYTES: usize = 1024;
/// Buffered outgoing bytes before a write goes to the socket (the writer also flushes
/// whenever its queues are empty, so this bounds burst size, not latency).
pub const WRITE_BUFFER_BYTES: usize = 64 * 1024;

/// hyper's upgrade handle for a request, taken out of the request by the connection
/// service (see `listen::service::ConnService`) so that the stream route can claim it; warp's
/// extension filters need `Clone`, which `OnUpgrade` is not.
#[derive(Clone, Debug)]
pub struct PendingUpgrade(Arc<Mutex<Option<OnUpgrade>>>);

impl PendingUpgrade {
    /// Keeps hyper's upgrade future for the stream route.
    pub fn new(on: OnUpgrade) -> PendingUpgrade {
        PendingUpgrade(Arc::new(Mutex::new(Some(on))))
    }

    /// The handle, once.
    pub(crate) fn take(&self) -> Option<OnUpgrade> {
        self.0.lock().ok().and_then(|mut slot| slot.take())
    }
}

/// Whether the request asks for a WebSocket upgrade (`Upgrade: websocket`, a key and
/// version 13); `Some(accept)` is the `Sec-WebSocket-Accept` value to answer with.
pub(crate) fn accept_key(headers: &http::HeaderMap) -> Option<String> {
    let has_token = |name: http::header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if !has_token(http::header::UPGRADE, "websocket")
        || !has_token(http::header::CONNECTION, "upgrade")
    {
        return None;
    }
    if headers
        .get(http::header::SEC_WEBSOCKET_VERSION)
        .map(|v| v.as_bytes())
        != Some(b"13")
    {
        return None;
    }
    let key = headers.get(http::header::SEC_WEBSOCKET_KEY)?;
    Some(tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes()))
}

/// Wraps an upgraded connection with the relay's WebSocket settings.
pub(crate) async fn wrap(upgraded: Upgraded, max_message_bytes: usize) -> Socket {
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_message_size(Some(max_message_bytes))
        .max_frame_size(Some(max_message_bytes));
    WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_follows_rfc_6455() {
        let mut h = http::HeaderMap::new();
        h.insert("upgrade", "websocket".parse().expect("v"));
        h.insert("connection", "keep-alive, Upgrade".parse().expect("v"));
        h.insert("sec-websocket-version", "13".parse().expect("v"));
        h.insert(
            "sec-websocket-key",
            "dGhlIHNhbXBsZSBub25jZQ==".parse().expect("v"),
        );
        // The example from RFC 6455 section 1.3.
        assert_eq!(
            accept_key(&h).as_deref(),
            Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        );
        h.remove("upgrade");
        assert_eq!(accept_key(&h), None);
    }
}
