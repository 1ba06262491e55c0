//! How a real `hookrelay agent` ends its stream connection, against a scripted relay
//! that can see what the real one cannot: whether the TCP connection ends cleanly.
//!
//! An agent that drops its socket right after sending the WebSocket close leaves the
//! relay's last frames unread, and Linux then ends the connection with a reset instead
//! of a FIN; a reset can overtake — and destroy — acks still on their way. The agent
//! must instead read (and discard) until the relay's close reply, so the connection
//! ends with a FIN and nothing it sent is lost.

mod common;

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use common::*;
use hookrelay::log::Record;
use hookrelay::protocol::{ClientMsg, ServerMsg, PROTOCOL_VERSION};
use tokio_tungstenite::tungstenite::{self, Message, WebSocket};

fn record(offset: u64, body: &[u8]) -> Vec<u8> {
    Record {
        id: format!("evt_{offset}"),
        channel: "c".into(),
        offset,
        received_at_ms: 1,
        method: "POST".into(),
        path: String::new(),
        query: String::new(),
        headers: vec![],
        body: body.to_vec(),
        peer: "127.0.0.1:1".into(),
        scheme: "none".into(),
    }
    .encode()
}

fn send(ws: &mut WebSocket<TcpStream>, msg: ServerMsg) {
    ws.send(Message::binary(msg.encode())).expect("send");
}

/// The next protocol frame from the agent (WebSocket-level frames skipped).
fn recv(ws: &mut WebSocket<TcpStream>) -> ClientMsg {
    loop {
        match ws.read().expect("read from the agent") {
            Message::Binary(b) => return ClientMsg::decode(&b).expect("agent frame decodes"),
            Message::Close(_) => panic!("the agent closed early"),
            _ => continue,
        }
    }
}

/// Size of the event the scripted relay sends right behind the ack: far more than the
/// socket buffers hold, so an agent that stops reading after its last ack cannot
/// close with it all unread and unseen — the reset is certain, not a matter of timing.
const TRAILING_EVENT_BYTES: usize = 16 << 20;

/// How the scripted relay saw the connection end.
struct Ending {
    /// The raw read after the close handshake: `Ok(0)` is a FIN, an error a reset.
    after_close: std::io::Result<usize>,
    /// The socket, to look for a reset that arrives after the FIN.
    tcp: TcpStream,
}

/// Plays the relay for one agent connection: one event in flight, whose ack is
/// followed at once by the next event (as a relay returning window credit would do),
/// which a stopping agent must read and drop rather than leave in its socket.
fn scripted_relay(listener: TcpListener) -> Result<Ending, String> {
    let (tcp, _) = listener.accept().map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(DEADLINE))
        .map_err(|e| e.to_string())?;
    tcp.set_write_timeout(Some(DEADLINE))
        .map_err(|e| e.to_string())?;
    let probe = tcp.try_clone().map_err(|e| e.to_string())?;
    let mut ws = tungstenite::accept(tcp).map_err(|e| e.to_string())?;
    match recv(&mut ws) {
        ClientMsg::Hello { .. } => {}
        other => return Err(format!("expected Hello, got {other:?}")),
    }
    send(
        &mut ws,
        ServerMsg::Welcome {
            version: PROTOCOL_VERSION,
            relay: "scripted".into(),
            heartbeat_secs: 10,
        },
    );
    let sub = match recv(&mut ws) {
        ClientMsg::Subscribe { sub, .. } => sub,
        other => return Err(format!("expected Subscribe, got {other:?}")),
    };
    send(
        &mut ws,
        ServerMsg::Subscribed {
            sub,
            next: 1,
            head: 2,
            window: 1,
            active: true,
        },
    );
    send(
        &mut ws,
        ServerMsg::Event {
            sub,
            offset: 1,
            record: record(1, b"one"),
        },
    );
    loop {
        match recv(&mut ws) {
            ClientMsg::Ack { offset: 1, .. } => break,
            ClientMsg::Ping { nonce } => send(&mut ws, ServerMsg::Pong { nonce }),
            ClientMsg::Pong { .. } => {}
            other => return Err(format!("expected Ack 1, got {other:?}")),
        }
    }
    let trailing = ServerMsg::Event {
        sub,
        offset: 2,
        record: record(2, &vec![b'x'; TRAILING_EVENT_BYTES]),
    };
    ws.send(Message::binary(trailing.encode()))
        .map_err(|e| format!("the agent reset the connection under the next event: {e}"))?;
    // The agent's close must come, and whole (a reset before it is the failure).
    loop {
        match ws.read() {
            Ok(Message::Close(_)) => break,
            Ok(_) => continue,
            Err(e) => {
                return Err(format!(
                    "the connection broke before the agent's close: {e}"
                ))
            }
        }
    }
    // tungstenite queued the close reply when it read the agent's close: send it.
    let _ = ws.flush();
    let mut tcp = ws.get_ref().try_clone().map_err(|e| e.to_string())?;
    let mut byte = [0u8; 1];
    let after_close = tcp.read(&mut byte);
    drop(ws);
    Ok(Ending {
        after_close,
        tcp: probe,
    })
}

#[test]
fn a_stopping_agent_completes_the_close_handshake() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let relay_url = format!("ws://{}", listener.local_addr().expect("addr"));
    let relay = std::thread::spawn(move || scripted_relay(listener));
    let (url, arrived) = slow_service(Duration::from_millis(300));
    let mut agent = AgentProc::start(&[
        "--relay",
        &relay_url,
        "--channel",
        "c",
        "--forward",
        &url,
        "--token",
        "t",
    ]);
    let request = arrived
        .recv_timeout(DEADLINE)
        .expect("the delivery arrives");
    assert!(request.ends_with(b"one"));
    // Stop while the delivery is in flight: the agent acks it, then closes.
    let status = agent.terminate();
    assert_eq!(status.code(), Some(0), "{}", agent.stderr_text());
    let ending = relay
        .join()
        .expect("scripted relay")
        .unwrap_or_else(|e| panic!("{e}\nagent stderr:\n{}", agent.stderr_text()));
    match ending.after_close {
        Ok(0) => {}
        Ok(n) => panic!("{n} byte(s) from the agent after its close"),
        Err(e) => panic!(
            "the agent reset the connection instead of closing it ({e})\n{}",
            agent.stderr_text()
        ),
    }
    // The agent has exited: a reset provoked by frames it left unread would be here.
    assert!(
        matches!(ending.tcp.take_error(), Ok(None)),
        "the connection was reset: {:?}",
        ending.tcp.take_error()
    );
    assert!(
        arrived.try_recv().is_err(),
        "the event sent after the ack is not delivered by a stopping agent"
    );
}
