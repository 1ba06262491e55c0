//! `hookrelay replay` and `hookrelay tail` end to end: group-less reads that move no
//! cursor, exact ranges, relay error codes, JSON lines, closed pipes, live follow.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::*;

const TOKEN: &str = "reader-token";
const ADMIN: &str = "adm";

fn start_relay(dir: &std::path::Path) -> RelayProc {
    RelayProc::start(
        dir,
        &format!("admin_token = \"{ADMIN}\""),
        &format!("[[channel]]\nname = \"c\"\nscheme = \"none\"\ntokens = [\"{TOKEN}\"]\n"),
    )
}

/// Posts `body` to `/hooks/c{suffix}`; returns the offset.
fn post(relay: &RelayProc, suffix: &str, body: &[u8]) -> u64 {
    let (status, json) = post_raw(&relay.url(&format!("/hooks/c{suffix}")), "POST", &[], body);
    assert_eq!(status, 200, "{json}");
    json["offset"].as_u64().expect("offset")
}

fn offset_of(r: &Received) -> u64 {
    r.header("x-hookrelay-offset")
        .and_then(|v| v.parse().ok())
        .expect("offset header")
}

fn cursor(relay: &RelayProc, group: &str) -> u64 {
    let (_, json) = get(&relay.url("/v1/channels"), Some(ADMIN));
    json["channels"][0]["groups"]
        .as_array()
        .and_then(|gs| gs.iter().find(|g| g["name"] == group))
        .and_then(|g| g["cursor"].as_u64())
        .unwrap_or(0)
}

/// Runs `hookrelay <args>` to completion: (exit code, stdout lines, stderr).
fn run(args: &[&str]) -> (Option<i32>, Vec<String>, String) {
    let mut p = AgentProc::spawn(args);
    let (status, lines) = p.finish();
    (status.code(), lines, p.stderr_text())
}

#[test]
fn replay_delivers_exactly_the_range_and_moves_no_cursor() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path());
    for i in 1..=10 {
        post(
            &relay,
            &format!("/p/{i}?i={i}"),
            format!("body {i}").as_bytes(),
        );
    }
    // A live agent on the channel consumes everything first.
    let live = Target::ok();
    let ws = relay.ws_url();
    let live_url = live.url();
    let _agent = AgentProc::start(&[
        "--relay",
        &ws,
        "--channel",
        "c",
        "--forward",
        &live_url,
        "--token",
        TOKEN,
    ]);
    live.wait_for(10);

    let replay_target = Target::ok();
    let fwd = format!("{}/replayed", replay_target.url());
    let (code, _, err) = run(&[
        "replay",
        "--relay",
        &ws,
        "--channel",
        "c",
        "--from",
        "3",
        "--to",
        "6",
        "--forward",
        &fwd,
        "--token",
        TOKEN,
    ]);
    assert_eq!(code, Some(0), "{err}");
    let got = replay_target.received();
    assert_eq!(
        got.iter().map(offset_of).collect::<Vec<_>>(),
        vec![3, 4, 5, 6],
        "exactly the range, in order, once"
    );
    for r in &got {
        let o = offset_of(r);
        assert_eq!(r.uri, format!("/replayed/p/{o}?i={o}"));
        assert_eq!(r.body, format!("body {o}").into_bytes());
    }

    // The group saw nothing twice: a later event arrives, and nothing before it again.
    assert_eq!(cursor(&relay, "default"), 10);
    post(&relay, "", b"body 11");
    let got = live.wait_for(11);
    let offsets: Vec<u64> = got.iter().map(offset_of).collect();
    assert_eq!(offsets, (1..=11).collect::<Vec<_>>());
}

#[test]
fn replay_without_to_stops_at_the_head_and_counts_failures() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path());
    for b in ["a", "refused", "c"] {
        post(&relay, "", b.as_bytes());
    }
    let target = Target::with(|r, _| {
        if r.body == b"refused" {
            (422, vec![])
        } else {
            (200, vec![])
        }
    });
    let (ws, url) = (relay.ws_url(), target.url());
    let (code, _, err) = run(&[
        "replay",
        "--relay",
        &ws,
        "--channel",
        "c",
        "--from",
        "1",
        "--forward",
        &url,
        "--token",
        TOKEN,
    ]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("1 of 3"), "{err}");
    let bodies: Vec<Vec<u8>> = target.received().into_iter().map(|r| r.body).collect();
    assert_eq!(
        bodies,
        vec![b"a".to_vec(), b"refused".to_vec(), b"c".to_vec()]
    );
}

#[test]
fn replay_beyond_the_head_reports_the_relay_error() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path());
    post(&relay, "", b"one");
    let target = Target::ok();
    let (ws, url) = (relay.ws_url(), target.url());
    let (code, _, err) = run(&[
        "replay",
        "--relay",
        &ws,
        "--channel",
        "c",
        "--from",
        "100",
        "--forward",
        &url,
        "--token",
        TOKEN,
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("offset_out_of_range"), "{err}");
    assert!(target.received().is_empty());
}

#[test]
fn tail_prints_the_admin_json_shape() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path());
    post(&relay, "/x?y=1", b"{\"a\":1}");
    post(&relay, "", &[0xff, 0x00, 0xfe]);
    post(&relay, "", "żółć".as_bytes());
    post(&relay, "", b"four");
    let ws = relay.ws_url();
    let (code, lines, err) = run(&[
        "tail",
        "--relay",
        &ws,
        "--channel",
        "c",
        "--from",
        "2",
        "--limit",
        "2",
        "--token",
        TOKEN,
    ]);
    assert_eq!(code, Some(0), "{err}");
    let printed: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    let (_, admin) = get(
        &relay.url("/v1/channels/c/events?from=2&limit=2"),
        Some(ADMIN),
    );
    assert_eq!(
        serde_json::Value::Array(printed.clone()),
        admin["events"],
        "tail prints what the admin API shows"
    );
    assert_eq!(printed[0]["offset"], 2);
    assert_eq!(printed[0]["body_base64"], "/wD+");
    assert_eq!(printed[1]["body"], "żółć");

    // Without --limit, everything up to the head, then exit.
    let (code, lines, err) = run(&["tail", "--relay", &ws, "--channel", "c", "--token", TOKEN]);
    assert_eq!(code, Some(0), "{err}");
    let offsets: Vec<u64> = lines
        .iter()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("json")["offset"]
                .as_u64()
                .expect("n")
        })
        .collect();
    assert_eq!(offsets, vec![1, 2, 3, 4]);
    let first: serde_json::Value = serde_json::from_str(&lines[0]).expect("json");
    assert_eq!(
        (first["path"].as_str(), first["query"].as_str()),
        (Some("/x"), Some("y=1"))
    );
}

#[test]
fn tail_into_a_closed_pipe_exits_0() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path());
    // Far more output than a pipe buffers, so tail must hit the closed pipe.
    let body = vec![b'x'; 8 * 1024];
    for _ in 0..100 {
        post(&relay, "", &body);
    }
    let mut child = Command::new(bin())
        .args([
            "tail",
            "--relay",
            &relay.ws_url(),
            "--channel",
            "c",
            "--token",
            TOKEN,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    drain(child.stderr.take().expect("stderr"), stderr.clone());
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("first line");
    assert!(line.contains("\"offset\":1"), "{line}");
    drop(out); // like `| head -1`
    let status = wait_exit(&mut child);
    let err = stderr.lock().expect("lock").clone();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn tail_follow_receives_live_events() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path());
    post(&relay, "", b"stored");
    let ws = relay.ws_url();
    let mut tail = AgentProc::spawn(&[
        "tail",
        "--relay",
        &ws,
        "--channel",
        "c",
        "--follow",
        "--token",
        TOKEN,
    ]);
    // The stored event proves the subscription is live.
    tail.wait_line("{");
    post(&relay, "/live", b"live one");
    let lines = tail.wait_lines("{", 2);
    let live: serde_json::Value = serde_json::from_str(&lines[1]).expect("json");
    assert_eq!(live["offset"], 2);
    assert_eq!(live["body"], "live one");
    assert_eq!(live["path"], "/live");
    assert_eq!(tail.terminate().code(), Some(0));
    let offsets: BTreeSet<String> = tail.lines().into_iter().collect();
    assert_eq!(offsets.len(), 2, "nothing printed twice");
}
