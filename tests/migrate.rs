//! `hookrelay migrate`: a sled log, trimmed by retention, moved into JetStream by the
//! real binary, then served by a real relay on JetStream: the same offsets (the first
//! retained one included), ids, bodies, cursors and dead letters, new events continuing
//! at head + 1, agents at cursor + 1 and delivery ids still deduplicated. Also: an
//! interrupted copy resumes, running it twice is a no-op, a target that holds
//! something else is refused untouched, and the usage errors.

mod common;
#[path = "common/nats.rs"]
mod nats;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use nats::NatsServer;
use serde_json::Value;

const TOKEN: &str = "migrate-token";
const ADMIN: &str = "migrate-admin";
/// Events the channel keeps: retention trims the rest.
const KEEP: u64 = 6;

fn channel_toml(retention: bool) -> String {
    let keep = if retention {
        format!("retention = {{ max_events = {KEEP} }}\n")
    } else {
        String::new()
    };
    format!(
        "[[channel]]\nname = \"c\"\nscheme = \"none\"\ntokens = [\"{TOKEN}\"]\n\
         id_header = \"x-request-id\"\n{keep}"
    )
}

fn sled_relay(dir: &Path, retention: bool) -> RelayProc {
    RelayProc::start(
        dir,
        &format!("admin_token = \"{ADMIN}\""),
        &channel_toml(retention),
    )
}

/// Writes a config for a relay on JetStream (data_dir in `dir`, log on `nats`).
fn jetstream_config(dir: &Path, nats: &NatsServer, retention: bool) -> PathBuf {
    let path = dir.join("config.toml");
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\nadmin_token = \"{ADMIN}\"\n\n\
         [storage]\nbackend = \"jetstream\"\nservers = [\"{}\"]\nstream_prefix = \"moved\"\n\n{}",
        dir.join("data").display().to_string(),
        nats.url,
        channel_toml(retention)
    );
    std::fs::write(&path, text).expect("write config");
    path
}

/// Posts `body` (with a delivery id when given); returns the response JSON.
fn post(relay: &RelayProc, body: &str, id: Option<&str>) -> Value {
    let headers: Vec<(String, String)> = id
        .map(|i| ("x-request-id".to_string(), i.to_string()))
        .into_iter()
        .collect();
    let (status, json) = post_raw(&relay.url("/hooks/c"), "POST", &headers, body.as_bytes());
    assert_eq!(status, 200, "{json}");
    json
}

fn admin_get(relay: &RelayProc, path: &str) -> Value {
    let (status, json) = get(&relay.url(path), Some(ADMIN));
    assert_eq!(status, 200, "{path}: {json}");
    json
}

/// Channel `c` in `GET /v1/channels`: head, earliest, groups with cursors.
fn channel_info(relay: &RelayProc) -> Value {
    let json = admin_get(relay, "/v1/channels");
    json["channels"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == "c").cloned())
        .expect("channel c")
}

fn events(relay: &RelayProc) -> Vec<Value> {
    let json = admin_get(relay, "/v1/channels/c/events?from=1&limit=1000");
    json["events"].as_array().cloned().expect("events")
}

fn dead_letters(relay: &RelayProc, group: &str) -> Value {
    admin_get(
        relay,
        &format!("/v1/channels/c/groups/{group}/dead-letters"),
    )["dead_letters"]
        .clone()
}

/// Everything the migration must keep, as the admin API shows it.
fn snapshot(relay: &RelayProc) -> (Value, Vec<Value>, Value, Value) {
    (
        channel_info(relay),
        events(relay),
        dead_letters(relay, "g"),
        dead_letters(relay, "h"),
    )
}

/// Polls `cond` (an admin API read) until it holds, failing past the deadline.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn cursor_of(info: &Value, group: &str) -> Option<u64> {
    info["groups"]
        .as_array()?
        .iter()
        .find(|g| g["name"] == group)?["cursor"]
        .as_u64()
}

/// Runs `hookrelay migrate`: (exit code, stdout, stderr).
fn migrate(data_dir: &Path, config: &Path) -> (Option<i32>, String, String) {
    let (d, c) = (data_dir.display().to_string(), config.display().to_string());
    let mut p = AgentProc::spawn(&["migrate", "--data-dir", &d, "--config", &c]);
    let (status, lines) = p.finish();
    (status.code(), lines.join("\n"), p.stderr_text())
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

fn offset_of(r: &Received) -> u64 {
    r.header("x-hookrelay-offset")
        .and_then(|v| v.parse().ok())
        .expect("offset header")
}

/// A sled relay whose log retention trimmed to `13 - KEEP + 1 ..= 13`, with group `g`
/// at cursor 10 (a real agent; offset 8 dead-lettered by a 400, then a redrive of it
/// asked and left pending), group `h` reset by
/// the admin API, and offset 12 posted with a delivery id. Returns the stopped relay's
/// snapshot.
fn trimmed_sled_log(dir: &Path) -> (Value, Vec<Value>, Value, Value) {
    let mut relay = sled_relay(dir, true);
    for i in 1..=10 {
        let body = if i == 8 {
            "bad-8".to_string()
        } else {
            format!("ok-{i}")
        };
        assert_eq!(post(&relay, &body, None)["offset"], i);
    }
    let target = Target::with(|r, _| (if r.body.starts_with(b"bad") { 400 } else { 200 }, vec![]));
    let mut a = agent(&relay, &target, "g");
    target.wait_until("offset 10", |rs| rs.iter().any(|r| offset_of(r) == 10));
    eventually("g's cursor at 10", || {
        cursor_of(&channel_info(&relay), "g") == Some(10)
    });
    assert_eq!(a.terminate().code(), Some(0));
    let (status, json) = post_raw(
        &relay.url("/v1/channels/c/groups/h/reset"),
        "POST",
        &[
            ("authorization".into(), format!("Bearer {ADMIN}")),
            ("content-type".into(), "application/json".into()),
        ],
        br#"{"offset": 10}"#,
    );
    assert_eq!(status, 200, "{json}");
    // A redrive asked while no agent is connected stays pending, durably.
    let auth = [("authorization".to_string(), format!("Bearer {ADMIN}"))];
    let redrive = relay.url("/v1/channels/c/groups/g/dead-letters/redrive");
    let (status, json) = post_raw(&redrive, "POST", &auth, b"");
    assert_eq!(status, 200, "{json}");
    for i in 11..=13 {
        let id = (i == 12).then_some("delivery-12");
        assert_eq!(post(&relay, &format!("ok-{i}"), id)["offset"], i);
    }
    eventually("retention to trim the front", || {
        channel_info(&relay)["earliest"] == 13 - KEEP + 1
    });
    let before = snapshot(&relay);
    assert_eq!(before.2[0]["offset"], 8, "the dead letter: {}", before.2);
    assert_eq!(before.2[0]["redrive_pending"], true, "{}", before.2);
    assert_eq!(relay.terminate().code(), Some(0));
    before
}

#[test]
fn a_trimmed_sled_log_moves_to_jetstream_with_offsets_cursors_and_dead_letters() {
    let store = tempfile::tempdir().expect("tempdir");
    let nats = NatsServer::single(store.path());
    let sled_dir = tempfile::tempdir().expect("tempdir");
    let before = trimmed_sled_log(sled_dir.path());
    let first = 13 - KEEP + 1;
    assert_eq!(before.1.len() as u64, KEEP, "{:?}", before.1);
    assert_eq!(before.1[0]["offset"], first);

    let js_dir = tempfile::tempdir().expect("tempdir");
    let config = jetstream_config(js_dir.path(), &nats, true);
    // A relay started on the target first creates the channel's (empty) stream:
    // migrate still makes it start at the first retained offset.
    drop(RelayProc::start_with(js_dir.path(), &config, &[]));
    let (code, out, err) = migrate(&sled_dir.path().join("data"), &config);
    assert_eq!(code, Some(0), "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("copied 6 events"), "{out}");

    let relay = RelayProc::start_with(js_dir.path(), &config, &[]);
    let after = snapshot(&relay);
    assert_eq!(after.0, before.0, "head, earliest and cursors");
    assert_eq!(
        after.1, before.1,
        "ids, bodies and received-at at each offset"
    );
    assert_eq!(after.2, before.2, "g's dead letters");
    assert_eq!(after.3, before.3, "h's dead letters");
    assert_eq!(after.0["earliest"], first);
    assert_eq!(cursor_of(&after.0, "h"), Some(9));

    assert_eq!(post(&relay, "ok-14", None)["offset"], 14, "head + 1");
    let dup = post(&relay, "ok-12 again", Some("delivery-12"));
    assert_eq!(
        (dup["offset"].clone(), dup["duplicate"].clone()),
        (12.into(), true.into())
    );

    let target = Target::ok();
    let _a = agent(&relay, &target, "g");
    let got = target.wait_until("11..=14 and the redrive of 8", |rs| {
        let offsets: Vec<u64> = rs.iter().map(offset_of).collect();
        offsets.contains(&8) && offsets.contains(&14)
    });
    let stream: Vec<u64> = got.iter().map(offset_of).filter(|o| *o != 8).collect();
    assert_eq!(stream, vec![11, 12, 13, 14], "g resumes at cursor + 1");
    let first = got.iter().find(|r| offset_of(r) == 11).expect("11");
    assert_eq!(first.body, b"ok-11");
    let redriven = got.iter().find(|r| offset_of(r) == 8).expect("8");
    assert_eq!(redriven.body, b"bad-8", "the pending redrive moved too");
}

#[test]
fn an_interrupted_copy_resumes_twice_is_a_no_op_and_a_diverged_target_is_refused() {
    let store = tempfile::tempdir().expect("tempdir");
    let nats = NatsServer::single(store.path());
    let sled_dir = tempfile::tempdir().expect("tempdir");
    let mut relay = sled_relay(sled_dir.path(), false);
    for i in 1..=3 {
        post(&relay, &format!("e{i}"), Some(&format!("d{i}")));
    }
    assert_eq!(relay.terminate().code(), Some(0));
    let data = sled_dir.path().join("data");
    let js_dir = tempfile::tempdir().expect("tempdir");
    let config = jetstream_config(js_dir.path(), &nats, false);
    let (code, out, err) = migrate(&data, &config);
    assert_eq!(code, Some(0), "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("copied 3 events"), "{out}");

    // The target now holds a prefix of the log, as an interrupted copy leaves it.
    let mut relay = RelayProc::start_with(sled_dir.path(), &relay.config_path, &[]);
    for i in 4..=5 {
        post(&relay, &format!("e{i}"), Some(&format!("d{i}")));
    }
    let source = snapshot(&relay);
    assert_eq!(relay.terminate().code(), Some(0));
    let (code, out, err) = migrate(&data, &config);
    assert_eq!(code, Some(0), "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("2 (from 4) to copy"), "{out}");
    assert!(out.contains("copied 2 events"), "{out}");
    let (code, out, err) = migrate(&data, &config);
    assert_eq!(code, Some(0), "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("nothing to copy"), "{out}");

    // The target moves on (a relay appends to it), so it no longer continues the log.
    let mut moved = RelayProc::start_with(js_dir.path(), &config, &[]);
    assert_eq!(
        snapshot(&moved),
        source,
        "resumed, then a run that changed nothing"
    );
    let dup = post(&moved, "e4 again", Some("d4"));
    assert_eq!(
        (dup["offset"].clone(), dup["duplicate"].clone()),
        (4.into(), true.into())
    );
    assert_eq!(post(&moved, "e6", None)["offset"], 6);
    let diverged = snapshot(&moved);
    assert_eq!(moved.terminate().code(), Some(0));

    let (code, out, err) = migrate(&data, &config);
    assert_eq!(code, Some(1), "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("beyond the log's head 5"), "{err}");
    assert!(err.contains("nothing was written"), "{err}");
    let moved = RelayProc::start_with(js_dir.path(), &config, &[]);
    assert_eq!(
        snapshot(&moved),
        diverged,
        "the refused run changed nothing"
    );
}

#[test]
fn a_sled_target_a_running_relay_and_a_wrong_directory_are_refused_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = sled_relay(dir.path(), false);
    post(&relay, "e1", None);
    let data = dir.path().join("data");

    let (code, _, err) = migrate(&data, &relay.config_path);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("storage.backend"), "names the key: {err}");

    // No server needed: the source is opened (and refused) before the target.
    let other = tempfile::tempdir().expect("tempdir");
    let config = other.path().join("js.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\nbackend = \"jetstream\"\nservers = [\"nats://127.0.0.1:1\"]\n\n{}",
            channel_toml(false)
        ),
    )
    .expect("write");
    let (code, _, err) = migrate(&data, &config);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("stop the relay first"), "{err}");

    let (code, _, err) = migrate(&other.path().join("nothing-here"), &config);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("holds no hookrelay log"), "{err}");
}

/// What the relay learned at run time moves too: Asana's hook secret, taken from its
/// `X-Hook-Secret` handshake on sled, still verifies Asana's events on JetStream, and a
/// second handshake there still cannot replace it.
#[test]
fn a_learned_hook_secret_moves_with_the_log() {
    use hmac::{Hmac, Mac};
    let store = tempfile::tempdir().expect("tempdir");
    let nats = NatsServer::single(store.path());
    let channel = "[[channel]]\nname = \"asana\"\nscheme = \"asana\"\n";
    let sled_dir = tempfile::tempdir().expect("tempdir");
    let mut relay = RelayProc::start(sled_dir.path(), "", channel);
    let secret = "3f1c2a9b7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f00";
    let hook = |r: &RelayProc, name: &str, value: &str, body: &[u8]| {
        let headers = vec![(name.to_string(), value.to_string())];
        post_raw(&r.url("/hooks/asana"), "POST", &headers, body).0
    };
    assert_eq!(hook(&relay, "x-hook-secret", secret, b""), 200);
    assert_eq!(relay.terminate().code(), Some(0));

    let js_dir = tempfile::tempdir().expect("tempdir");
    let config = js_dir.path().join("config.toml");
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\n\n[storage]\nbackend = \"jetstream\"\n\
         servers = [\"{}\"]\nstream_prefix = \"learned\"\n\n{channel}",
        js_dir.path().join("data").display().to_string(),
        nats.url,
    );
    std::fs::write(&config, text).expect("write config");
    let (code, out, err) = migrate(&sled_dir.path().join("data"), &config);
    assert_eq!(code, Some(0), "stdout:\n{out}\nstderr:\n{err}");

    let moved = RelayProc::start_with(js_dir.path(), &config, &[]);
    let body = br#"{"events":[{"action":"changed"}]}"#;
    let signature = |key: &str| {
        let mut m = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).expect("any key");
        m.update(body);
        hex::encode(m.finalize().into_bytes())
    };
    assert_eq!(
        hook(
            &moved,
            "x-hook-signature",
            &signature("another-secret"),
            body
        ),
        401
    );
    assert_eq!(
        hook(&moved, "x-hook-signature", &signature(secret), body),
        200
    );
    assert_eq!(hook(&moved, "x-hook-secret", "another-secret", b""), 401);
}
