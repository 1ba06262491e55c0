//! Text a relay supplies (an `Error` frame's code and message) reaches the agent's log
//! and its final error clipped, whatever its size: a broken or hostile relay cannot
//! write megabyte lines, or forge log lines with newlines, into the agent's log.

mod agent_script;
mod common;

use std::net::TcpListener;

use agent_script::{accept_agent, listen, recv_skipping_heartbeats, send};
use common::*;
use hookrelay::common::protocol::{codes, ClientMsg, ServerMsg, PROTOCOL_VERSION};

const MESSAGE_BYTES: usize = 1 << 20;
/// Longest stderr line accepted: the clipped text plus the rest of a log line.
const MAX_LINE_BYTES: usize = 2048;

/// A 1 MiB message of three-byte characters (no clip point is a char boundary by
/// chance), with a forged log line in it.
fn huge_message() -> String {
    let mut m = String::from("first\n2030-01-01T00:00:00Z  INFO forged line\n");
    while m.len() + 3 <= MESSAGE_BYTES {
        m.push('✓');
    }
    m
}

/// First connection: a retryable error (the agent logs it and reconnects); second: a
/// refusal no retry fixes (the agent exits with it).
fn scripted(listener: TcpListener) -> Result<(), String> {
    for code in [codes::INTERNAL, codes::UNKNOWN_CHANNEL] {
        let (mut ws, _) = accept_agent(&listener, PROTOCOL_VERSION)?;
        let sub = match recv_skipping_heartbeats(&mut ws) {
            ClientMsg::Subscribe { sub, .. } => sub,
            other => return Err(format!("expected Subscribe, got {other:?}")),
        };
        let sub = (code == codes::UNKNOWN_CHANNEL).then_some(sub);
        send(
            &mut ws,
            ServerMsg::Error {
                sub,
                code: code.into(),
                message: huge_message(),
            },
        );
        // Until the agent closes.
        while ws.read().is_ok() {}
    }
    Ok(())
}

#[test]
fn a_relays_megabyte_error_message_is_clipped_in_the_log() {
    let (listener, relay_url) = listen();
    let relay = std::thread::spawn(move || scripted(listener));
    let mut agent = AgentProc::spawn(&[
        "agent",
        "--relay",
        &relay_url,
        "--channel",
        "c",
        "--forward",
        "http://127.0.0.1:9",
        "--token",
        "t",
    ]);
    let status = agent.wait_exit();
    relay
        .join()
        .expect("scripted relay")
        .unwrap_or_else(|e| panic!("{e}"));
    let log = agent.stderr_text();
    assert_eq!(status.code(), Some(2), "the refusal is fatal");
    for line in log.lines() {
        assert!(
            line.len() <= MAX_LINE_BYTES,
            "a {}-byte line: {}…",
            line.len(),
            &line[..200]
        );
        assert!(
            !line.contains("forged line") || line.contains("first\\n"),
            "{line}"
        );
    }
    assert!(
        !log.lines().any(|l| l.starts_with("2030-01-01")),
        "a forged line: {log}"
    );
    let marker = format!("({} bytes)", huge_message().len());
    let disconnected = log
        .lines()
        .find(|l| l.contains("disconnected"))
        .unwrap_or_else(|| panic!("no disconnect logged: {log}"));
    assert!(disconnected.contains(&marker), "{disconnected}");
    let error = log
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no final error: {log}"));
    assert!(error.contains("unknown_channel"), "{error}");
    assert!(error.contains(&marker), "{error}");
}
