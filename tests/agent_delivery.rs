//! Per-route delivery settings end to end: `--forward-ca-cert` (an HTTPS local service
//! with a private CA), `--header`, `--timeout`, and the info line per delivery that
//! `--quiet` turns off.

mod common;
#[path = "common/local_services.rs"]
mod local_services;

use std::time::{Duration, Instant};

use common::*;
use local_services::{https_service, private_ca, slow_first_service};

const TOKEN: &str = "agent-token-1";

fn start_relay(dir: &std::path::Path) -> RelayProc {
    RelayProc::start(
        dir,
        "admin_token = \"adm\"",
        &format!("[[channel]]\nname = \"c\"\nscheme = \"none\"\ntokens = [\"{TOKEN}\"]\n"),
    )
}

fn post(relay: &RelayProc, body: &str) {
    let (status, json) = post_raw(&relay.url("/hooks/c"), "POST", &[], body.as_bytes());
    assert_eq!(status, 200, "{json}");
}

/// `hookrelay agent` on channel `c` to `forward`, logging at `level`, subscribed.
fn agent(relay: &RelayProc, forward: &str, level: &str, extra: &[&str]) -> AgentProc {
    let mut args = vec!["agent"];
    args.extend(common::forward_args(&relay.base, "c", forward, TOKEN));
    args.extend_from_slice(extra);
    let a = AgentProc::spawn_env(&args, &[("HOOKRELAY_LOG", level)]);
    a.wait_lines("hookrelay agent subscribed ", 1);
    a
}

/// Waits until the agent's stderr contains `what`.
fn wait_stderr(a: &AgentProc, what: &str) -> String {
    let start = Instant::now();
    loop {
        let text = a.stderr_text();
        if text.contains(what) {
            return text;
        }
        assert!(start.elapsed() < DEADLINE, "no {what:?} in stderr:\n{text}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The committed cursor of group `default` on `c`.
fn cursor(relay: &RelayProc) -> u64 {
    let (_, json) = get(&relay.url("/v1/channels/c/groups"), Some("adm"));
    json["groups"][0]["cursor"].as_u64().unwrap_or(0)
}

fn wait_cursor(relay: &RelayProc, want: u64) {
    let start = Instant::now();
    while cursor(relay) < want {
        assert!(start.elapsed() < DEADLINE, "cursor never reached {want}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn https_service_with_a_private_ca_needs_forward_ca_cert() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path());
    let (ca, cert, key) = private_ca(dir.path());
    let (url, seen, _rt) = https_service(&cert, &key);
    post(&relay, "over https");

    // Without the CA: the event fails, and the agent names the certificate problem.
    let untrusting = agent(
        &relay,
        &url,
        "hookrelay=info",
        &["--max-attempts", "1", "--group", "untrusting"],
    );
    let stderr = wait_stderr(&untrusting, "dead-lettered");
    assert!(
        stderr.contains("TLS handshake failed") && stderr.contains("certificate"),
        "{stderr}"
    );
    assert!(seen.lock().expect("lock").is_empty());

    let ca = ca.to_str().expect("utf-8");
    let _trusting = agent(&relay, &url, "hookrelay=info", &["--forward-ca-cert", ca]);
    let start = Instant::now();
    while seen.lock().expect("lock").is_empty() {
        assert!(start.elapsed() < DEADLINE, "never delivered over https");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(seen.lock().expect("lock")[0].body, b"over https");
}

#[test]
fn extra_headers_arrive_and_are_never_logged() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path());
    let target = Target::ok();
    let a = agent(
        &relay,
        &target.url(),
        "hookrelay=trace",
        &[
            "--header",
            "X-Internal-Token: s3cret-value",
            "--header",
            "X-Env: staging",
        ],
    );
    post(&relay, "{}");
    let got = target.wait_for(1);
    assert_eq!(
        got[0].header("x-internal-token").as_deref(),
        Some("s3cret-value")
    );
    assert_eq!(got[0].header("x-env").as_deref(), Some("staging"));
    wait_cursor(&relay, 1);
    assert!(
        !a.stderr_text().contains("s3cret-value"),
        "{}",
        a.stderr_text()
    );
}

#[test]
fn a_timeout_shorter_than_the_service_turns_into_a_retry() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path());
    // The first answer takes 3 s; --timeout 0.5 gives up on it and tries again.
    let (url, seen) = slow_first_service(1, Duration::from_secs(3));
    let a = agent(&relay, &url, "hookrelay=info", &["--timeout", "0.5"]);
    post(&relay, "{}");
    let stderr = wait_stderr(&a, "delivered");
    assert!(
        stderr.contains("retrying") && stderr.contains("timed out"),
        "{stderr}"
    );
    assert!(stderr.contains("attempts=2"), "{stderr}");
    assert_eq!(seen.lock().expect("lock").len(), 2);
}

#[test]
fn each_delivery_is_logged_at_info_unless_quiet() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path());
    let target = Target::ok();
    let a = agent(&relay, &target.url(), "hookrelay=info", &[]);
    post(&relay, "{}");
    let stderr = wait_stderr(&a, "delivered");
    let line = stderr
        .lines()
        .find(|l| l.contains("delivered"))
        .expect("line");
    for field in [
        "INFO",
        "channel=c",
        "offset=1",
        "status=200",
        "attempts=1",
        "duration_ms=",
    ] {
        assert!(line.contains(field), "{field} missing: {line}");
    }
    drop(a);

    let quiet = agent(
        &relay,
        &target.url(),
        "hookrelay=info",
        &["--quiet", "--group", "quiet"],
    );
    target.wait_for(2);
    let start = Instant::now();
    // The group's cursor moves only after the delivery was settled (and logged).
    loop {
        let (_, json) = get(&relay.url("/v1/channels/c/groups"), Some("adm"));
        let done = json["groups"]
            .as_array()
            .and_then(|gs| gs.iter().find(|g| g["name"] == "quiet"))
            .and_then(|g| g["cursor"].as_u64())
            == Some(1);
        if done {
            break;
        }
        assert!(start.elapsed() < DEADLINE, "quiet group never acked");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !quiet.stderr_text().contains("delivered"),
        "{}",
        quiet.stderr_text()
    );
}
