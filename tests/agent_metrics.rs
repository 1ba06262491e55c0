//! `hookrelay agent --metrics-listen`: `/metrics` (parsed with a Prometheus parser) and
//! `/healthz` against a real relay and a local service, through deliveries, retries, a
//! dead letter, a relay killed with SIGKILL and a relay started again on its port.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::metrics::{samples, scrape, value};
use common::*;
use prometheus_parse::{Scrape, Value};

const TOKEN: &str = "tok-metrics";
const CH: &str = "m";

/// The `+Inf` bucket (the observation count) of histogram `name{channel=CH}`.
fn histogram_count(s: &Scrape, name: &str) -> Option<f64> {
    samples(s, name, &[("channel", CH)]).find_map(|x| match &x.value {
        Value::Histogram(buckets) => buckets
            .iter()
            .find(|b| b.less_than.is_infinite())
            .map(|b| b.count),
        _ => None,
    })
}

/// `name{channel=CH, extra...}`, 0 when absent.
fn get(s: &Scrape, name: &str, extra: &[(&str, &str)]) -> f64 {
    let mut labels = vec![("channel", CH)];
    labels.extend_from_slice(extra);
    value(s, name, &labels).unwrap_or(0.0)
}

/// Scrapes until `pred` holds; panics with the last scrape past the deadline.
fn wait_metrics(url: &str, what: &str, pred: impl Fn(&Scrape) -> bool) -> Scrape {
    let start = Instant::now();
    loop {
        let s = scrape(url);
        if pred(&s) {
            return s;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "timed out waiting for {what}: {:?}",
            s.samples
                .iter()
                .filter(|x| x.metric.starts_with("hookrelay_agent"))
                .map(|x| (&x.metric, &x.labels, &x.value))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `/healthz` until it answers `status`; returns the JSON.
fn wait_health(base: &str, status: u16) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let (code, json) = common::get(&format!("{base}/healthz"), None);
        if code == status {
            return json;
        }
        assert!(start.elapsed() < DEADLINE, "healthz stayed {code}: {json}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A service that answers by body: `ok` 200, `flaky` 500 once then 200, `bad` 400.
fn service() -> Target {
    let failed_once = Arc::new(AtomicBool::new(false));
    Target::with(move |req, _| match req.body.as_slice() {
        b"flaky" if !failed_once.swap(true, Ordering::SeqCst) => (500, vec![]),
        b"bad" => (400, vec![]),
        _ => (200, vec![]),
    })
}

#[test]
fn agent_metrics_follow_deliveries_and_the_connection() {
    let dir = tempfile::tempdir().expect("tmp");
    let channels =
        format!("[[channel]]\nname = \"{CH}\"\nscheme = \"none\"\ntokens = [\"{TOKEN}\"]\n");
    let mut relay = RelayProc::start(dir.path(), "", &channels);
    let target = service();
    let agent = AgentProc::spawn(&[
        "agent",
        "--relay",
        &relay.ws_url(),
        "--channel",
        CH,
        "--forward",
        &target.url(),
        "--token",
        TOKEN,
        "--metrics-listen",
        "127.0.0.1:0",
    ]);
    let base = agent
        .wait_line("hookrelay agent metrics on ")
        .trim_start_matches("hookrelay agent metrics on ")
        .to_string();
    let metrics = format!("{base}/metrics");
    agent.wait_line("hookrelay agent subscribed ");
    let health = wait_health(&base, 200);
    assert_eq!(health["status"], "connected", "{health}");
    assert_eq!(health["channels"][CH], true, "{health}");

    for body in ["ok", "flaky", "bad"] {
        let (status, json) = post_raw(
            &relay.url(&format!("/hooks/{CH}")),
            "POST",
            &[],
            body.as_bytes(),
        );
        assert_eq!(status, 200, "{json}");
    }
    let s = wait_metrics(&metrics, "a dead letter and three deliveries", |s| {
        get(s, "hookrelay_agent_dead_letters_total", &[]) == 1.0
            && get(s, "hookrelay_agent_deliveries_total", &[("class", "2xx")]) == 2.0
    });
    assert_eq!(target.received().len(), 4, "ok, flaky 500, flaky 200, bad");
    assert_eq!(
        get(
            &s,
            "hookrelay_agent_deliveries_total",
            &[("class", "2xx"), ("code", "200")]
        ),
        2.0
    );
    assert_eq!(
        get(
            &s,
            "hookrelay_agent_deliveries_total",
            &[("class", "5xx"), ("code", "500")]
        ),
        1.0
    );
    assert_eq!(
        get(
            &s,
            "hookrelay_agent_deliveries_total",
            &[("class", "4xx"), ("code", "400")]
        ),
        1.0
    );
    assert_eq!(get(&s, "hookrelay_agent_attempts_total", &[]), 4.0);
    assert_eq!(get(&s, "hookrelay_agent_retries_total", &[]), 1.0);
    assert_eq!(get(&s, "hookrelay_agent_filtered_total", &[]), 0.0);
    assert_eq!(
        histogram_count(&s, "hookrelay_agent_service_duration_seconds"),
        Some(4.0)
    );
    assert_eq!(
        histogram_count(&s, "hookrelay_agent_end_to_end_seconds"),
        Some(2.0)
    );
    assert_eq!(get(&s, "hookrelay_agent_in_flight", &[]), 0.0);
    assert_eq!(
        value(&s, "hookrelay_agent_connected", &[("channel", CH)]),
        Some(1.0)
    );
    assert_eq!(
        value(&s, "hookrelay_agent_reconnects_total", &[("channel", CH)]),
        Some(0.0)
    );
    // Bounded labels: the one configured channel, nothing the events carried.
    for labels in common::metrics::label_sets(&s, "hookrelay_agent_deliveries_total") {
        assert_eq!(
            labels.get("channel").map(String::as_str),
            Some(CH),
            "{labels:?}"
        );
    }

    // The relay dies without a goodbye: the agent says it is disconnected.
    let addr = relay.addr.to_string();
    relay.kill();
    wait_metrics(&metrics, "connected 0", |s| {
        get(s, "hookrelay_agent_connected", &[]) == 0.0
    });
    let health = wait_health(&base, 503);
    assert_eq!(health["status"], "disconnected", "{health}");

    // A relay on the same address again: the agent reconnects and counts it.
    let config = relay.config_path.clone();
    let _relay = RelayProc::start_with(dir.path(), &config, &["--listen", &addr]);
    let s = wait_metrics(&metrics, "a reconnect", |s| {
        get(s, "hookrelay_agent_connected", &[]) == 1.0
            && get(s, "hookrelay_agent_reconnects_total", &[]) == 1.0
    });
    // Counters survive the reconnect (an event whose ack the kill cut off may come
    // again, so they only grow).
    assert!(get(&s, "hookrelay_agent_dead_letters_total", &[]) >= 1.0);
    assert_eq!(wait_health(&base, 200)["status"], "connected");
}

#[test]
fn metrics_listen_comes_from_agent_toml_too() {
    let dir = tempfile::tempdir().expect("tmp");
    let channels =
        format!("[[channel]]\nname = \"{CH}\"\nscheme = \"none\"\ntokens = [\"{TOKEN}\"]\n");
    let relay = RelayProc::start(dir.path(), "", &channels);
    let target = Target::ok();
    let file = dir.path().join("agent.toml");
    let text = format!(
        "relay = \"{}\"\ntoken = \"{TOKEN}\"\nmetrics_listen = \"127.0.0.1:0\"\n\n[[route]]\nchannel = \"{CH}\"\nforward = \"{}\"\n",
        relay.ws_url(),
        target.url()
    );
    std::fs::write(&file, text).expect("write agent.toml");
    let agent = AgentProc::spawn(&["agent", "--config", file.to_str().expect("utf8")]);
    let base = agent
        .wait_line("hookrelay agent metrics on ")
        .trim_start_matches("hookrelay agent metrics on ")
        .to_string();
    agent.wait_line("hookrelay agent subscribed ");
    let (status, _) = post_raw(&relay.url(&format!("/hooks/{CH}")), "POST", &[], b"x");
    assert_eq!(status, 200);
    let s = wait_metrics(&format!("{base}/metrics"), "one delivery", |s| {
        get(s, "hookrelay_agent_deliveries_total", &[("code", "200")]) == 1.0
    });
    assert_eq!(get(&s, "hookrelay_agent_connected", &[]), 1.0);
}
