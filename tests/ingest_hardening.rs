//! Ingest under attack, on a real relay: a path that could leave the agent's forward
//! prefix, forged requests that must not spend the real sender's rate limit, replays
//! without a delivery id, and startup errors that say their cause once.

mod common;
#[path = "common/hooks.rs"]
mod hooks;

use std::net::IpAddr;

use common::RelayProc;
use hooks::*;

const GH_SECRET: &str = "gh-secret-hardening";
const STRIPE_SECRET: &str = "whsec_stripe_hardening";

fn channels() -> String {
    format!(
        r#"
[[channel]]
name = "open"
scheme = "none"

[[channel]]
name = "gh"
scheme = "github"
secrets = ["{GH_SECRET}"]
rate_limit = {{ per_second = 1, burst = 10 }}

[[channel]]
name = "st"
scheme = "stripe"
secrets = ["{STRIPE_SECRET}"]
tolerance_secs = 300
"#
    )
}

fn start() -> (tempfile::TempDir, RelayProc) {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = RelayProc::start(
        dir.path(),
        &format!("admin_token = \"{ADMIN}\""),
        &channels(),
    );
    (dir, relay)
}

#[test]
fn dot_segments_in_the_path_suffix_are_refused_and_nothing_is_stored() {
    let (_dir, relay) = start();
    for path in [
        "/hooks/open/../../admin/delete",
        "/hooks/open/a/./b",
        "/hooks/open/%2e%2e/admin",
        "/hooks/open/x/%2E%2e%2fadmin",
    ] {
        let answer = raw_exchange(relay.addr, &raw_request("POST", path, &[], b"{}", true));
        let text = String::from_utf8_lossy(&answer);
        assert_eq!(first_status(&answer), Some(400), "{path}: {text}");
        assert!(text.contains("\"error\":\"bad_request\""), "{path}: {text}");
    }
    let http = Http::new();
    assert_eq!(head(&http, &relay, "open"), 0, "nothing refused is stored");
    // Dots inside a segment are fine.
    let ok = raw_exchange(
        relay.addr,
        &raw_request("POST", "/hooks/open/v1.2/..a/.well-known", &[], b"{}", true),
    );
    assert_eq!(
        first_status(&ok),
        Some(200),
        "{}",
        String::from_utf8_lossy(&ok)
    );
}

/// A client whose connections come from `source` (any 127.0.0.0/8 address is local).
fn http_from(source: &str) -> Http {
    let ip: IpAddr = source.parse().expect("ip");
    Http::with_client(
        reqwest::Client::builder()
            .local_address(ip)
            .build()
            .expect("client"),
    )
}

#[test]
fn forged_requests_do_not_spend_the_real_senders_rate_limit() {
    let (_dir, relay) = start();
    let url = relay.url("/hooks/gh");
    let forger = http_from("127.0.0.2");
    let sender = http_from("127.0.0.1");
    let mut forged_limited = 0;
    for i in 0..10 {
        // Three forgeries (wrong secret) before each real webhook.
        for _ in 0..3 {
            let r = forger.post(&url, &github("not-the-secret", b"{}", None), b"{}");
            assert!(r.status == 401 || r.status == 429, "{}", r.text());
            if r.status == 429 {
                r.assert_error(429, "rate_limited");
                assert!(r.header("retry-after").is_some());
                forged_limited += 1;
            }
        }
        let body = format!("{{\"n\":{i}}}");
        let headers = github(GH_SECRET, body.as_bytes(), Some(&format!("d-{i}")));
        let r = sender.post(&url, &headers, body.as_bytes());
        assert_eq!(r.status, 200, "real webhook {i}: {}", r.text());
    }
    assert!(
        forged_limited > 0,
        "the forger's address ran out of failures"
    );
    let http = Http::new();
    assert_eq!(head(&http, &relay, "gh"), 10);
}

#[test]
fn a_replay_without_a_delivery_id_is_a_duplicate() {
    let (_dir, relay) = start();
    let http = Http::new();
    let body = br#"{"id":"evt_stripe_1","type":"charge.succeeded"}"#;
    let headers = stripe(STRIPE_SECRET, body, now_secs());
    let first = http.post(&relay.url("/hooks/st"), &headers, body);
    assert_eq!(first.status, 200, "{}", first.text());
    let again = http.post(&relay.url("/hooks/st"), &headers, body);
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.json["duplicate"], true, "{}", again.text());
    assert_eq!(again.json["offset"], first.json["offset"]);
    // The same body signed anew (another timestamp) is another delivery.
    let later = stripe(STRIPE_SECRET, body, now_secs() - 10);
    let other = http.post(&relay.url("/hooks/st"), &later, body);
    assert_eq!(other.json["duplicate"], false, "{}", other.text());
    assert_eq!(head(&http, &relay, "st"), 2);
}

#[test]
fn a_startup_error_names_its_cause_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let not_a_dir = dir.path().join("file");
    std::fs::write(&not_a_dir, b"x").expect("write");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\n\n[[channel]]\nname = \"c\"\nscheme = \"none\"\n",
            not_a_dir.join("data").display().to_string()
        ),
    )
    .expect("config");
    let out = std::process::Command::new(common::bin())
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("no error line: {stderr}"));
    assert_eq!(
        line.matches("storage failure").count(),
        1,
        "the cause is said once: {line}"
    );
}

#[test]
fn admin_paths_are_404_for_every_method_without_an_admin_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = RelayProc::start(dir.path(), "", &channels());
    let http = Http::new();
    for method in ["GET", "POST", "DELETE", "PUT"] {
        for path in [
            "/v1/channels",
            "/v1/channels/gh/groups/g/reset",
            "/v1/channels/gh/events",
        ] {
            let r = http.send(method, &relay.url(path), &[], b"");
            r.assert_error(404, "not_found");
        }
    }
    let (_dir, with_admin) = start();
    let r = http.send("POST", &with_admin.url("/v1/channels"), &[auth()], b"");
    r.assert_error(405, "method_not_allowed");
}

fn auth() -> (String, String) {
    ("authorization".into(), format!("Bearer {ADMIN}"))
}

#[test]
fn admin_query_values_are_percent_decoded() {
    let (_dir, relay) = start();
    let http = Http::new();
    for i in 0..3 {
        let r = http.post(&relay.url("/hooks/open"), &[], format!("{i}").as_bytes());
        assert_eq!(r.status, 200);
    }
    let r = http.get(
        &relay.url("/v1/channels/open/events?from=%32&limit=%31"),
        Some(ADMIN),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let events = r.json["events"].as_array().expect("events").clone();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["offset"], 2);
}

#[test]
fn a_github_channel_can_require_the_delivery_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let channel = format!(
        "[[channel]]\nname = \"gh\"\nscheme = \"github\"\nsecrets = [\"{GH_SECRET}\"]\nrequire_delivery_id = true\n"
    );
    let relay = RelayProc::start(dir.path(), &format!("admin_token = \"{ADMIN}\""), &channel);
    let http = Http::new();
    let url = relay.url("/hooks/gh");
    let first = http.post(&url, &github(GH_SECRET, b"{}", Some("d-1")), b"{}");
    assert_eq!(first.status, 200, "{}", first.text());
    // The same request with its delivery id dropped: refused, not stored again.
    let replay = http.post(&url, &github(GH_SECRET, b"{}", None), b"{}");
    replay.assert_error(400, "bad_request");
    assert!(
        replay.text().contains("x-github-delivery"),
        "{}",
        replay.text()
    );
    // A forgery without the id is still a signature failure first.
    let forged = http.post(&url, &github("wrong", b"{}", None), b"{}");
    forged.assert_error(401, "invalid_signature");
    assert_eq!(head(&http, &relay, "gh"), 1);
}

#[test]
fn the_disk_reserve_is_configurable_and_its_refusals_are_logged_once_per_interval() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A reserve no disk here has: every append is refused, nothing is stored.
    let relay = RelayProc::start(
        dir.path(),
        &format!("admin_token = \"{ADMIN}\"\ndisk_reserve_bytes = 1000000000000000000"),
        "[[channel]]\nname = \"open\"\nscheme = \"none\"\n",
    );
    let http = Http::new();
    for _ in 0..20 {
        let r = http.post(&relay.url("/hooks/open"), &[], b"{}");
        r.assert_error(503, "unavailable");
    }
    assert_eq!(head(&http, &relay, "open"), 0);
    let stderr = relay.stderr_text();
    let lines = stderr
        .lines()
        .filter(|l| l.contains("append failed"))
        .count();
    assert_eq!(lines, 1, "one ERROR line for 20 refusals:\n{stderr}");
    assert!(stderr.contains("kept in reserve"), "{stderr}");
}
