//! Logs for machines: `--log-format json` (or `HOOKRELAY_LOG_FORMAT`) writes one JSON
//! object per stderr line, the lines about an event carry its id, channel and offset,
//! `--log-bodies` alone puts bodies in them, no secret or token appears at any point,
//! and `--log-syslog` sends RFC 5424 frames.

mod common;

use std::net::UdpSocket;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use hookrelay::common::verify::SchemeKind;

const SECRET: &str = "whsec-log-Q9zX7";
const TOKEN: &str = "tok-log-K3pW1";
const ADMIN: &str = "adm-log-V8mN4";
const CH: &str = "gh";

fn relay(dir: &std::path::Path, extra: &[&str]) -> RelayProc {
    let config = dir.join("config.toml");
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\nadmin_token = \"{ADMIN}\"\n\n\
         [[channel]]\nname = \"{CH}\"\nscheme = \"github\"\nsecrets = [\"{SECRET}\"]\ntokens = [\"{TOKEN}\"]\n",
        dir.join("data").display().to_string()
    );
    std::fs::write(&config, text).expect("config");
    RelayProc::start_with(dir, &config, extra)
}

fn post(relay: &RelayProc, body: &str) {
    let url = relay.url(&format!("/hooks/{CH}"));
    let (status, json) = post_signed(&url, SchemeKind::Github, SECRET, body.as_bytes(), None, &[]);
    assert_eq!(status, 200, "{json}");
}

/// Waits until `text()` has `n` lines containing `needle`.
fn wait_text(what: &str, text: impl Fn() -> String, needle: &str, n: usize) -> String {
    let start = Instant::now();
    loop {
        let t = text();
        if t.matches(needle).count() >= n {
            return t;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{what}: no {n}x {needle:?} in:\n{t}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every line as a JSON object (the test fails on one that is not).
fn json_lines(what: &str, text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {l}"));
            assert!(v.is_object() && v["level"].is_string(), "{what}: {l}");
            v
        })
        .collect()
}

fn assert_no_secret(what: &str, text: &str) {
    for secret in [SECRET, TOKEN, ADMIN] {
        let line = text.lines().find(|l| l.contains(secret));
        assert!(line.is_none(), "{what}: {secret:?} in the log: {line:?}");
    }
}

/// The lines with `message`, each checked to carry the event's id, channel and offset.
fn event_lines<'a>(lines: &'a [serde_json::Value], message: &str) -> Vec<&'a serde_json::Value> {
    let hits: Vec<_> = lines.iter().filter(|l| l["message"] == message).collect();
    assert!(!hits.is_empty(), "no {message:?} line");
    for l in &hits {
        assert_eq!(l["channel"], CH, "{l}");
        assert!(l["offset"].as_u64().is_some_and(|o| o >= 1), "{l}");
        assert!(l["id"].as_str().is_some_and(|i| !i.is_empty()), "{l}");
    }
    hits
}

/// A service that answers `flaky` 503 once, `reject` 400, anything else 200.
fn service() -> Target {
    let failed = Arc::new(AtomicBool::new(false));
    Target::with(move |req, _| {
        let body = String::from_utf8_lossy(&req.body);
        if body.contains("flaky") && !failed.swap(true, Ordering::SeqCst) {
            (503, vec![])
        } else if body.contains("reject") {
            (400, vec![])
        } else {
            (200, vec![])
        }
    })
}

/// Relay and agent in JSON (`relay_args`, then `agent_args` and `agent_env`), three
/// events (delivered, retried, dead-lettered); returns both logs, parsed.
fn run_pair(
    relay_args: &[&str],
    agent_args: &[&str],
    agent_env: &[(&str, &str)],
    marker: &str,
) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
    let dir = tempfile::tempdir().expect("tmp");
    let mut relay = relay(dir.path(), relay_args);
    let target = service();
    let ws = relay.ws_url();
    let forward = target.url();
    let mut args = vec![
        "agent",
        "--relay",
        &ws,
        "--channel",
        CH,
        "--forward",
        &forward,
        "--token",
        TOKEN,
    ];
    args.extend_from_slice(agent_args);
    let mut env = vec![("HOOKRELAY_LOG", "hookrelay=debug,info")];
    env.extend_from_slice(agent_env);
    let mut agent = AgentProc::spawn_env(&args, &env);
    agent.wait_line("hookrelay agent subscribed ");
    for kind in ["plain", "flaky", "reject"] {
        post(
            &relay,
            &format!("{{\"kind\":\"{kind}\",\"mark\":\"{marker}\"}}"),
        );
    }
    wait_text("agent", || agent.stderr_text(), "dead-lettered", 1);
    wait_text("relay", || relay.stderr_text(), "ingest accepted", 3);
    assert_eq!(agent.terminate().code(), Some(0));
    relay.terminate();
    let (relay_log, agent_log) = (relay.stderr_text(), agent.stderr_text());
    assert_no_secret("relay", &relay_log);
    assert_no_secret("agent", &agent_log);
    (
        json_lines("relay", &relay_log),
        json_lines("agent", &agent_log),
    )
}

#[test]
fn json_logs_carry_event_fields_and_no_secret_or_body() {
    let marker = "BODYMARK-off";
    let (relay, agent) = run_pair(
        &["--log-format", "json"],
        &[],
        &[("HOOKRELAY_LOG_FORMAT", "json")],
        marker,
    );
    assert_eq!(event_lines(&relay, "ingest accepted").len(), 3);
    assert_eq!(event_lines(&agent, "delivered").len(), 2);
    assert_eq!(event_lines(&agent, "retrying").len(), 1);
    assert_eq!(event_lines(&agent, "dead-lettered").len(), 1);
    for line in relay.iter().chain(&agent) {
        assert!(
            line.get("body").is_none(),
            "a body without --log-bodies: {line}"
        );
        assert!(!line.to_string().contains(marker), "{line}");
    }
}

#[test]
fn log_bodies_puts_bodies_in_event_lines_and_the_flag_beats_the_env() {
    let marker = "BODYMARK-on";
    let (relay, agent) = run_pair(
        &["--log-format", "json", "--log-bodies"],
        &["--log-format", "json", "--log-bodies"],
        &[("HOOKRELAY_LOG_FORMAT", "text")],
        marker,
    );
    for (log, message) in [
        (&relay, "ingest accepted"),
        (&agent, "delivered"),
        (&agent, "retrying"),
        (&agent, "dead-lettered"),
    ] {
        for line in event_lines(log, message) {
            let body = line["body"].as_str().unwrap_or_default();
            assert!(body.contains(marker), "{message}: {line}");
        }
    }
}

#[test]
fn a_bad_log_format_or_syslog_target_is_a_usage_error() {
    let out = Command::new(bin())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("HOOKRELAY_LOG_FORMAT", "xml")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let out = Command::new(bin())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--log-syslog",
            "tcp://127.0.0.1:1",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--log-syslog"),
        "{out:?}"
    );
}

#[test]
fn a_failed_run_ends_with_a_json_line_too() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = relay(dir.path(), &[]);
    let mut agent = AgentProc::spawn(&[
        "agent",
        "--relay",
        &relay.ws_url(),
        "--channel",
        CH,
        "--forward",
        "http://127.0.0.1:1",
        "--token",
        "not-the-token",
        "--log-format",
        "json",
    ]);
    assert_eq!(agent.wait_exit().code(), Some(2), "{}", agent.stderr_text());
    let lines = json_lines("agent", &agent.stderr_text());
    let last = lines.last().expect("a line");
    assert_eq!(
        (last["level"].as_str(), last["exit_code"].as_u64()),
        (Some("ERROR"), Some(2)),
        "{last}"
    );
}

/// One RFC 5424 frame, split: PRI, version, timestamp, host, app, procid, msgid, the
/// structured data and the message.
struct Frame {
    pri: u8,
    version: String,
    timestamp: String,
    app: String,
    procid: String,
    msgid: String,
    sd: String,
    msg: String,
}

fn parse_frame(text: &str) -> Frame {
    let rest = text
        .strip_prefix('<')
        .unwrap_or_else(|| panic!("no PRI: {text}"));
    let (pri, rest) = rest.split_once('>').expect("PRI end");
    let mut parts = rest.splitn(7, ' ');
    let mut next = || {
        parts
            .next()
            .unwrap_or_else(|| panic!("short frame: {text}"))
            .to_string()
    };
    let (version, timestamp, _host, app, procid, msgid) =
        (next(), next(), next(), next(), next(), next());
    let tail = next();
    // The SD is `-` or one `[...]` element whose values escape `]` as `\]`.
    let (sd, msg) = if let Some(rest) = tail.strip_prefix("- ") {
        ("-".to_string(), rest.to_string())
    } else {
        let bytes = tail.as_bytes();
        let mut end = 0;
        while end < bytes.len() {
            match bytes[end] {
                b'\\' => end += 2,
                b']' => break,
                _ => end += 1,
            }
        }
        (
            tail[..=end].to_string(),
            tail[end + 1..].trim_start().to_string(),
        )
    };
    Frame {
        pri: pri.parse().expect("PRI number"),
        version,
        timestamp,
        app,
        procid,
        msgid,
        sd,
        msg,
    }
}

#[test]
fn syslog_gets_rfc5424_frames_with_the_event_fields() {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let target = format!("udp://{}", socket.local_addr().expect("addr"));
    let dir = tempfile::tempdir().expect("tmp");
    let relay = relay(dir.path(), &["--log-syslog", &target]);
    post(&relay, "{\"syslog\":true}");
    let mut frames = Vec::new();
    let mut buf = [0u8; 9000];
    while !frames.iter().any(|f: &Frame| f.msg == "ingest accepted") {
        let n = socket.recv(&mut buf).expect("a frame before the deadline");
        let text = std::str::from_utf8(&buf[..n])
            .expect("UTF-8 frame")
            .to_string();
        assert_no_secret("syslog", &text);
        frames.push(parse_frame(&text));
    }
    for f in &frames {
        assert_eq!((f.version.as_str(), f.app.as_str()), ("1", "hookrelay"));
        assert_eq!(f.procid, relay.pid().to_string());
        assert_eq!(f.msgid, "-");
        assert!(
            f.timestamp.ends_with('Z') && f.timestamp.contains('T'),
            "{}",
            f.timestamp
        );
        assert_eq!(f.pri / 8, 3, "facility daemon");
    }
    let ready = frames
        .iter()
        .find(|f| f.msg == "relay ready")
        .expect("the ready line");
    assert_eq!(ready.pri, 3 * 8 + 6, "daemon.info");
    let accepted = frames
        .iter()
        .find(|f| f.msg == "ingest accepted")
        .expect("accepted");
    assert_eq!(accepted.pri, 3 * 8 + 7, "daemon.debug");
    for field in [
        format!("channel=\"{CH}\""),
        "offset=\"1\"".to_string(),
        "id=\"".to_string(),
    ] {
        assert!(
            accepted.sd.starts_with("[hookrelay@32473 ") && accepted.sd.contains(&field),
            "{}",
            accepted.sd
        );
    }
}

#[test]
fn the_agent_sends_syslog_to_a_local_socket() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("log.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&path).expect("bind");
    socket.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let target = format!("unix:{}", path.display());
    // No relay listens on port 1: the agent warns that it cannot reach it.
    let agent = AgentProc::spawn(&[
        "agent",
        "--relay",
        "ws://127.0.0.1:1",
        "--channel",
        CH,
        "--forward",
        "http://127.0.0.1:1",
        "--token",
        TOKEN,
        "--log-syslog",
        &target,
    ]);
    let mut buf = [0u8; 9000];
    let warning = loop {
        let n = socket.recv(&mut buf).expect("a frame before the deadline");
        let frame = parse_frame(std::str::from_utf8(&buf[..n]).expect("UTF-8"));
        if frame.msg == "cannot reach the relay" {
            break frame;
        }
    };
    assert_eq!(warning.pri, 3 * 8 + 4, "daemon.warning");
    assert_eq!(
        (warning.version.as_str(), warning.app.as_str()),
        ("1", "hookrelay")
    );
    assert_eq!(warning.procid, agent.pid().to_string());
    assert!(
        warning.sd.contains("relay=\"ws://127.0.0.1:1/v1/stream\""),
        "{}",
        warning.sd
    );
    assert_no_secret("agent syslog", &warning.sd);
}
