//! `hookrelay agent` with several relay URLs (`--relay` repeated, or `relay = [...]` in
//! agent.toml): a URL that cannot be reached is skipped, a URL that dies mid-stream is
//! left for the next one, and delivery resumes at the group's cursor + 1 from whichever
//! URL answers — in order, nothing lost, duplicates only for what was in flight.
//!
//! Two relay processes cannot share one log yet (with sled they would be two logs), so
//! "two URLs, one log" is one relay reachable at two addresses: its own, and a TCP
//! forwarder in this process in front of it, which the test kills.

mod common;
#[path = "common/delay_proxy.rs"]
mod delay_proxy;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::*;
use delay_proxy::DelayProxy;

const TOKEN: &str = "failover-token";
const HEARTBEAT_SECS: u64 = 1;
const IDLE_TIMEOUT_SECS: u64 = 3;
/// The agent presumes a relay gone after this many heartbeats without a frame.
const IDLE_HEARTBEATS: u64 = 3;
/// Room on a loaded machine past the heartbeat bound.
const SWITCH_SLACK: Duration = Duration::from_secs(5);
const MAX_IN_FLIGHT: usize = 1;
const SWITCH_LOG: &str = "switching to the next relay URL";

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

/// A `ws://` URL on which nothing listens: a port that was free a moment ago.
fn closed_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    format!("ws://127.0.0.1:{port}")
}

/// Posts `n` events with the bodies `e<i>` for `i` in `range` to channel `c`.
fn post_range(relay: &RelayProc, range: std::ops::RangeInclusive<u64>) {
    for i in range {
        let (status, json) = post_raw(
            &relay.url("/hooks/c"),
            "POST",
            &[],
            format!("e{i}").as_bytes(),
        );
        assert_eq!(status, 200, "{json}");
        assert_eq!(json["offset"].as_u64(), Some(i), "{json}");
    }
}

fn offset_of(r: &Received) -> u64 {
    r.header("x-hookrelay-offset")
        .and_then(|v| v.parse().ok())
        .expect("x-hookrelay-offset")
}

/// Offsets in order of first arrival, and how many arrivals were repeats.
fn arrivals(target: &Target) -> (Vec<u64>, usize) {
    let all = target.received();
    let mut seen = BTreeSet::new();
    let firsts: Vec<u64> = all
        .iter()
        .map(offset_of)
        .filter(|o| seen.insert(*o))
        .collect();
    let repeats = all.len() - firsts.len();
    (firsts, repeats)
}

/// Waits until every offset up to `last` reached the target.
fn wait_all(target: &Target, last: u64) {
    target.wait_until(&format!("offsets 1..={last}"), |v| {
        v.iter().map(offset_of).collect::<BTreeSet<_>>().len() as u64 >= last
    });
}

fn agent_args<'a>(relays: &[&'a str], target: &'a str) -> Vec<&'a str> {
    let mut args = Vec::new();
    for r in relays {
        args.extend(["--relay", r]);
    }
    args.extend(["--channel", "c", "--forward", target, "--token", TOKEN]);
    args
}

#[test]
fn an_unreachable_first_url_is_skipped_for_the_next() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path());
    let target = Target::ok();
    let (closed, good) = (closed_url(), relay.ws_url());
    let forward = target.url();
    let mut args = agent_args(&[&closed, &good], &forward);
    args.extend(["--metrics-listen", "127.0.0.1:0"]);
    let mut agent = AgentProc::start(&args);
    let metrics = agent.wait_line("hookrelay agent metrics on ");
    let metrics = format!(
        "{}/metrics",
        metrics.trim_start_matches("hookrelay agent metrics on ")
    );
    post_range(&relay, 1..=3);
    wait_all(&target, 3);
    assert_eq!(arrivals(&target), (vec![1, 2, 3], 0));
    let log = agent.stderr_text();
    let switch = log
        .lines()
        .find(|l| l.contains(SWITCH_LOG))
        .unwrap_or_else(|| panic!("no switch logged:\n{log}"));
    assert!(
        switch.contains(&format!("from={closed}/v1/stream"))
            && switch.contains(&format!("to={good}/v1/stream"))
            && switch.contains("INFO"),
        "{switch}"
    );
    assert!(!log.contains(TOKEN), "the token reached the log:\n{log}");
    let scrape = common::metrics::scrape(&metrics);
    assert_eq!(
        common::metrics::value(&scrape, "hookrelay_agent_relay_switches_total", &[]),
        Some(1.0),
        "one switch, from the dead URL to the live one"
    );
    assert!(agent.terminate().success());
}

#[test]
fn a_url_that_dies_mid_stream_hands_over_at_cursor_plus_one() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path());
    // A slow service, so that the forwarder dies with deliveries still coming.
    let target = Target::with_delay(Duration::from_millis(30), |_, _| (200, vec![]));
    let forwarder = DelayProxy::start("127.0.0.1:0", relay.addr, Duration::ZERO);
    let (via, direct) = (format!("ws://{}", forwarder.addr), relay.ws_url());
    let forward = target.url();
    let mut args = agent_args(&[&via, &direct], &forward);
    args.extend(["--max-in-flight", "1"]);
    let mut agent = AgentProc::start(&args);
    post_range(&relay, 1..=10);
    wait_all(&target, 10);
    post_range(&relay, 11..=30);
    target.wait_until("a delivery past 10", |v| {
        v.iter().any(|r| offset_of(r) > 10)
    });
    let killed = Instant::now();
    drop(forwarder);
    let second = agent.wait_lines("hookrelay agent subscribed ", 2).remove(1);
    let switch_time = killed.elapsed();
    post_range(&relay, 31..=40);
    wait_all(&target, 40);

    let bound = Duration::from_secs(IDLE_HEARTBEATS * HEARTBEAT_SECS) + SWITCH_SLACK;
    assert!(switch_time < bound, "switched after {switch_time:?}");
    let (firsts, repeats) = arrivals(&target);
    assert_eq!(firsts, (1..=40).collect::<Vec<_>>(), "in order, none lost");
    // The delivery in flight at the kill, plus one whose ack was still inside the
    // forwarder when it died.
    assert!(repeats <= MAX_IN_FLIGHT + 1, "{repeats} duplicates");
    let next: u64 = second
        .rsplit("next=")
        .next()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{second}"));
    assert!((11..=31).contains(&next), "resumed at {next}: {second}");
    let log = agent.stderr_text();
    assert!(
        log.lines()
            .any(|l| l.contains(SWITCH_LOG) && l.contains(&format!("to={direct}/v1/stream"))),
        "{log}"
    );
    assert!(agent.terminate().success());
}

fn write_agent_toml(dir: &std::path::Path, relay_line: &str, target: &str) -> String {
    let path = dir.join("agent.toml");
    let text = format!(
        "{relay_line}\ntoken = \"{TOKEN}\"\n\n[[route]]\nchannel = \"c\"\nforward = \"{target}\"\n"
    );
    std::fs::write(&path, text).expect("write agent.toml");
    path.display().to_string()
}

#[test]
fn agent_toml_takes_a_relay_list_and_checks_every_url() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path());
    let target = Target::ok();
    let (closed, good) = (closed_url(), relay.ws_url());
    let list = format!("relay = [\n  \"{closed}\",\n  \"{good}\",\n]");
    let file = write_agent_toml(dir.path(), &list, &target.url());
    let mut agent = AgentProc::start(&["--config", &file]);
    post_range(&relay, 1..=2);
    wait_all(&target, 2);
    assert!(agent.stderr_text().contains(SWITCH_LOG));
    assert!(agent.terminate().success());

    // The command line's list replaces the file's: the file's only (dead) URL is
    // never dialled.
    let file = write_agent_toml(
        dir.path(),
        &format!("relay = [\"{closed}\"]"),
        &target.url(),
    );
    let mut agent = AgentProc::start(&["--config", &file, "--relay", &good]);
    post_range(&relay, 3..=3);
    wait_all(&target, 3);
    assert!(
        !agent.stderr_text().contains(&closed),
        "{}",
        agent.stderr_text()
    );
    assert!(agent.terminate().success());

    let bad = format!("relay = [\n  \"{good}\",\n  \"ftp://x?key=s3cret\",\n]");
    let file = write_agent_toml(dir.path(), &bad, &target.url());
    let mut agent = AgentProc::spawn(&["agent", "--config", &file]);
    let status = agent.wait_exit();
    let err = agent.stderr_text();
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("agent.toml:3: relay[1]:"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
}
