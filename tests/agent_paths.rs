//! The agent never sends a request outside its `--forward` prefix: an event whose
//! stored path suffix climbs out of it (`/../../admin/delete`, stored by a relay
//! before ingest refused such paths) is dead-lettered without an HTTP attempt, and the
//! stream goes on. Played against a scripted relay, which can store anything.

mod agent_script;
mod common;

use std::net::TcpListener;

use agent_script::{accept_agent, listen, record_at, recv_skipping_heartbeats, send};
use common::*;
use hookrelay::common::protocol::{ClientMsg, ServerMsg, PROTOCOL_VERSION};

/// Path suffixes that must never reach the service, each with its offset.
const ESCAPES: &[&str] = &[
    "/../../admin/delete",
    "/%2e%2e/admin",
    "/a/%2E%2e%2fadmin",
    "/a/..%5cadmin",
    "/..;/admin",
];
/// A suffix that stays under the prefix (dots inside names are fine).
const SAFE: &str = "/ok/a.b/..c";

/// The agent's answers, in order: `(offset, Some(reason, attempts))` for a Nack,
/// `(offset, None)` for each acknowledged offset.
type Answer = (u64, Option<(String, u32)>);

fn scripted(listener: TcpListener) -> Result<Vec<Answer>, String> {
    let (mut ws, _) = accept_agent(&listener, PROTOCOL_VERSION)?;
    let sub = match recv_skipping_heartbeats(&mut ws) {
        ClientMsg::Subscribe { sub, .. } => sub,
        other => return Err(format!("expected Subscribe, got {other:?}")),
    };
    let total = ESCAPES.len() as u64 + 1;
    send(
        &mut ws,
        ServerMsg::Subscribed {
            sub,
            next: 1,
            head: total,
            window: 8,
            active: true,
        },
    );
    for (i, path) in ESCAPES.iter().chain([&SAFE]).enumerate() {
        let offset = i as u64 + 1;
        let record = record_at(offset, path, b"{}");
        send(
            &mut ws,
            ServerMsg::Event {
                sub,
                offset,
                record,
            },
        );
    }
    let mut answers = Vec::new();
    while (answers.len() as u64) < total {
        match recv_skipping_heartbeats(&mut ws) {
            ClientMsg::Nack {
                offset,
                reason,
                attempts,
                ..
            } => answers.push((offset, Some((reason, attempts)))),
            ClientMsg::Ack { offset, .. } => answers.push((offset, None)),
            ClientMsg::AckRange { first, last, .. } => {
                answers.extend((first..=last).map(|o| (o, None)))
            }
            other => return Err(format!("expected acks and nacks, got {other:?}")),
        }
    }
    Ok(answers)
}

#[test]
fn a_path_that_leaves_the_forward_prefix_is_dead_lettered_unsent() {
    let (listener, relay_url) = listen();
    let relay = std::thread::spawn(move || scripted(listener));
    let service = Target::ok();
    let forward = format!("{}/webhook", service.url());
    let mut agent = AgentProc::start(&[
        "--relay",
        &relay_url,
        "--channel",
        "c",
        "--forward",
        &forward,
        "--token",
        "t",
    ]);
    let answers = relay
        .join()
        .expect("scripted relay")
        .unwrap_or_else(|e| panic!("{e}\nagent stderr:\n{}", agent.stderr_text()));
    let safe_offset = ESCAPES.len() as u64 + 1;
    for (offset, answer) in &answers {
        match answer {
            Some((reason, attempts)) => {
                assert!(*offset < safe_offset, "the safe event was nacked: {reason}");
                assert_eq!(*attempts, 0, "no HTTP attempt for offset {offset}");
                assert!(reason.contains("dot segment"), "{reason}");
            }
            None => assert_eq!(*offset, safe_offset, "an escaping event was acked"),
        }
    }
    let got = service.wait_for(1);
    assert_eq!(got[0].uri, format!("/webhook{SAFE}"));
    assert_eq!(agent.terminate().code(), Some(0));
    assert_eq!(
        service.received().len(),
        1,
        "the service saw only the safe event"
    );
    let log = agent.stderr_text();
    assert!(log.contains("dead-lettered"), "{log}");
}
