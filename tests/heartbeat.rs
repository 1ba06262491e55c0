//! Heartbeats and idle timeouts on the agent stream, with real processes and short
//! intervals (`[server] stream_heartbeat_secs = 1`, `stream_idle_timeout_secs = 3`; the
//! agent follows `Welcome.heartbeat_secs` and gives up on a relay after three of them).
//!
//! Waits are on conditions — heartbeat lines counted in the agent's log, frames, stdout
//! lines, metrics — never on a bare sleep: "several heartbeat periods passed" is
//! observed as that many heartbeats.

mod common;
#[path = "common/ws.rs"]
mod ws;

use std::time::{Duration, Instant};

use common::*;
use hookrelay::common::protocol::{codes, ClientMsg, ServerMsg, PROTOCOL_VERSION};
use ws::WsClient;

const TOKEN: &str = "hb-token";
const HEARTBEAT_SECS: u64 = 1;
const IDLE_TIMEOUT_SECS: u64 = 3;
/// Heartbeats an idle agent must see before the test calls it "stayed connected":
/// comfortably more than the idle timeout of either side.
const HEARTBEATS_TO_SEE: usize = 5;
/// Extra time allowed past the idle timeout for the relay to act on it (a loaded
/// machine delays timers); still far below the 30 s default, which would fail.
const IDLE_SLACK: Duration = Duration::from_secs(10);

/// A relay with short stream timers and one unsigned channel `c`.
fn start_relay(dir: &std::path::Path) -> RelayProc {
    RelayProc::start(
        dir,
        &format!(
            "stream_heartbeat_secs = {HEARTBEAT_SECS}\nstream_idle_timeout_secs = {IDLE_TIMEOUT_SECS}"
        ),
        &format!("[[channel]]\nname = \"c\"\nscheme = \"none\"\ntokens = [\"{TOKEN}\"]\n"),
    )
}

fn start_agent(relay: &RelayProc, target: &Target) -> AgentProc {
    AgentProc::start(&[
        "--relay",
        &relay.ws_url(),
        "--channel",
        "c",
        "--forward",
        &target.url(),
        "--token",
        TOKEN,
    ])
}

/// Posts `body` to channel `c`; returns its offset.
fn post(relay: &RelayProc, body: &[u8]) -> u64 {
    let (status, json) = post_raw(&relay.url("/hooks/c"), "POST", &[], body);
    assert_eq!(status, 200, "{json}");
    json["offset"].as_u64().expect("offset")
}

/// The `/metrics` text, for failure messages.
fn metrics(relay: &RelayProc) -> String {
    format!(
        "{:?}",
        common::metrics::scrape(&relay.url("/metrics")).samples
    )
}

/// Open stream connections, from the parsed `/metrics`.
fn open_connections(relay: &RelayProc) -> Option<i64> {
    let scrape = common::metrics::scrape(&relay.url("/metrics"));
    common::metrics::value(&scrape, "hookrelay_stream_connections", &[]).map(|v| v as i64)
}

/// Polls until `cond` holds; fails past the deadline, saying what it waited for.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool, context: impl Fn() -> String) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < DEADLINE,
            "timed out waiting for {what}\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How often `needle` occurs in the agent's log.
fn count(agent: &AgentProc, needle: &str) -> usize {
    agent.stderr_text().matches(needle).count()
}

#[test]
fn an_idle_agent_stays_connected_across_many_heartbeats() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path());
    let target = Target::ok();
    let agent = start_agent(&relay, &target);
    wait_until(
        "the agent to learn the relay's heartbeat from Welcome",
        || {
            agent
                .stderr_text()
                .contains(&format!("welcome heartbeat_secs={HEARTBEAT_SECS}"))
        },
        || agent.stderr_text(),
    );
    // Both directions, several times over: the relay pings and the agent answers; the
    // agent pings (on the relay's cadence) and the relay answers. Five of each span
    // more than the 3 s idle timeout of either side.
    wait_until(
        &format!("{HEARTBEATS_TO_SEE} heartbeats each way"),
        || {
            count(&agent, "heartbeat: ping from the relay") >= HEARTBEATS_TO_SEE
                && count(&agent, "heartbeat: the relay answered") >= HEARTBEATS_TO_SEE
        },
        || agent.stderr_text(),
    );
    // Still the first connection: no reconnect on either side.
    let log = agent.stderr_text();
    assert!(
        !log.contains("reconnecting") && !log.contains("disconnected"),
        "the idle agent reconnected:\n{log}"
    );
    assert!(
        !relay.stderr_text().contains(codes::IDLE_TIMEOUT),
        "the relay timed the agent out:\n{}",
        relay.stderr_text()
    );
    assert_eq!(open_connections(&relay), Some(1), "{}", metrics(&relay));
    assert_eq!(
        agent
            .lines()
            .iter()
            .filter(|l| l.starts_with("hookrelay agent subscribed "))
            .count(),
        1,
        "subscribed once"
    );
    // And the long-idle connection still delivers.
    let offset = post(&relay, b"after a quiet spell");
    let got = target.wait_for(1);
    assert_eq!(got[0].body, b"after a quiet spell");
    assert_eq!(
        got[0].header("x-hookrelay-offset"),
        Some(offset.to_string())
    );
    assert_eq!(open_connections(&relay), Some(1));
}

#[test]
fn a_client_that_never_answers_is_dropped_with_idle_timeout() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path());
    let mut c = WsClient::connect(&relay, Some(TOKEN)).expect("upgrade");
    c.send(&ClientMsg::Hello {
        versions: vec![PROTOCOL_VERSION],
        agent: "silent".into(),
    });
    match c.next_frame_unanswered(DEADLINE) {
        Some(ServerMsg::Welcome { heartbeat_secs, .. }) => {
            assert_eq!(
                u64::from(heartbeat_secs),
                HEARTBEAT_SECS,
                "Welcome announces the configured heartbeat"
            )
        }
        other => panic!("expected Welcome, got {other:?}"),
    }
    wait_until(
        "the connection to be counted",
        || open_connections(&relay) == Some(1),
        || metrics(&relay),
    );
    // From now on the client sends nothing, not even the answers to the relay's pings.
    let limit = Instant::now() + Duration::from_secs(IDLE_TIMEOUT_SECS) + IDLE_SLACK;
    let mut pings = 0;
    let message = loop {
        let within = limit.saturating_duration_since(Instant::now());
        match c.next_frame_unanswered(within) {
            Some(ServerMsg::Ping { .. }) => pings += 1,
            Some(ServerMsg::Error {
                sub: None,
                code,
                message,
            }) if code == codes::IDLE_TIMEOUT => break message,
            other => panic!("expected pings then Error{{idle_timeout}}, got {other:?}"),
        }
    };
    assert!(pings >= 1, "the relay pinged before giving up");
    assert!(
        message.contains(&format!("{IDLE_TIMEOUT_SECS} s")),
        "the configured timeout applies: {message}"
    );
    // Then the relay closes the connection.
    assert!(
        c.next_frame_unanswered(DEADLINE).is_none(),
        "nothing may follow a connection-level error"
    );
    wait_until(
        "the connection to be released",
        || open_connections(&relay) == Some(0),
        || metrics(&relay),
    );
}

/// Resumes a stopped relay even when the test fails half-way, so that the relay's
/// own drop (SIGKILL) and the log drain are not left with a frozen process.
struct Stopped(i32);

impl Drop for Stopped {
    fn drop(&mut self) {
        unsafe {
            libc::kill(self.0, libc::SIGCONT);
        }
    }
}

#[test]
fn an_agent_whose_relay_goes_silent_reconnects_by_itself() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path());
    let target = Target::ok();
    let agent = start_agent(&relay, &target);
    // The relay freezes: its sockets stay open, but nothing comes out of them.
    let stopped = Stopped(relay.pid());
    assert_eq!(unsafe { libc::kill(relay.pid(), libc::SIGSTOP) }, 0);
    wait_until(
        "the agent to give up on the silent relay and reconnect",
        || {
            let log = agent.stderr_text();
            log.contains("the relay was silent") && log.contains("reconnecting")
        },
        || agent.stderr_text(),
    );
    drop(stopped);
    let log = agent.stderr_text();
    assert!(
        log.contains(&format!(
            "the relay was silent for {} s",
            3 * HEARTBEAT_SECS
        )),
        "the agent's idle timeout is three of the relay's heartbeats:\n{log}"
    );
    // Back: the agent's reconnect lands and subscribes again (standby first if the
    // relay has not yet noticed the old connection is gone; promoted right after).
    agent.wait_lines("hookrelay agent subscribed ", 2);
    let offset = post(&relay, b"after the freeze");
    let got = target.wait_until("the event posted after the freeze", |v| {
        v.iter().any(|r| r.body == b"after the freeze")
    });
    let r = got
        .iter()
        .find(|r| r.body == b"after the freeze")
        .expect("delivered");
    assert_eq!(r.header("x-hookrelay-offset"), Some(offset.to_string()));
    wait_until(
        "the relay to hold just the new connection",
        || open_connections(&relay) == Some(1),
        || metrics(&relay),
    );
}
