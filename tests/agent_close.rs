//! How a real `hookrelay agent` ends its stream connection, against a scripted relay
//! that can see what the real one cannot: whether the TCP connection ends cleanly.
//!
//! An agent that drops its socket right after sending the WebSocket close leaves the
//! relay's last frames unread, and Linux then ends the connection with a reset instead
//! of a FIN; a reset can overtake — and destroy — acks still on their way. The agent
//! must instead read (and discard) until the relay's close reply, so the connection
//! ends with a FIN and nothing it sent is lost.

mod agent_script;
mod common;

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use agent_script::{accept_agent, record, recv, send};
use common::*;
use hookrelay::common::protocol::{ClientMsg, ServerMsg, PROTOCOL_VERSION};
use tokio_tungstenite::tungstenite::Message;

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
    let (mut ws, probe) = accept_agent(&listener, PROTOCOL_VERSION)?;
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

/// Plays the relay for one `hookrelay tail` speaking protocol `version`: five events in
/// one write (so that the agent reads them in one burst), then, once every one of them
/// is acknowledged, `End`. Returns the ack frames in the order they came.
fn scripted_read(listener: TcpListener, version: u16) -> Result<Vec<ClientMsg>, String> {
    let (mut ws, _) = accept_agent(&listener, version)?;
    let sub = match recv(&mut ws) {
        ClientMsg::Read { sub, .. } => sub,
        other => return Err(format!("expected Read, got {other:?}")),
    };
    send(
        &mut ws,
        ServerMsg::Subscribed {
            sub,
            next: 1,
            head: 5,
            window: 8,
            active: true,
        },
    );
    for offset in 1..=5 {
        let event = ServerMsg::Event {
            sub,
            offset,
            record: record(offset, format!("event {offset}").as_bytes()),
        };
        ws.write(Message::binary(event.encode()))
            .map_err(|e| e.to_string())?;
    }
    ws.flush().map_err(|e| e.to_string())?;
    let mut acks = Vec::new();
    let mut covered = 0;
    while covered < 5 {
        match recv(&mut ws) {
            m @ ClientMsg::Ack { .. } => {
                covered += 1;
                acks.push(m);
            }
            m @ ClientMsg::AckRange { first, last, .. } => {
                covered += last.saturating_sub(first) + 1;
                acks.push(m);
            }
            ClientMsg::Ping { nonce } => send(&mut ws, ServerMsg::Pong { nonce }),
            ClientMsg::Pong { .. } => {}
            other => return Err(format!("expected acks, got {other:?}")),
        }
    }
    send(&mut ws, ServerMsg::End { sub, last: 5 });
    // Until the agent's close (or its end of the connection).
    while let Ok(m) = ws.read() {
        if matches!(m, Message::Close(_)) {
            break;
        }
    }
    let _ = ws.flush();
    Ok(acks)
}

/// Runs `hookrelay tail` against a scripted relay speaking `version`; returns its acks.
fn tail_against(version: u16) -> Vec<ClientMsg> {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let relay_url = format!("ws://{}", listener.local_addr().expect("addr"));
    let relay = std::thread::spawn(move || scripted_read(listener, version));
    let out = std::process::Command::new(bin())
        .args([
            "tail",
            "--relay",
            &relay_url,
            "--channel",
            "c",
            "--token",
            "t",
            "--from",
            "1",
        ])
        .output()
        .expect("run tail");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tail failed: {stderr}");
    let lines = String::from_utf8_lossy(&out.stdout).lines().count();
    assert_eq!(lines, 5, "one line per event");
    relay
        .join()
        .expect("scripted relay")
        .unwrap_or_else(|e| panic!("{e}\ntail stderr:\n{stderr}"))
}

#[test]
fn consecutive_acks_go_out_as_one_range_with_protocol_2() {
    let acks = tail_against(2);
    assert_eq!(
        acks,
        vec![ClientMsg::AckRange {
            sub: 1,
            first: 1,
            last: 5
        }],
        "five events read in one burst are acknowledged in one frame"
    );
}

#[test]
fn a_version_1_relay_gets_one_ack_per_event() {
    let acks = tail_against(1);
    let want: Vec<ClientMsg> = (1..=5)
        .map(|offset| ClientMsg::Ack { sub: 1, offset })
        .collect();
    assert_eq!(acks, want, "no AckRange for a relay that does not know it");
}
