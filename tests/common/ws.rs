//! A raw agent-protocol client for stream tests: tokio-tungstenite exchanging
//! `hookrelay::common::protocol` frames with a real relay.
//!
//! It is driven synchronously — each client owns a small runtime — so tests can mix it
//! with the blocking HTTP helpers of `common`. Every wait is bounded by
//! `common::DEADLINE`; reaching it fails the test.
#![allow(dead_code)]

use futures_util::{SinkExt, StreamExt};
use hookrelay::common::protocol::{ClientMsg, ServerMsg, Start, PROTOCOL_VERSION};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::common::{RelayProc, DEADLINE};

pub struct WsClient {
    rt: tokio::runtime::Runtime,
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// The HTTP answer to an upgrade that was refused.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub body: serde_json::Value,
}

impl WsClient {
    /// Dials `{relay}/v1/stream` with an optional bearer token.
    pub fn connect(relay: &RelayProc, token: Option<&str>) -> Result<WsClient, Refused> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let mut req = format!("{}/v1/stream", relay.ws_url())
            .into_client_request()
            .expect("request");
        if let Some(t) = token {
            req.headers_mut().insert(
                "authorization",
                format!("Bearer {t}").parse().expect("header"),
            );
        }
        let dialed = rt.block_on(async {
            tokio::time::timeout(DEADLINE, tokio_tungstenite::connect_async(req)).await
        });
        match dialed.expect("connect timed out") {
            Ok((ws, resp)) => {
                assert_eq!(resp.status().as_u16(), 101);
                Ok(WsClient { rt, ws })
            }
            Err(tungstenite::Error::Http(resp)) => Err(Refused {
                status: resp.status().as_u16(),
                body: resp
                    .body()
                    .as_deref()
                    .and_then(|b| serde_json::from_slice(b).ok())
                    .unwrap_or(serde_json::Value::Null),
            }),
            Err(e) => panic!("connect failed: {e}"),
        }
    }

    /// Connects with `token` and completes Hello/Welcome.
    pub fn open(relay: &RelayProc, token: &str) -> WsClient {
        let mut c = Self::connect(relay, Some(token)).expect("upgrade refused");
        c.send(&ClientMsg::Hello {
            versions: vec![PROTOCOL_VERSION],
            agent: "stream-test".into(),
        });
        match c.recv() {
            ServerMsg::Welcome { version, .. } => assert_eq!(version, PROTOCOL_VERSION),
            other => panic!("expected Welcome, got {other:?}"),
        }
        c
    }

    pub fn send(&mut self, msg: &ClientMsg) {
        self.send_raw(Message::binary(msg.encode()));
    }

    pub fn send_raw(&mut self, msg: Message) {
        self.try_send_raw(msg).expect("send failed");
    }

    /// Sends, reporting a failure (e.g. the relay already closed) instead of panicking.
    pub fn try_send_raw(&mut self, msg: Message) -> Result<(), tungstenite::Error> {
        self.rt
            .block_on(async { tokio::time::timeout(DEADLINE, self.ws.send(msg)).await })
            .expect("send timed out")
    }

    /// The next protocol frame, or None once the relay closed the connection. Relay
    /// heartbeats are answered and skipped.
    pub fn next_frame(&mut self) -> Option<ServerMsg> {
        loop {
            let next = self
                .rt
                .block_on(async { tokio::time::timeout(DEADLINE, self.ws.next()).await })
                .expect("timed out waiting for a frame");
            match next {
                None | Some(Err(_)) => return None,
                Some(Ok(Message::Close(_))) => return None,
                Some(Ok(Message::Binary(b))) => {
                    let msg = ServerMsg::decode(&b).expect("relay frame decodes");
                    if let ServerMsg::Ping { nonce } = msg {
                        self.send(&ClientMsg::Pong { nonce });
                        continue;
                    }
                    return Some(msg);
                }
                Some(Ok(other)) if other.is_text() => panic!("relay sent a text frame: {other:?}"),
                Some(Ok(_)) => continue,
            }
        }
    }

    /// The next protocol frame exactly as the relay sent it — its `Ping`s are returned,
    /// not answered, so a test can play a silent client — or None once the relay closed
    /// the connection. Fails the test if nothing comes `within`.
    pub fn next_frame_unanswered(&mut self, within: std::time::Duration) -> Option<ServerMsg> {
        loop {
            let next = self
                .rt
                .block_on(async { tokio::time::timeout(within, self.ws.next()).await })
                .unwrap_or_else(|_| panic!("no frame from the relay within {within:?}"));
            match next {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return None,
                Some(Ok(Message::Binary(b))) => {
                    return Some(ServerMsg::decode(&b).expect("relay frame decodes"))
                }
                Some(Ok(other)) if other.is_text() => panic!("relay sent a text frame: {other:?}"),
                Some(Ok(_)) => continue,
            }
        }
    }

    /// The next protocol frame; the connection must still be open.
    pub fn recv(&mut self) -> ServerMsg {
        self.next_frame().expect("the relay closed the connection")
    }

    /// The next frame must be `Event{sub, ..}`: returns (offset, record bytes).
    pub fn recv_event(&mut self, sub: u32) -> (u64, Vec<u8>) {
        match self.recv() {
            ServerMsg::Event {
                sub: s,
                offset,
                record,
            } if s == sub => (offset, record),
            other => panic!("expected an Event for sub {sub}, got {other:?}"),
        }
    }

    /// Offsets of the next `n` frames, which must all be events of `sub`.
    pub fn recv_offsets(&mut self, sub: u32, n: usize) -> Vec<u64> {
        (0..n).map(|_| self.recv_event(sub).0).collect()
    }

    /// The next frame must be an `Error` with `code`; returns (sub, message).
    pub fn expect_error(&mut self, code: &str) -> (Option<u32>, String) {
        match self.recv() {
            ServerMsg::Error {
                sub,
                code: c,
                message,
            } if c == code => (sub, message),
            other => panic!("expected Error {code}, got {other:?}"),
        }
    }

    /// A connection-level `Error` with `code`, then the relay closes the connection.
    pub fn expect_fatal(&mut self, code: &str) -> String {
        let (sub, message) = self.expect_error(code);
        assert_eq!(sub, None, "a connection error has no sub");
        if let Some(f) = self.next_frame() {
            panic!("frame after a connection error: {f:?}");
        }
        message
    }

    /// Subscribes and returns the `Subscribed` answer's (next, active).
    pub fn subscribe(
        &mut self,
        sub: u32,
        channel: &str,
        group: &str,
        start: Start,
        window: u32,
    ) -> (u64, bool) {
        self.send(&ClientMsg::Subscribe {
            sub,
            channel: channel.into(),
            group: group.into(),
            start,
            window,
        });
        self.expect_subscribed(sub)
    }

    /// The next frame must be `Subscribed{sub}`: returns (next, active).
    pub fn expect_subscribed(&mut self, sub: u32) -> (u64, bool) {
        match self.recv() {
            ServerMsg::Subscribed {
                sub: s,
                next,
                active,
                ..
            } if s == sub => (next, active),
            other => panic!("expected Subscribed for sub {sub}, got {other:?}"),
        }
    }

    pub fn ack(&mut self, sub: u32, offset: u64) {
        self.send(&ClientMsg::Ack { sub, offset });
    }

    /// Closes the connection cleanly: returns once the relay answered the close (after
    /// which it has released the connection's subscriptions).
    pub fn close(mut self) {
        self.rt.block_on(async {
            let _ = tokio::time::timeout(DEADLINE, self.ws.close(None)).await;
            let end = tokio::time::timeout(DEADLINE, async {
                while let Some(Ok(_)) = self.ws.next().await {}
            })
            .await;
            assert!(end.is_ok(), "the relay did not answer the close");
        });
    }

    /// Subscribes and waits until the subscription is active — at once, or after a short
    /// standby while the group's previous member is still leaving. Returns `next`.
    pub fn subscribe_active(
        &mut self,
        sub: u32,
        channel: &str,
        group: &str,
        start: Start,
        window: u32,
    ) -> u64 {
        match self.subscribe(sub, channel, group, start, window) {
            (next, true) => next,
            (_, false) => match self.recv() {
                ServerMsg::Active { sub: s, next } if s == sub => next,
                other => panic!("expected Active for sub {sub}, got {other:?}"),
            },
        }
    }
}
