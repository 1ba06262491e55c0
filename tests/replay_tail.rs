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

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
}

/// The `received_at` (RFC 3339, ms) of one event, from the admin events API.
fn received_at(relay: &RelayProc, offset: u64) -> String {
    let (status, json) = get(
        &relay.url(&format!("/v1/channels/c/events?from={offset}&limit=1")),
        Some(ADMIN),
    );
    assert_eq!(status, 200, "{json}");
    json["events"][0]["received_at"]
        .as_str()
        .expect("received_at")
        .to_string()
}

fn ms_of(rfc3339: &str) -> u64 {
    hookrelay::common::time::parse_time_ms(rfc3339).expect("RFC 3339")
}

#[test]
fn replay_by_time_selects_by_received_at() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path());
    for i in 1..=3 {
        post(&relay, "", format!("first {i}").as_bytes());
    }
    let first_last = ms_of(&received_at(&relay, 3));
    // The second batch must be received later: wait for the clock, not a fixed sleep.
    let start = std::time::Instant::now();
    while now_ms() < first_last + 2 {
        assert!(start.elapsed() < DEADLINE, "the clock did not move");
        std::thread::yield_now();
    }
    for i in 4..=6 {
        post(&relay, "", format!("second {i}").as_bytes());
    }
    let boundary = received_at(&relay, 4);
    assert!(ms_of(&boundary) > first_last);
    let (ws, target) = (relay.ws_url(), Target::ok());
    let url = target.url();

    // --since the boundary: exactly the second batch.
    let (code, _, err) = run(&[
        "replay",
        "--relay",
        &ws,
        "--channel",
        "c",
        "--since",
        &boundary,
        "--forward",
        &url,
        "--token",
        TOKEN,
    ]);
    assert_eq!(code, Some(0), "{err}");
    let got = target.received();
    assert_eq!(got.iter().map(offset_of).collect::<Vec<_>>(), vec![4, 5, 6]);
    assert_eq!(got[0].body, b"second 4");

    // --since the first event --until the end of the first batch: exactly the first.
    let since = received_at(&relay, 1);
    let until = received_at(&relay, 3);
    let target = Target::ok();
    let url = target.url();
    let (code, _, err) = run(&[
        "replay",
        "--relay",
        &ws,
        "--channel",
        "c",
        "--since",
        &since,
        "--until",
        &until,
        "--forward",
        &url,
        "--token",
        TOKEN,
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        target.received().iter().map(offset_of).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );

    // A time after everything: nothing to replay, and that is no error.
    let (code, _, err) = run(&[
        "replay",
        "--relay",
        &ws,
        "--channel",
        "c",
        "--since",
        "2999-01-01T00:00:00Z",
        "--forward",
        &url,
        "--token",
        TOKEN,
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(target.received().len(), 3);

    // Exactly one of --from and --since; times must parse.
    for bad in [
        &["--from", "1", "--since", "2024-01-01T00:00:00Z"][..],
        &[],
        &["--since", "last tuesday"],
    ] {
        let mut args = vec![
            "replay",
            "--relay",
            &ws,
            "--channel",
            "c",
            "--forward",
            &url,
        ];
        args.extend_from_slice(bad);
        let (code, _, err) = run(&args);
        assert_eq!(code, Some(2), "{bad:?}: {err}");
    }
}

#[test]
fn replay_survives_a_relay_restart_in_the_middle() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut relay = start_relay(dir.path());
    for i in 1..=30 {
        post(&relay, "", format!("event {i}").as_bytes());
    }
    // Event 12 is refused (503, retried) until the relay has been restarted, so the
    // replay is stuck in the middle of its range when the relay dies.
    let hold = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let accepted: std::sync::Arc<std::sync::Mutex<Vec<u64>>> = Default::default();
    let (h, acc) = (hold.clone(), accepted.clone());
    let target = Target::with(move |r, _| {
        if r.body == b"event 12" && h.load(std::sync::atomic::Ordering::SeqCst) {
            return (503, vec![]);
        }
        acc.lock().expect("lock").push(offset_of(r));
        (200, vec![])
    });
    let (ws, url) = (relay.ws_url(), target.url());
    let mut replay = AgentProc::spawn(&[
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
    target.wait_until("event 12 in flight", |v| {
        v.iter().any(|r| r.body == b"event 12")
    });

    // SIGKILL, and the same address again, so the replay can find it by itself.
    relay.kill();
    let addr = relay.addr.to_string();
    let (rdir, config) = (relay.dir.clone(), relay.config_path.clone());
    relay = RelayProc::start_with(&rdir, &config, &["--listen", &addr]);
    hold.store(false, std::sync::atomic::Ordering::SeqCst);

    let status = replay.wait_exit();
    let err = replay.stderr_text();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(
        err.contains("reconnecting"),
        "the replay reconnected: {err}"
    );
    assert_eq!(
        *accepted.lock().expect("lock"),
        (1..=30).collect::<Vec<_>>(),
        "the whole range, in order, each event delivered once"
    );
    // The relay is the restarted one (and still serves the channel).
    assert_eq!(post(&relay, "", b"after"), 31);
}

#[test]
fn retention_keeps_the_newest_events_and_offsets_go_on() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut relay = RelayProc::start(
        dir.path(),
        &format!("admin_token = \"{ADMIN}\""),
        &format!(
            "[[channel]]\nname = \"c\"\nscheme = \"none\"\ntokens = [\"{TOKEN}\"]\n\
             retention = {{ max_events = 5 }}\n"
        ),
    );
    for i in 1..=20 {
        assert_eq!(post(&relay, "", format!("e{i}").as_bytes()), i);
    }
    let earliest = |relay: &RelayProc| {
        let (_, json) = get(&relay.url("/v1/channels"), Some(ADMIN));
        json["channels"][0]["earliest"].as_u64().unwrap_or(0)
    };
    // The retention pass runs in the background: poll, with a deadline.
    let wait_earliest = |relay: &RelayProc, want: u64| {
        let start = std::time::Instant::now();
        while earliest(relay) != want {
            assert!(
                start.elapsed() < DEADLINE,
                "retention did not run: earliest {}",
                earliest(relay)
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    wait_earliest(&relay, 16);
    let (_, json) = get(&relay.url("/v1/channels/c/events?from=1"), Some(ADMIN));
    let kept: Vec<u64> = json["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["offset"].as_u64())
        .collect();
    assert_eq!(kept, vec![16, 17, 18, 19, 20]);

    // After a crash the range holds (deletions are not flushed on their own: a pass at
    // start deletes again what the crash brought back), and a compacted offset is
    // refused with the range in the message.
    relay.restart();
    wait_earliest(&relay, 16);
    let ws = relay.ws_url();
    let (code, lines, err) = run(&[
        "tail",
        "--relay",
        &ws,
        "--channel",
        "c",
        "--from",
        "1",
        "--token",
        TOKEN,
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(lines.is_empty(), "{lines:?}");
    assert!(err.contains("offset_compacted"), "{err}");
    assert!(
        err.contains("earliest 16") && err.contains("latest 20"),
        "{err}"
    );
    // Offsets are never reused, across the restart and the deletions.
    assert_eq!(post(&relay, "", b"e21"), 21);
    let (code, lines, err) = run(&[
        "tail",
        "--relay",
        &ws,
        "--channel",
        "c",
        "--from",
        "21",
        "--token",
        TOKEN,
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(lines.len(), 1, "{lines:?}");
    let event: serde_json::Value = serde_json::from_str(&lines[0]).expect("json");
    assert_eq!(
        (event["offset"].as_u64(), event["body"].as_str()),
        (Some(21), Some("e21"))
    );
}
