//! `--filter` and header routes: events that match go to their route's service, the
//! others are acknowledged without delivery (the group's cursor moves past them).

mod common;

use std::time::Duration;

use common::*;

const TOKEN: &str = "agent-token-1";
const ADMIN: &str = "adm";

fn start_relay(dir: &std::path::Path) -> RelayProc {
    RelayProc::start(
        dir,
        &format!("admin_token = \"{ADMIN}\""),
        &format!("[[channel]]\nname = \"c\"\nscheme = \"none\"\ntokens = [\"{TOKEN}\"]\n"),
    )
}

/// Posts `body` with an `X-GitHub-Event` header; returns the offset.
fn post_event(relay: &RelayProc, event: &str, body: &str) -> u64 {
    let headers = vec![("X-GitHub-Event".to_string(), event.to_string())];
    let (status, json) = post_raw(&relay.url("/hooks/c"), "POST", &headers, body.as_bytes());
    assert_eq!(status, 200, "{json}");
    json["offset"].as_u64().expect("offset")
}

/// The cursor of `group` on channel `c` (admin API `GET /v1/channels/c/groups`).
fn cursor(relay: &RelayProc, group: &str) -> u64 {
    let (status, json) = get(&relay.url("/v1/channels/c/groups"), Some(ADMIN));
    assert_eq!(status, 200, "{json}");
    json["groups"]
        .as_array()
        .and_then(|gs| gs.iter().find(|g| g["name"] == group))
        .and_then(|g| g["cursor"].as_u64())
        .unwrap_or(0)
}

fn wait_cursor(relay: &RelayProc, group: &str, want: u64) {
    let start = std::time::Instant::now();
    while cursor(relay, group) < want {
        assert!(
            start.elapsed() < DEADLINE,
            "cursor never reached {want} (is {})",
            cursor(relay, group)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn offsets(v: &[Received]) -> Vec<u64> {
    v.iter()
        .map(|r| {
            r.header("x-hookrelay-offset")
                .and_then(|o| o.parse().ok())
                .expect("offset header")
        })
        .collect()
}

#[test]
fn header_and_json_filters_deliver_matches_and_ack_the_rest() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path());
    let target = Target::ok();
    let url = target.url();
    let _agent = AgentProc::start(&[
        "--relay",
        &relay.base,
        "--channel",
        "c",
        "--forward",
        &url,
        "--token",
        TOKEN,
        "--filter",
        "header:X-GitHub-Event=push",
        "--filter",
        "json:/ref^=refs/heads/",
    ]);
    post_event(&relay, "push", r#"{"ref":"refs/heads/main"}"#);
    post_event(&relay, "issues", r#"{"ref":"refs/heads/main"}"#);
    post_event(&relay, "push", r#"{"ref":"refs/tags/v1"}"#);
    post_event(&relay, "push", "not json");
    post_event(&relay, "push", r#"{"ref":"refs/heads/dev"}"#);
    wait_cursor(&relay, "default", 5);
    assert_eq!(offsets(&target.wait_for(2)), vec![1, 5]);
    // A filtered event alone still moves the cursor.
    post_event(&relay, "pull_request", "{}");
    wait_cursor(&relay, "default", 6);
    assert_eq!(target.received().len(), 2, "nothing more delivered");
}

#[test]
fn json_filter_compares_values_exactly() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path());
    let target = Target::ok();
    let url = target.url();
    let _agent = AgentProc::start(&[
        "--relay",
        &relay.base,
        "--channel",
        "c",
        "--forward",
        &url,
        "--token",
        TOKEN,
        "--filter",
        "json:/action=opened",
    ]);
    for body in [
        r#"{"action":"opened"}"#,
        r#"{"action":"opened_again"}"#,
        r#"{"action":"closed"}"#,
        r#"{"other":"opened"}"#,
        r#"{"action":"opened","n":1}"#,
    ] {
        post_event(&relay, "x", body);
    }
    wait_cursor(&relay, "default", 5);
    assert_eq!(offsets(&target.wait_for(2)), vec![1, 5]);
}

#[test]
fn header_routes_share_one_subscription_first_match_wins() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path());
    let pushes = Target::ok();
    let others = Target::ok();
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "relay = \"{}\"\ntoken = \"{TOKEN}\"\n\n\
             [[route]]\nchannel = \"c\"\nforward = \"{}\"\nfilter = [\"header:X-GitHub-Event=push\"]\n\n\
             [[route]]\nchannel = \"c\"\nforward = \"{}\"\n",
            relay.base,
            pushes.url(),
            others.url()
        ),
    )
    .expect("write");
    let agent = AgentProc::start(&["--config", config.to_str().expect("utf-8")]);
    for event in ["push", "issues", "push", "ping"] {
        post_event(&relay, event, "{}");
    }
    assert_eq!(offsets(&pushes.wait_for(2)), vec![1, 3]);
    assert_eq!(offsets(&others.wait_for(2)), vec![2, 4]);
    wait_cursor(&relay, "default", 4);
    let subscribed: Vec<String> = agent
        .lines()
        .into_iter()
        .filter(|l| l.starts_with("hookrelay agent subscribed "))
        .collect();
    assert_eq!(
        subscribed.len(),
        1,
        "one subscription for both routes: {subscribed:?}"
    );
}

#[test]
fn events_no_route_takes_are_acked_and_counted() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path());
    let pushes = Target::ok();
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "relay = \"{}\"\ntoken = \"{TOKEN}\"\n\n\
             [[route]]\nchannel = \"c\"\nforward = \"{}\"\nfilter = [\"header:X-GitHub-Event=push\"]\n",
            relay.base,
            pushes.url(),
        ),
    )
    .expect("write");
    let agent = AgentProc::start(&["--config", config.to_str().expect("utf-8")]);
    post_event(&relay, "ping", "{}");
    post_event(&relay, "push", "{}");
    assert_eq!(offsets(&pushes.wait_for(1)), vec![2]);
    wait_cursor(&relay, "default", 2);
    let stderr = agent.stderr_text();
    assert!(
        stderr.contains("filtered out") && stderr.contains("offset=1"),
        "{stderr}"
    );
}
