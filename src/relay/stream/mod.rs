//! Relay side of the agent stream: `GET /v1/stream`.
//!
//! Agents behind NAT dial out to this route and receive their channels' events over one
//! WebSocket (the frames are [`crate::common::protocol`]; `docs/protocol.md` is the reference).
//! The pieces, each in its own file:
//!
//! - this file: the route, and authentication *before* the upgrade, so a bad token gets
//!   a plain HTTP 401 and never a WebSocket;
//! - [`connection`]: one WebSocket — hello, frame dispatch, heartbeats, idle timeout,
//!   graceful stop;
//! - [`writer`]: the only task that writes to the socket, so backpressure from a slow
//!   agent stops the senders instead of growing a buffer;
//! - [`budget`]: the bytes of events a connection, and all of them together, may hold;
//! - [`subscription`]: the delivery loop of one subscription — reads, sends, cursor;
//! - [`window`]: its window and acknowledgement bookkeeping, pure state without I/O;
//! - [`start`]: where a subscription starts (committed cursor, earliest, latest, offset);
//! - [`hub`]: consumer groups across connections — one active member, hot standbys.

mod budget;
mod connection;
mod frames;
mod grant;

pub mod socket;

mod subscription;
mod window;
mod writer;

use std::sync::Arc;

use warp::{Filter, Reply};

use crate::relay::api_error::ApiError;
use crate::relay::state::{ConnInfo, Relay};

/// Largest WebSocket message accepted at the transport layer. Deliberately larger than
/// [`crate::common::protocol::MAX_CLIENT_FRAME_BYTES`]: a frame between the two is still read,
/// so the agent gets a `frame_too_large` answer instead of a bare dropped connection.
pub const WS_MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// `GET /v1/stream`: authenticate, then upgrade to the agent protocol. The route holds
/// the byte budget its connections share (`[server] stream_total_buffer_bytes`); the
/// server builds it once.
pub fn route(
    relay: Arc<Relay>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    let shared = budget::Shared::new(relay.config.server.stream_total_buffer_bytes);
    warp::path!("v1" / "stream")
        .and(warp::get())
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::ext::optional::<ConnInfo>())
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<socket::PendingUpgrade>())
        .map(
            move |auth: Option<String>,
                  info: Option<ConnInfo>,
                  headers: http::HeaderMap,
                  pending: Option<socket::PendingUpgrade>| {
                upgrade(
                    relay.clone(),
                    &shared,
                    auth.as_deref(),
                    info,
                    &headers,
                    pending,
                )
            },
        )
}

fn upgrade(
    relay: Arc<Relay>,
    shared: &budget::Shared,
    auth: Option<&str>,
    info: Option<ConnInfo>,
    headers: &http::HeaderMap,
    pending: Option<socket::PendingUpgrade>,
) -> warp::reply::Response {
    // The token first, so that a 401 does not depend on how well-formed the upgrade
    // attempt was.
    let grant = match grant::authorize(&relay, auth, info) {
        Ok(g) => g,
        Err(e) => return e.into_response(),
    };
    let (Some(accept), Some(on_upgrade)) =
        (socket::accept_key(headers), pending.and_then(|p| p.take()))
    else {
        return ApiError::bad_request(
            "this route is a WebSocket: send Connection: upgrade and Upgrade: websocket",
        )
        .into_response();
    };
    let peer = info
        .map(|i| i.peer.to_string())
        .unwrap_or_else(|| "unknown".to_string());
    // Counted from here, so a graceful stop also waits for upgrades in progress.
    let open = relay.hub.connection_opened(&relay.metrics.connections);
    let budget = shared.connection(relay.config.server.stream_connection_buffer_bytes);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let socket = socket::wrap(upgraded, WS_MAX_MESSAGE_BYTES).await;
                connection::run(relay, socket, grant, peer, open, budget).await;
            }
            Err(e) => tracing::debug!(%peer, error = %e, "stream: upgrade failed"),
        }
    });
    let mut resp = warp::reply::Response::new(Default::default());
    *resp.status_mut() = http::StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(
        http::header::UPGRADE,
        http::HeaderValue::from_static("websocket"),
    );
    h.insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("upgrade"),
    );
    if let Ok(v) = http::HeaderValue::from_str(&accept) {
        h.insert(http::header::SEC_WEBSOCKET_ACCEPT, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::grant::authorize;
    use crate::common::config::Config;
    use crate::common::protocol::{ClientMsg, ServerMsg, Start};
    use crate::common::shutdown::Shutdown;
    use crate::relay::state::{ConnInfo, Relay};

    #[tokio::test]
    async fn tokens_grant_their_channels_and_client_certificates_are_enforced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = Config::parse(
            "[server.tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\nclient_ca = \"ca.pem\"\n\n\
             [[channel]]\nname = \"a\"\nscheme = \"none\"\ntokens = [\"ta\"]\n\n\
             [[channel]]\nname = \"b\"\nscheme = \"none\"\ntokens = [\"tb\", \"shared\"]\n\n\
             [[channel]]\nname = \"c\"\nscheme = \"none\"\ntokens = [\"shared\"]\n",
            "test.toml",
        )
        .expect("config");
        let log = crate::storage::open(dir.path(), 0).expect("log");
        let relay = Relay::new(config, log, Shutdown::new());
        let conn = |client_cert| {
            Some(ConnInfo {
                peer: "127.0.0.1:9".parse().expect("addr"),
                client_cert,
            })
        };

        let e = authorize(&relay, Some("Bearer ta"), conn(false)).expect_err("no certificate");
        assert_eq!(e.status, http::StatusCode::UNAUTHORIZED);
        let grant = authorize(&relay, Some("Bearer ta"), conn(true)).expect("granted");
        assert!(grant.allows("a") && !grant.allows("b"));
        let grant = authorize(&relay, Some("bearer shared"), conn(true)).expect("granted");
        assert!(grant.allows("b") && grant.allows("c") && !grant.allows("a"));
        for auth in [None, Some("Bearer nope"), Some("Basic ta"), Some("Bearer ")] {
            let e = authorize(&relay, auth, conn(true)).expect_err("refused");
            assert_eq!((e.status.as_u16(), e.code), (401, "unauthorized"));
            assert!(
                !e.message.contains("nope"),
                "the presented token is not echoed"
            );
        }
    }

    /// The byte examples of `docs/protocol.md` (agent frames); keep them in sync.
    #[test]
    fn documented_client_examples() {
        let hello = ClientMsg::Hello {
            versions: vec![1],
            agent: "a1".into(),
        };
        assert_eq!(hello.encode(), [0x00, 0x01, 0x01, 0x02, 0x61, 0x31]);

        let sub = ClientMsg::Subscribe {
            sub: 1,
            channel: "gh".into(),
            group: "default".into(),
            start: Start::Committed,
            window: 32,
        };
        let mut want = vec![0x01, 0x01, 0x02, b'g', b'h', 0x07];
        want.extend_from_slice(b"default");
        want.extend_from_slice(&[0x00, 0x20]);
        assert_eq!(sub.encode(), want);

        let sub = ClientMsg::Subscribe {
            sub: 2,
            channel: "gh".into(),
            group: "g".into(),
            start: Start::Offset(70_000),
            window: 300,
        };
        assert_eq!(
            sub.encode(),
            [
                0x01, 0x02, 0x02, 0x67, 0x68, 0x01, 0x67, 0x03, 0xfc, 0x70, 0x11, 0x01, 0x00, 0xfb,
                0x2c, 0x01
            ]
        );

        let nack = ClientMsg::Nack {
            sub: 1,
            offset: 5,
            reason: "http 400".into(),
            attempts: 3,
            last_status: Some(400),
        };
        let mut want = vec![0x03, 0x01, 0x05, 0x08];
        want.extend_from_slice(b"http 400");
        want.extend_from_slice(&[0x03, 0x01, 0xfb, 0x90, 0x01]);
        assert_eq!(nack.encode(), want);
    }

    /// The byte examples of `docs/protocol.md` (relay frames); keep them in sync.
    #[test]
    fn documented_server_examples() {
        let err = ServerMsg::Error {
            sub: None,
            code: "bad_frame".into(),
            message: "x".into(),
        };
        let mut want = vec![0x05, 0x00, 0x09];
        want.extend_from_slice(b"bad_frame");
        want.extend_from_slice(&[0x01, b'x']);
        assert_eq!(err.encode(), want);

        let event = ServerMsg::Event {
            sub: 1,
            offset: 300,
            record: vec![1, 2, 3],
        };
        assert_eq!(
            event.encode(),
            [0x03, 0x01, 0xfb, 0x2c, 0x01, 0x03, 1, 2, 3]
        );
    }

    /// The session example of section 10 of `docs/protocol.md`; keep them in sync.
    #[test]
    fn documented_session() {
        let welcome = ServerMsg::Welcome {
            version: 1,
            relay: "hookrelay/0.1.0".into(),
            heartbeat_secs: 10,
        };
        let mut want = vec![0x00, 0x01, 0x0f];
        want.extend_from_slice(b"hookrelay/0.1.0");
        want.push(0x0a);
        assert_eq!(welcome.encode(), want);
        let subscribed = ServerMsg::Subscribed {
            sub: 1,
            next: 1,
            head: 1,
            window: 1,
            active: true,
        };
        assert_eq!(subscribed.encode(), [0x01, 0x01, 0x01, 0x01, 0x01, 0x01]);
        assert_eq!(
            ServerMsg::CaughtUp { sub: 1, head: 1 }.encode(),
            [0x04, 0x01, 0x01]
        );
        assert_eq!(
            ClientMsg::Ack { sub: 1, offset: 1 }.encode(),
            [0x02, 0x01, 0x01]
        );
    }
}
