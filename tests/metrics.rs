//! The relay's `/metrics`, read the way Prometheus reads it (a text-format parser, not
//! substrings), against real relay and agent processes: the figures move with ingest,
//! refusals, deliveries, lag, dead letters and group membership, and every relay
//! metric the shipped alert rules and dashboard use is really exported.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use hookrelay::common::verify::SchemeKind;
use prometheus_parse::Scrape;

const SECRET: &str = "metrics-test-secret";
const TOKEN: &str = "metrics-test-token";
const MAX_BODY_BYTES: usize = 1024;

/// One signed channel `gh` (GitHub scheme) and one unsigned channel `a`.
fn start_relay(dir: &Path) -> RelayProc {
    RelayProc::start(
        dir,
        &format!("max_body_bytes = {MAX_BODY_BYTES}"),
        &format!(
            "[[channel]]\nname = \"gh\"\nscheme = \"github\"\nsecrets = [\"{SECRET}\"]\ntokens = [\"{TOKEN}\"]\n\n\
             [[channel]]\nname = \"a\"\nscheme = \"none\"\ntokens = [\"{TOKEN}\"]\n"
        ),
    )
}

fn scrape(relay: &RelayProc) -> Scrape {
    common::metrics::scrape(&relay.url("/metrics"))
}

fn value(s: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    common::metrics::value(s, name, labels)
}

/// Scrapes until `cond` holds on a scrape; fails past the deadline with the last one.
fn wait_scrape(relay: &RelayProc, what: &str, cond: impl Fn(&Scrape) -> bool) -> Scrape {
    let start = Instant::now();
    loop {
        let s = scrape(relay);
        if cond(&s) {
            return s;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "timed out waiting for {what}; last scrape: {:?}",
            s.samples
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn post_gh(relay: &RelayProc, secret: &str, body: &[u8], id: &str) -> u16 {
    let url = relay.url("/hooks/gh");
    post_signed(&url, SchemeKind::Github, secret, body, Some(id), &[]).0
}

fn post_a(relay: &RelayProc, body: &[u8]) {
    let (status, json) = post_raw(&relay.url("/hooks/a"), "POST", &[], body);
    assert_eq!(status, 200, "{json}");
}

fn agent(relay: &RelayProc, target: &Target, group: &str) -> AgentProc {
    let ws = relay.ws_url();
    let url = target.url();
    AgentProc::start(&[
        "--relay",
        &ws,
        "--channel",
        "a",
        "--forward",
        &url,
        "--token",
        TOKEN,
        "--group",
        group,
    ])
}

/// The `{channel="a", group}` labels.
fn ag(group: &str) -> [(&'static str, &str); 2] {
    [("channel", "a"), ("group", group)]
}

#[test]
fn ingest_and_refusals_move_the_counters_and_histograms() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path());
    assert_eq!(post_gh(&relay, SECRET, b"{\"n\":1}", "d-1"), 200);
    assert_eq!(
        post_gh(&relay, SECRET, b"{\"n\":1}", "d-1"),
        200,
        "duplicate"
    );
    assert_eq!(post_gh(&relay, "wrong-secret", b"{}", "d-2"), 401);
    let (status, _) = post_raw(&relay.url("/hooks/gh"), "POST", &[], b"{}");
    assert_eq!(status, 401, "unsigned");
    let big = vec![b'x'; MAX_BODY_BYTES * 2];
    assert_eq!(post_gh(&relay, SECRET, &big, "d-3"), 413);

    let s = scrape(&relay);
    let req = |result, status| {
        let labels = [("channel", "gh"), ("result", result), ("status", status)];
        value(&s, "hookrelay_ingest_requests_total", &labels)
    };
    assert_eq!(req("ok", "200"), Some(1.0));
    assert_eq!(req("duplicate", "200"), Some(1.0));
    assert_eq!(req("invalid_signature", "401"), Some(1.0));
    assert_eq!(req("missing_signature", "401"), Some(1.0));
    assert_eq!(req("payload_too_large", "413"), Some(1.0));
    let failures = |reason| {
        let labels = [("channel", "gh"), ("reason", reason)];
        value(&s, "hookrelay_verification_failures_total", &labels)
    };
    assert_eq!(failures("invalid_signature"), Some(1.0));
    assert_eq!(failures("missing_signature"), Some(1.0));
    assert_eq!(
        failures("timestamp_out_of_tolerance"),
        Some(0.0),
        "every reason is exported at zero before its first refusal"
    );
    let dead = value(
        &s,
        "hookrelay_events_dead_lettered_total",
        &[("channel", "a")],
    );
    assert_eq!(dead, Some(0.0), "per-channel counters start at zero");

    let ok = [("channel", "gh"), ("result", "ok")];
    let count = |name, labels: &[(&str, &str)]| common::metrics::histogram_count(&s, name, labels);
    assert_eq!(count("hookrelay_ingest_duration_seconds", &ok), Some(1.0));
    let refused = [("channel", "gh"), ("result", "invalid_signature")];
    assert_eq!(
        count("hookrelay_ingest_duration_seconds", &refused),
        Some(1.0)
    );
    assert!(count("hookrelay_commit_batch_size", &[]).is_some_and(|n| n >= 1.0));
    assert_eq!(value(&s, "hookrelay_log_appended_total", &[]), Some(1.0));
    assert_eq!(
        value(&s, "hookrelay_channel_head", &[("channel", "gh")]),
        Some(1.0)
    );
    assert!(value(&s, "hookrelay_storage_bytes", &[]).is_some_and(|b| b > 0.0));
    assert_eq!(
        value(&s, "hookrelay_retention_removed_total", &[]),
        Some(0.0)
    );
    assert_eq!(value(&s, "hookrelay_storage_failed", &[]), Some(0.0));
    assert_eq!(value(&s, "hookrelay_log_storage_failed", &[]), Some(0.0));
    assert_eq!(value(&s, "hookrelay_ready", &[]), Some(1.0));
}

#[test]
fn deliveries_move_the_cursor_and_lag_grows_while_no_agent_is_there() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path());
    for i in 0..3 {
        post_a(&relay, format!("{i}").as_bytes());
    }
    let target = Target::ok();
    let mut first = agent(&relay, &target, "g");
    target.wait_for(3);
    wait_scrape(&relay, "the group caught up", |s| {
        value(s, "hookrelay_group_cursor", &ag("g")) == Some(3.0)
            && value(s, "hookrelay_group_lag_events", &ag("g")) == Some(0.0)
            && value(s, "hookrelay_group_lag_seconds", &ag("g")) == Some(0.0)
            && value(s, "hookrelay_group_dead_letters", &ag("g")) == Some(0.0)
    });

    // A second agent in the group stands by.
    let second = agent(&relay, &target, "g");
    let members = |s: &Scrape, state| {
        let labels = [("channel", "a"), ("group", "g"), ("state", state)];
        value(s, "hookrelay_group_members", &labels)
    };
    wait_scrape(&relay, "one active and one standby member", |s| {
        members(s, "active") == Some(1.0) && members(s, "standby") == Some(1.0)
    });

    // With no agent at all, new events wait: lag in events and in seconds.
    first.kill();
    drop(second);
    wait_scrape(&relay, "no member left", |s| {
        members(s, "active") == Some(0.0) && members(s, "standby") == Some(0.0)
    });
    post_a(&relay, b"late-1");
    post_a(&relay, b"late-2");
    let s = wait_scrape(&relay, "lag while the agent is away", |s| {
        value(s, "hookrelay_group_lag_events", &ag("g")) == Some(2.0)
            && value(s, "hookrelay_group_lag_seconds", &ag("g")).is_some_and(|v| v > 0.0)
    });
    assert_eq!(value(&s, "hookrelay_group_cursor", &ag("g")), Some(3.0));

    // The agent comes back: the lag drains to zero.
    let _back = agent(&relay, &target, "g");
    target.wait_for(5);
    wait_scrape(&relay, "the lag to drain", |s| {
        value(s, "hookrelay_group_cursor", &ag("g")) == Some(5.0)
            && value(s, "hookrelay_group_lag_events", &ag("g")) == Some(0.0)
            && value(s, "hookrelay_group_lag_seconds", &ag("g")) == Some(0.0)
            && value(s, "hookrelay_events_acked_total", &[("channel", "a")]) >= Some(5.0)
    });
}

#[test]
fn an_event_the_service_refuses_is_a_dead_letter() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path());
    let target = Target::with(|_, _| (400, vec![]));
    let _agent = agent(&relay, &target, "dl");
    post_a(&relay, b"refused");
    target.wait_for(1);
    // The dead letter is stored, then counted; and, settled, it lets the cursor move
    // past it, so nothing is lagging.
    let s = wait_scrape(&relay, "the dead letter, counted and settled", |s| {
        value(s, "hookrelay_group_dead_letters", &ag("dl")) == Some(1.0)
            && value(
                s,
                "hookrelay_events_dead_lettered_total",
                &[("channel", "a")],
            ) == Some(1.0)
            && value(s, "hookrelay_group_cursor", &ag("dl")) == Some(1.0)
    });
    assert_eq!(
        value(&s, "hookrelay_group_lag_events", &ag("dl")),
        Some(0.0)
    );
    assert_eq!(
        value(&s, "hookrelay_group_lag_seconds", &ag("dl")),
        Some(0.0)
    );
}

/// Relay metric names (not `hookrelay_agent_*`) in a rules or dashboard file, found
/// crudely: every `hookrelay_[a-z0-9_]+` word.
fn relay_names_in(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("hookrelay_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        if !name.starts_with("hookrelay_agent_") {
            out.insert(name.trim_end_matches("_bucket").to_string());
        }
        rest = &tail[end..];
    }
    out
}

#[test]
fn every_relay_metric_the_alerts_and_dashboard_use_is_exported() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path());
    // Give every family a series: an accepted event, a refused signature, a group.
    assert_eq!(post_gh(&relay, SECRET, b"{}", "d-1"), 200);
    assert_eq!(post_gh(&relay, "wrong-secret", b"{}", "d-2"), 401);
    let target = Target::ok();
    post_a(&relay, b"one");
    let _agent = agent(&relay, &target, "g");
    target.wait_for(1);
    let exported = common::metrics::names(&wait_scrape(&relay, "the group", |s| {
        value(s, "hookrelay_group_cursor", &ag("g")).is_some()
    }));

    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy");
    for file in ["prometheus/alerts.yml", "grafana/hookrelay.json"] {
        let text = std::fs::read_to_string(deploy.join(file)).expect("deploy file");
        let used = relay_names_in(&text);
        assert!(!used.is_empty(), "{file} names no relay metric");
        let missing: Vec<_> = used.difference(&exported).collect();
        assert!(
            missing.is_empty(),
            "{file} uses {missing:?}, which the relay does not export; it exports {exported:?}"
        );
    }
}
