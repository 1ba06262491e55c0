//! Dead letters and consumer groups end to end: a real relay, real agents, a recording
//! local service, the admin API and the `hookrelay dlq` / `hookrelay groups` commands.
//!
//! What must hold: dead letters are listed per group with why they failed; a redrive
//! delivers them to that group again (original offsets and event ids), durably even
//! with no agent connected, and they leave the list once acked; a cursor reset —
//! backwards, forwards, by time, with an agent connected — restarts delivery exactly at
//! the target, and late acks of the old position never undo it.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const TOKEN: &str = "dlq-token";
const ADMIN: &str = "dlq-admin";

fn start_relay(dir: &std::path::Path) -> RelayProc {
    RelayProc::start(
        dir,
        &format!("admin_token = \"{ADMIN}\""),
        &format!("[[channel]]\nname = \"c\"\nscheme = \"none\"\ntokens = [\"{TOKEN}\"]\n"),
    )
}

/// Posts `body` to channel `c`; returns the offset.
fn post(relay: &RelayProc, body: &str) -> u64 {
    let (status, json) = post_raw(&relay.url("/hooks/c"), "POST", &[], body.as_bytes());
    assert_eq!(status, 200, "{json}");
    json["offset"].as_u64().expect("offset")
}

/// An admin POST with a JSON body (or none).
fn admin_post(relay: &RelayProc, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut headers = vec![("authorization".to_string(), format!("Bearer {ADMIN}"))];
    let body = match body {
        Some(b) => {
            headers.push(("content-type".into(), "application/json".into()));
            b.to_string().into_bytes()
        }
        None => Vec::new(),
    };
    post_raw(&relay.url(path), "POST", &headers, &body)
}

fn dead_letters(relay: &RelayProc, group: &str) -> Vec<Value> {
    let (status, json) = get(
        &relay.url(&format!("/v1/channels/c/groups/{group}/dead-letters")),
        Some(ADMIN),
    );
    assert_eq!(status, 200, "{json}");
    json["dead_letters"].as_array().cloned().expect("list")
}

/// The group's entry in `GET /v1/channels/c/groups`.
fn group_info(relay: &RelayProc, group: &str) -> Value {
    let (status, json) = get(&relay.url("/v1/channels/c/groups"), Some(ADMIN));
    assert_eq!(status, 200, "{json}");
    json["groups"]
        .as_array()
        .and_then(|gs| gs.iter().find(|g| g["name"] == group).cloned())
        .unwrap_or(Value::Null)
}

/// Polls `cond` until it holds, failing past the deadline.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn offset_of(r: &Received) -> u64 {
    r.header("x-hookrelay-offset")
        .and_then(|v| v.parse().ok())
        .expect("offset header")
}

fn offsets(rs: &[Received]) -> Vec<u64> {
    rs.iter().map(offset_of).collect()
}

/// Runs `hookrelay <args>` to completion: (exit code, stdout lines, stderr).
fn run(args: &[&str]) -> (Option<i32>, Vec<String>, String) {
    let mut p = AgentProc::spawn(args);
    let (status, lines) = p.finish();
    (status.code(), lines, p.stderr_text())
}

fn agent(relay: &RelayProc, target: &Target, group: &str) -> AgentProc {
    let (ws, url) = (relay.ws_url(), target.url());
    AgentProc::start(&[
        "--relay",
        &ws,
        "--channel",
        "c",
        "--forward",
        &url,
        "--token",
        TOKEN,
        "--group",
        group,
    ])
}

/// A target that refuses (400) bodies starting with "bad" until `fixed` is set.
fn refusing_target(fixed: Arc<AtomicBool>) -> Target {
    Target::with(move |r, _| {
        if r.body.starts_with(b"bad") && !fixed.load(Ordering::SeqCst) {
            (400, vec![])
        } else {
            (200, vec![])
        }
    })
}

#[test]
fn dead_letters_are_listed_and_redriven_to_their_group_only() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path());
    for body in ["ok-1", "bad-2", "ok-3", "bad-4", "ok-5"] {
        post(&relay, body);
    }
    let fixed = Arc::new(AtomicBool::new(false));
    let main = refusing_target(fixed.clone());
    let other = Target::ok();
    let _a = agent(&relay, &main, "default");
    let _b = agent(&relay, &other, "other");
    // A 400 is not retried: one request per event.
    let first = main.wait_for(5);
    other.wait_for(5);
    eventually("two dead letters", || {
        dead_letters(&relay, "default").len() == 2
    });

    let letters = dead_letters(&relay, "default");
    assert_eq!(
        letters
            .iter()
            .map(|d| d["offset"].as_u64())
            .collect::<Vec<_>>(),
        vec![Some(2), Some(4)]
    );
    for d in &letters {
        assert_eq!(d["attempts"], 1, "{d}");
        assert_eq!(d["last_status"], 400, "{d}");
        assert!(
            d["reason"].as_str().is_some_and(|r| r.contains("400")),
            "{d}"
        );
        assert!(d["at"].as_str().is_some_and(|t| t.ends_with('Z')), "{d}");
        assert_eq!(d["redrive_pending"], false, "{d}");
    }
    assert!(dead_letters(&relay, "other").is_empty());
    eventually("cursor 5", || group_info(&relay, "default")["cursor"] == 5);
    let info = group_info(&relay, "default");
    assert_eq!(
        (info["dead_letters"].clone(), info["lag"].clone()),
        (2.into(), 0.into())
    );
    assert_eq!(info["active"], true);

    // The CLI shows the same, as a table and as JSON (an http:// base; ws:// maps to it).
    let base = relay.base.clone();
    let ws = relay.ws_url();
    let (code, lines, err) = run(&[
        "dlq",
        "list",
        "--relay",
        &ws,
        "--channel",
        "c",
        "--admin-token",
        ADMIN,
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(lines[0].starts_with("GROUP"), "{lines:?}");
    let rows: Vec<&String> = lines.iter().skip(1).collect();
    assert_eq!(rows.len(), 2, "{lines:?}");
    assert!(rows[0].starts_with("default") && rows[0].contains(" 2 ") && rows[0].contains("400"));
    let mut p = AgentProc::spawn_env(
        &[
            "dlq",
            "list",
            "--relay",
            &base,
            "--channel",
            "c",
            "--group",
            "default",
            "--json",
        ],
        &[("HOOKRELAY_ADMIN_TOKEN", ADMIN)],
    );
    let (status, lines) = p.finish();
    assert_eq!(status.code(), Some(0), "{}", p.stderr_text());
    let json: Value = serde_json::from_str(&lines.join("\n")).expect("json");
    assert_eq!(json["dead_letters"][1]["offset"], 4);
    assert_eq!(json["dead_letters"][1]["group"], "default");

    // The service is fixed; redrive everything of the group.
    fixed.store(true, Ordering::SeqCst);
    let (code, lines, err) = run(&[
        "dlq",
        "redrive",
        "--relay",
        &base,
        "--channel",
        "c",
        "--group",
        "default",
        "--admin-token",
        ADMIN,
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(lines.join("\n").contains("offsets 2, 4"), "{lines:?}");
    let got = main.wait_for(7);
    let redriven = &got[5..];
    assert_eq!(
        offsets(redriven),
        vec![2, 4],
        "redriven with their original offsets"
    );
    for r in redriven {
        let original = &first[(offset_of(r) - 1) as usize];
        assert_eq!(r.body, original.body);
        assert_eq!(
            r.header("x-hookrelay-event-id"),
            original.header("x-hookrelay-event-id"),
            "the event id is stable across a redrive"
        );
    }
    eventually("the dead letters to be gone", || {
        dead_letters(&relay, "default").is_empty()
    });
    assert_eq!(group_info(&relay, "default")["dead_letters"], 0);

    // The other group received nothing again: a later event is the next thing it sees.
    post(&relay, "ok-6");
    let got = other.wait_for(6);
    assert_eq!(offsets(&got), vec![1, 2, 3, 4, 5, 6]);
    let got = main.wait_for(8);
    assert_eq!(offset_of(&got[7]), 6);
    assert_eq!(group_info(&relay, "other")["dead_letters"], 0);
}

#[test]
fn a_redrive_waits_durably_for_an_agent_and_a_nack_records_it_again() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut relay = start_relay(dir.path());
    post(&relay, "bad-1");
    post(&relay, "ok-2");
    let fixed = Arc::new(AtomicBool::new(false));
    let target = refusing_target(fixed.clone());
    let mut a = agent(&relay, &target, "default");
    target.wait_for(2);
    eventually("one dead letter", || {
        dead_letters(&relay, "default").len() == 1
    });
    assert_eq!(a.terminate().code(), Some(0));
    eventually("cursor 2", || group_info(&relay, "default")["cursor"] == 2);

    // Unknown offsets are refused as a whole; an empty list is refused too.
    let path = "/v1/channels/c/groups/default/dead-letters/redrive";
    let (status, json) = admin_post(&relay, path, Some(serde_json::json!({"offsets": [1, 2]})));
    assert_eq!(
        (status, json["error"].as_str()),
        (400, Some("bad_request")),
        "{json}"
    );
    let (status, _) = admin_post(&relay, path, Some(serde_json::json!({"offsets": []})));
    assert_eq!(status, 400);
    assert_eq!(dead_letters(&relay, "default")[0]["redrive_pending"], false);

    // No agent is connected: the redrive is recorded, and survives a crash of the relay.
    let (status, json) = admin_post(&relay, path, Some(serde_json::json!({"offsets": [1]})));
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["redriven"], serde_json::json!([1]));
    assert_eq!(json["active"], false);
    assert_eq!(dead_letters(&relay, "default")[0]["redrive_pending"], true);
    relay.restart();

    // The next agent gets it; the service still refuses, so it is dead-lettered again.
    let _a = agent(&relay, &target, "default");
    let got = target.wait_for(3);
    assert_eq!(offset_of(&got[2]), 1);
    eventually("the dead letter to be recorded again", || {
        let d = dead_letters(&relay, "default");
        d.len() == 1 && d[0]["attempts"] == 2 && d[0]["redrive_pending"] == false
    });

    // Fixed now: a redrive with no body means all of them.
    fixed.store(true, Ordering::SeqCst);
    let (status, json) = admin_post(&relay, path, None);
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["active"], true);
    let got = target.wait_for(4);
    assert_eq!(offset_of(&got[3]), 1);
    eventually("an empty dead-letter list", || {
        dead_letters(&relay, "default").is_empty()
    });
    // The group's cursor never moved back for it.
    assert_eq!(group_info(&relay, "default")["cursor"], 2);
}

#[test]
fn reset_moves_a_group_backwards_with_its_agent_connected_and_forwards_while_away() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path());
    for i in 1..=10 {
        post(&relay, &format!("e{i}"));
    }
    let target = Target::ok();
    let mut a = agent(&relay, &target, "default");
    target.wait_for(10);
    eventually("cursor 10", || {
        group_info(&relay, "default")["cursor"] == 10
    });

    // Backwards, while the agent is connected: 4..=10 again, in order, at once.
    let base = relay.base.clone();
    let (code, lines, err) = run(&[
        "groups",
        "reset",
        "--relay",
        &base,
        "--channel",
        "c",
        "--group",
        "default",
        "--to-offset",
        "4",
        "--admin-token",
        ADMIN,
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        lines.join("\n").contains("next event it receives is 4"),
        "{lines:?}"
    );
    let got = target.wait_for(17);
    assert_eq!(offsets(&got[10..]), (4..=10).collect::<Vec<_>>());
    eventually("cursor 10 again", || {
        group_info(&relay, "default")["cursor"] == 10
    });

    // Forwards while the agent is away: 11..=13 are skipped.
    assert_eq!(a.terminate().code(), Some(0));
    for i in 11..=15 {
        post(&relay, &format!("e{i}"));
    }
    let (status, json) = admin_post(
        &relay,
        "/v1/channels/c/groups/default/reset",
        Some(serde_json::json!({"offset": 14})),
    );
    assert_eq!(status, 200, "{json}");
    assert_eq!(
        (json["next"].clone(), json["previous_cursor"].clone()),
        (14.into(), 10.into())
    );
    let info = group_info(&relay, "default");
    assert_eq!(
        (info["cursor"].clone(), info["lag"].clone()),
        (13.into(), 2.into())
    );
    let (code, lines, err) = run(&[
        "groups",
        "list",
        "--relay",
        &base,
        "--channel",
        "c",
        "--admin-token",
        ADMIN,
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        lines
            .iter()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["default", "13", "2", "0", "no"]),
        "{lines:?}"
    );
    let _a = agent(&relay, &target, "default");
    let got = target.wait_for(19);
    assert_eq!(offsets(&got[17..]), vec![14, 15]);

    // Outside the retained range: refused with the range in the message, nothing moves.
    let (code, _, err) = run(&[
        "groups",
        "reset",
        "--relay",
        &base,
        "--channel",
        "c",
        "--group",
        "default",
        "--to-offset",
        "17",
        "--admin-token",
        ADMIN,
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("offset_out_of_range") && err.contains("latest 15"),
        "{err}"
    );
    let (status, json) = admin_post(
        &relay,
        "/v1/channels/c/groups/default/reset",
        Some(serde_json::json!({"offset": 0})),
    );
    assert_eq!(
        (status, json["error"].as_str()),
        (400, Some("offset_compacted")),
        "{json}"
    );
    let (status, json) = admin_post(
        &relay,
        "/v1/channels/c/groups/default/reset",
        Some(serde_json::json!({"offset": 1, "time": "2024-01-01T00:00:00Z"})),
    );
    assert_eq!(
        (status, json["error"].as_str()),
        (400, Some("bad_request")),
        "{json}"
    );
    let (status, json) = admin_post(
        &relay,
        "/v1/channels/nope/groups/default/reset",
        Some(serde_json::json!({"offset": 1})),
    );
    assert_eq!(
        (status, json["error"].as_str()),
        (404, Some("unknown_channel")),
        "{json}"
    );
    eventually("cursor 15", || {
        group_info(&relay, "default")["cursor"] == 15
    });
}

#[test]
fn late_acks_of_the_old_position_do_not_undo_a_reset() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path());
    for i in 1..=5 {
        post(&relay, &format!("e{i}"));
    }
    // e3 is refused (503, retried) until the reset has happened: it is in flight then.
    // `accepted` records the offsets answered 200, in order.
    let hold = Arc::new(AtomicBool::new(true));
    let accepted: Arc<Mutex<Vec<u64>>> = Arc::default();
    let (h, acc) = (hold.clone(), accepted.clone());
    let target = Target::with(move |r, _| {
        if r.body == b"e3" && h.load(Ordering::SeqCst) {
            return (503, vec![]);
        }
        acc.lock().expect("lock").push(offset_of(r));
        (200, vec![])
    });
    let _a = agent(&relay, &target, "default");
    target.wait_until("e3 in flight", |v| v.iter().any(|r| r.body == b"e3"));

    let (status, json) = admin_post(
        &relay,
        "/v1/channels/c/groups/default/reset",
        Some(serde_json::json!({"offset": 1})),
    );
    assert_eq!(status, 200, "{json}");
    hold.store(false, Ordering::SeqCst);

    // The held e3 completes and is acked — too late to count — then delivery restarts
    // at 1. Had its ack moved the group, delivery would go on at 4 (or, with e4 and e5
    // acked late too, at 6: nothing more would come).
    let done = || accepted.lock().expect("lock").clone();
    eventually("1..=5 after the reset", || {
        let d = done();
        d.len() >= 8 && d.ends_with(&[1, 2, 3, 4, 5])
    });
    eventually("cursor 5", || group_info(&relay, "default")["cursor"] == 5);
    // Before the restart: e1..e3, and whatever the agent had prefetched behind e3 (sent
    // before the reset, so stale: delivered, but their acks move nothing).
    let d = done();
    let before = &d[..d.len() - 5];
    assert!(
        [&[1, 2, 3][..], &[1, 2, 3, 4], &[1, 2, 3, 4, 5]].contains(&before),
        "{d:?}"
    );
}

#[test]
fn reset_by_time_restarts_at_the_first_event_received_then() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path());
    for i in 1..=3 {
        post(&relay, &format!("a{i}"));
    }
    let first_batch_last = received_at_ms(&relay, 3);
    // Make the next received-at differ from the last one: wait for the clock, not a sleep.
    eventually("the clock to move", || now_ms() >= first_batch_last + 2);
    for i in 4..=6 {
        post(&relay, &format!("b{i}"));
    }
    let boundary = received_at(&relay, 4);
    assert!(received_at_ms(&relay, 4) > first_batch_last);

    let target = Target::ok();
    let _a = agent(&relay, &target, "default");
    target.wait_for(6);
    eventually("cursor 6", || group_info(&relay, "default")["cursor"] == 6);
    let base = relay.base.clone();
    let (code, lines, err) = run(&[
        "groups",
        "reset",
        "--relay",
        &base,
        "--channel",
        "c",
        "--group",
        "default",
        "--to-time",
        &boundary,
        "--admin-token",
        ADMIN,
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        lines.join("\n").contains("next event it receives is 4"),
        "{lines:?}"
    );
    let got = target.wait_for(9);
    assert_eq!(offsets(&got[6..]), vec![4, 5, 6]);

    // A time after everything: only new events.
    let (status, json) = admin_post(
        &relay,
        "/v1/channels/c/groups/default/reset",
        Some(serde_json::json!({"time": "2999-01-01T00:00:00Z"})),
    );
    assert_eq!((status, json["next"].as_u64()), (200, Some(7)), "{json}");
    let (code, _, err) = run(&[
        "groups",
        "reset",
        "--relay",
        &base,
        "--channel",
        "c",
        "--group",
        "default",
        "--to-time",
        "yesterday",
        "--admin-token",
        ADMIN,
    ]);
    assert_eq!(code, Some(2), "{err}");
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64
}

/// The `received_at` (RFC 3339) of one event, from the admin events API.
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

fn received_at_ms(relay: &RelayProc, offset: u64) -> u64 {
    hookrelay::common::time::parse_time_ms(&received_at(relay, offset)).expect("RFC 3339")
}

#[test]
fn admin_routes_need_the_admin_token_and_exist_only_when_enabled() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path());
    let (status, json) = get(&relay.url("/v1/channels/c/groups"), None);
    assert_eq!(
        (status, json["error"].as_str()),
        (401, Some("unauthorized"))
    );
    let (status, json) = get(
        &relay.url("/v1/channels/c/groups/default/dead-letters"),
        Some("wrong"),
    );
    assert_eq!(
        (status, json["error"].as_str()),
        (401, Some("unauthorized"))
    );
    assert!(
        !json.to_string().contains("wrong"),
        "the token is not echoed"
    );
    let (status, json) = get(&relay.url("/v1/channels/nope/groups"), Some(ADMIN));
    assert_eq!(
        (status, json["error"].as_str()),
        (404, Some("unknown_channel"))
    );
    let (status, json) = get(
        &relay.url("/v1/channels/c/groups/a%20b/dead-letters"),
        Some(ADMIN),
    );
    assert_eq!(
        (status, json["error"].as_str()),
        (400, Some("bad_request")),
        "{json}"
    );
    let (code, _, err) = run(&["groups", "list", "--relay", &relay.base, "--channel", "c"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("unauthorized") && err.contains("HOOKRELAY_ADMIN_TOKEN"),
        "{err}"
    );

    let dir2 = tempfile::tempdir().expect("tmp");
    let disabled = RelayProc::start(
        dir2.path(),
        "",
        &format!("[[channel]]\nname = \"c\"\nscheme = \"none\"\ntokens = [\"{TOKEN}\"]\n"),
    );
    let (status, json) = get(&disabled.url("/v1/channels/c/groups"), Some(ADMIN));
    assert_eq!((status, json["error"].as_str()), (404, Some("not_found")));
    let (code, _, err) = run(&[
        "dlq",
        "list",
        "--relay",
        &disabled.base,
        "--channel",
        "c",
        "--admin-token",
        ADMIN,
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("admin API"), "{err}");
}
