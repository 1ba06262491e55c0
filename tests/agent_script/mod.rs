//! A scripted relay for agent tests: a plain blocking WebSocket server that plays the
//! relay's side of the protocol frame by frame, so that a test can send what a real
//! relay never would (a stored path that climbs out of the forward prefix, a huge
//! error message) and see exactly what the agent answers.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};

use hookrelay::common::event::Record;
use hookrelay::common::protocol::{ClientMsg, ServerMsg};
use tokio_tungstenite::tungstenite::{self, Message, WebSocket};

use crate::common::DEADLINE;

/// A listener on 127.0.0.1:0 and the `ws://` URL an agent dials for it.
pub fn listen() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("ws://{}", listener.local_addr().expect("addr"));
    (listener, url)
}

/// A stored event of channel `c` at `offset` with this path suffix and body.
pub fn record_at(offset: u64, path: &str, body: &[u8]) -> Vec<u8> {
    Record {
        id: format!("evt_{offset}"),
        channel: "c".into(),
        offset,
        received_at_ms: 1,
        method: "POST".into(),
        path: path.into(),
        query: String::new(),
        headers: vec![],
        body: body.to_vec(),
        peer: "127.0.0.1:1".into(),
        scheme: "none".into(),
    }
    .encode()
}

/// A stored event with an empty path suffix.
pub fn record(offset: u64, body: &[u8]) -> Vec<u8> {
    record_at(offset, "", body)
}

pub fn send(ws: &mut WebSocket<TcpStream>, msg: ServerMsg) {
    ws.send(Message::binary(msg.encode())).expect("send");
}

/// The next protocol frame from the agent (WebSocket-level frames skipped).
pub fn recv(ws: &mut WebSocket<TcpStream>) -> ClientMsg {
    loop {
        match ws.read().expect("read from the agent") {
            Message::Binary(b) => return ClientMsg::decode(&b).expect("agent frame decodes"),
            Message::Close(_) => panic!("the agent closed early"),
            _ => continue,
        }
    }
}

/// The next frame that is not a heartbeat (pings are answered).
pub fn recv_skipping_heartbeats(ws: &mut WebSocket<TcpStream>) -> ClientMsg {
    loop {
        match recv(ws) {
            ClientMsg::Ping { nonce } => send(ws, ServerMsg::Pong { nonce }),
            ClientMsg::Pong { .. } => {}
            other => return other,
        }
    }
}

/// Accepts one agent connection and answers its `Hello` (which must offer `version`)
/// with `Welcome{version}`. Returns the socket and a second handle on its TCP stream.
pub fn accept_agent(
    listener: &TcpListener,
    version: u16,
) -> Result<(WebSocket<TcpStream>, TcpStream), String> {
    let (tcp, _) = listener.accept().map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(DEADLINE))
        .map_err(|e| e.to_string())?;
    tcp.set_write_timeout(Some(DEADLINE))
        .map_err(|e| e.to_string())?;
    let probe = tcp.try_clone().map_err(|e| e.to_string())?;
    let mut ws = tungstenite::accept(tcp).map_err(|e| e.to_string())?;
    match recv(&mut ws) {
        ClientMsg::Hello { versions, .. } if versions.contains(&version) => {}
        other => return Err(format!("expected Hello offering {version}, got {other:?}")),
    }
    send(
        &mut ws,
        ServerMsg::Welcome {
            version,
            relay: "scripted".into(),
            heartbeat_secs: 10,
        },
    );
    Ok((ws, probe))
}
