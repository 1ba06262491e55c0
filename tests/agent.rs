//! `hookrelay agent` end to end: a real relay, real agent processes, a recording local
//! service. Guarantees 4 (at least once, in order), 5 (byte-exact) and 6 (bad input
//! ends cleanly), plus the forwarding rules of `hookrelay::agent::forward` on their own.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use hookrelay::common::verify::SchemeKind;

const TOKEN: &str = "agent-token-1";
const ADMIN: &str = "adm";

/// A `scheme = "none"` channel an agent may read with [`TOKEN`].
fn open_channel(name: &str) -> String {
    format!("[[channel]]\nname = \"{name}\"\nscheme = \"none\"\ntokens = [\"{TOKEN}\"]\n")
}

fn start_relay(dir: &std::path::Path, channels: &str) -> RelayProc {
    RelayProc::start(dir, &format!("admin_token = \"{ADMIN}\""), channels)
}

/// Posts raw header bytes (non-ASCII values included) and returns (offset, id).
fn post_bytes(url: &str, method: &str, headers: &[(&str, &[u8])], body: &[u8]) -> (u64, String) {
    install_crypto();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(async {
        let mut map = http::HeaderMap::new();
        for (n, v) in headers {
            map.append(
                http::HeaderName::from_bytes(n.as_bytes()).expect("name"),
                http::HeaderValue::from_bytes(v).expect("value"),
            );
        }
        let resp = reqwest::Client::new()
            .request(http::Method::from_bytes(method.as_bytes()).expect("m"), url)
            .headers(map)
            .body(body.to_vec())
            .send()
            .await
            .expect("post");
        assert_eq!(resp.status(), 200, "ingest refused {url}");
        let json: serde_json::Value =
            serde_json::from_slice(&resp.bytes().await.expect("body")).expect("json");
        (
            json["offset"].as_u64().expect("offset"),
            json["id"].as_str().expect("id").to_string(),
        )
    })
}

/// Posts `body` to channel `ch` and returns its offset.
fn post(relay: &RelayProc, ch: &str, body: &[u8]) -> u64 {
    post_bytes(&relay.url(&format!("/hooks/{ch}")), "POST", &[], body).0
}

fn agent_args<'a>(relay: &'a str, ch: &'a str, target: &'a str) -> Vec<&'a str> {
    vec![
        "--relay",
        relay,
        "--channel",
        ch,
        "--forward",
        target,
        "--token",
        TOKEN,
    ]
}

/// The offset header of a forwarded request.
fn offset_of(r: &Received) -> u64 {
    r.header("x-hookrelay-offset")
        .and_then(|v| v.parse().ok())
        .expect("x-hookrelay-offset")
}

/// Offsets in order of first arrival.
fn first_arrivals(v: &[Received]) -> Vec<u64> {
    let mut seen = BTreeSet::new();
    v.iter()
        .map(offset_of)
        .filter(|o| seen.insert(*o))
        .collect()
}

fn covers(v: &[Received], n: u64) -> bool {
    let seen: BTreeSet<u64> = v.iter().map(offset_of).collect();
    (1..=n).all(|o| seen.contains(&o))
}

/// The committed cursor of `group` on `ch`, from the admin API (0 when none).
fn cursor(relay: &RelayProc, ch: &str, group: &str) -> u64 {
    let (status, json) = get(&relay.url("/v1/channels"), Some(ADMIN));
    assert_eq!(status, 200, "{json}");
    json["channels"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == ch))
        .and_then(|c| c["groups"].as_array())
        .and_then(|gs| gs.iter().find(|g| g["name"] == group))
        .and_then(|g| g["cursor"].as_u64())
        .unwrap_or(0)
}

fn wait_cursor(relay: &RelayProc, ch: &str, group: &str, want: u64) {
    let start = std::time::Instant::now();
    while cursor(relay, ch, group) < want {
        assert!(
            start.elapsed() < DEADLINE,
            "cursor of {ch}/{group} never reached {want} (is {})",
            cursor(relay, ch, group)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Method, path suffix with query, headers, body.
type Case = (
    &'static str,
    &'static str,
    Vec<(&'static str, &'static [u8])>,
    Vec<u8>,
);

#[test]
fn forwards_byte_exact_and_in_order() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path(), &open_channel("c"));
    let target = Target::ok();
    let binary: Vec<u8> = vec![0, 159, 146, 150, 255, 0xfe, b'\r', b'\n', 0];
    let cases: Vec<Case> = vec![
        (
            "POST",
            "/bin/x?a=1&b=%20&a=2",
            vec![
                ("content-type", b"application/octet-stream"),
                ("x-multi", b"one"),
                ("x-multi", b"two"),
            ],
            binary.clone(),
        ),
        (
            "PUT",
            "",
            vec![
                ("content-type", b"application/x-www-form-urlencoded"),
                ("x-latin", b"caf\xe9 cr\xe8me"),
            ],
            b"payload=%7B%22a%22%3A1%7D&x=a+b&empty=".to_vec(),
        ),
        (
            "PATCH",
            "/deep/path/%E2%9C%93/?q=%E2%9C%93",
            vec![
                ("content-type", b"application/json; charset=utf-8"),
                ("user-agent", b"GitHub-Hookshot/abc"),
                ("x-utf8", "żółć ✓".as_bytes()),
            ],
            "{\"text\": \"żółć ✓ \\u00e9\", \"n\":  1.50}\n"
                .as_bytes()
                .to_vec(),
        ),
        ("POST", "?only=query", vec![], Vec::new()),
    ];
    let mut sent = Vec::new();
    for (method, suffix, headers, body) in &cases {
        let (offset, id) = post_bytes(
            &relay.url(&format!("/hooks/c{suffix}")),
            method,
            headers,
            body,
        );
        sent.push((offset, id));
    }
    let base = format!("{}/base", target.url());
    let _agent = AgentProc::start(&agent_args(&relay.ws_url(), "c", &base));
    let got = target.wait_for(cases.len());
    assert_eq!(got.len(), cases.len(), "each event exactly once");
    for (i, ((method, suffix, headers, body), (offset, id))) in cases.iter().zip(&sent).enumerate()
    {
        let r = &got[i];
        assert_eq!(&r.method, method, "event {i}");
        assert_eq!(r.uri, format!("/base{suffix}"), "event {i}: path and query");
        assert_eq!(&r.body, body, "event {i}: body bytes");
        for (name, _) in headers {
            let want: Vec<Vec<u8>> = headers
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| v.to_vec())
                .collect();
            assert_eq!(r.headers_named(name), want, "event {i}: header {name}");
        }
        assert_eq!(
            r.header("content-length").as_deref(),
            Some(body.len().to_string().as_str())
        );
        assert_eq!(r.header("host"), Some(target.addr.to_string()));
        assert_eq!(r.header("x-hookrelay-channel").as_deref(), Some("c"));
        assert_eq!(offset_of(r), *offset);
        assert_eq!(r.header("x-hookrelay-event-id").as_ref(), Some(id));
    }
    wait_cursor(&relay, "c", "default", cases.len() as u64);
}

/// Sends `request_target` exactly as written (no client URL parser in between) and
/// returns the offset the relay gave the event.
fn post_raw_target(relay: &RelayProc, request_target: &str, body: &[u8]) -> u64 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(relay.addr).expect("connect");
    let head = format!(
        "POST {request_target} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("write");
    s.write_all(body).expect("write");
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).expect("read");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200"), "ingest refused: {text}");
    let json = text.split("\r\n\r\n").nth(1).expect("body");
    serde_json::from_str::<serde_json::Value>(json).expect("json")["offset"]
        .as_u64()
        .expect("offset")
}

#[test]
fn request_target_reaches_the_service_as_the_provider_sent_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path(), &open_channel("c"));
    let target = Target::ok();
    // Double slashes, dots inside names, quotes and every sub-delimiter a URL parser
    // would normalise or percent-encode, plus already-encoded bytes that must not be
    // decoded. (Dot segments are refused at ingest, tests/ingest_hardening.rs, and
    // dead-lettered by the agent, tests/agent_paths.rs.)
    let suffixes = [
        "/a//b/.c/d../c'd?q='it''s'&r=!$()*+,;:@/?&s=%27%2e&t=/../",
        "/%2e%2Ex/%41%2F/x%20y",
        "?k='v'",
    ];
    let mut offsets = Vec::new();
    for suffix in suffixes {
        offsets.push(post_raw_target(&relay, &format!("/hooks/c{suffix}"), b"{}"));
    }
    let base = format!("{}/base", target.url());
    let _agent = AgentProc::start(&agent_args(&relay.ws_url(), "c", &base));
    let got = target.wait_for(suffixes.len());
    assert_eq!(got.len(), suffixes.len(), "each event exactly once");
    for ((r, suffix), offset) in got.iter().zip(suffixes).zip(offsets) {
        assert_eq!(offset_of(r), offset);
        assert_eq!(r.uri, format!("/base{suffix}"), "offset {offset}");
        // Nothing the provider did not send, beyond the documented headers.
        assert_eq!(r.header("accept"), None);
        assert_eq!(r.header("user-agent"), None);
    }
}

#[test]
fn github_signature_still_verifies_at_the_target() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(
        dir.path(),
        &format!("[[channel]]\nname = \"gh\"\nscheme = \"github\"\nsecrets = [\"gh-secret\"]\ntokens = [\"{TOKEN}\"]\n"),
    );
    let target = Target::ok();
    let body = br#"{"action":"opened","number":7,"title":"caf\u00e9 \u2713"}"#;
    let (status, json) = post_signed(
        &relay.url("/hooks/gh"),
        SchemeKind::Github,
        "gh-secret",
        body,
        Some("delivery-1"),
        &[("x-github-event", "pull_request")],
    );
    assert_eq!(status, 200, "{json}");
    let _agent = AgentProc::start(&agent_args(&relay.ws_url(), "gh", &target.url()));
    let r = target.wait_for(1).remove(0);
    let mut headers = http::HeaderMap::new();
    for (n, v) in &r.headers {
        headers.append(
            http::HeaderName::from_bytes(n.as_bytes()).expect("name"),
            http::HeaderValue::from_bytes(v).expect("value"),
        );
    }
    let verifier = hookrelay::common::verify::Verifier {
        kind: SchemeKind::Github,
        hmac: None,
        secrets: vec![hookrelay::common::verify::Secret::for_scheme(
            SchemeKind::Github,
            "gh-secret",
        )
        .expect("secret")],
        tolerance_secs: 300,
        public_url: None,
    };
    let now = (hookrelay::common::time::now_unix_ms() / 1000) as i64;
    let verified = verifier
        .verify(&headers, &r.body, now)
        .expect("the forwarded request verifies with the provider's secret");
    assert_eq!(verified.delivery_id.as_deref(), Some("delivery-1"));
    assert_eq!(r.header("x-github-event").as_deref(), Some("pull_request"));
}

#[test]
fn agent_killed_mid_stream_loses_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path(), &open_channel("c"));
    for i in 0..200 {
        post(&relay, "c", format!("event {i}").as_bytes());
    }
    let target = Target::with_delay(Duration::from_millis(5), |_, _| (200, vec![]));
    let (ws, url) = (relay.ws_url(), target.url());
    let args = agent_args(&ws, "c", &url);
    let mut first = AgentProc::start(&args);
    target.wait_for(60);
    first.kill();
    let before = target.received().len();
    assert!(before < 200, "the kill came mid-stream");
    let _second = AgentProc::start(&args);
    let got = target.wait_until("all 200 offsets", |v| covers(v, 200));
    assert_eq!(
        first_arrivals(&got),
        (1..=200).collect::<Vec<_>>(),
        "first arrivals in order"
    );
    // Window 1: at most the one event in flight at the kill comes twice.
    assert!(got.len() <= 201, "{} deliveries for 200 events", got.len());
    for r in &got {
        assert_eq!(r.body, format!("event {}", offset_of(r) - 1).into_bytes());
    }
    wait_cursor(&relay, "c", "default", 200);
}

#[test]
fn relay_killed_and_restarted_on_the_same_port() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut relay = start_relay(dir.path(), &open_channel("c"));
    let addr = relay.addr.to_string();
    let target = Target::with_delay(Duration::from_millis(5), |_, _| (200, vec![]));
    let _agent = AgentProc::start(&agent_args(&relay.ws_url(), "c", &target.url()));
    for i in 0..100 {
        post(&relay, "c", format!("before {i}").as_bytes());
    }
    target.wait_for(20);
    relay.kill();
    let config = relay.config_path.clone();
    let relay = RelayProc::start_with(dir.path(), &config, &["--listen", &addr]);
    assert_eq!(relay.addr.to_string(), addr);
    for i in 0..50 {
        post(&relay, "c", format!("after {i}").as_bytes());
    }
    let got = target.wait_until("all 150 offsets after the restart", |v| covers(v, 150));
    assert_eq!(first_arrivals(&got), (1..=150).collect::<Vec<_>>());
    wait_cursor(&relay, "c", "default", 150);
}

#[test]
fn max_in_flight_bounds_concurrent_deliveries_despite_prefetch() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path(), &open_channel("c"));
    for i in 0..40 {
        post(&relay, "c", format!("event {i}").as_bytes());
    }
    let target = Target::with_delay(Duration::from_millis(20), |_, _| (200, vec![]));
    let (ws, url) = (relay.ws_url(), target.url());
    let mut args = agent_args(&ws, "c", &url);
    args.extend(["--max-in-flight", "3"]);
    // The agent asks the relay for more than 3 events (it prefetches), but only 3 may
    // be at the local service at once.
    let _agent = AgentProc::start(&args);
    let got = target.wait_until("all 40 offsets", |v| covers(v, 40));
    assert_eq!(got.len(), 40, "each event once");
    assert_eq!(
        target.peak_concurrency(),
        3,
        "never more than --max-in-flight"
    );
    assert!(
        target.connections() <= 6,
        "40 deliveries over {} connections: the pool is not reused",
        target.connections()
    );
    wait_cursor(&relay, "c", "default", 40);
}

#[test]
fn strict_order_is_kept_with_prefetched_events() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path(), &open_channel("c"));
    for i in 0..30 {
        post(&relay, "c", format!("event {i}").as_bytes());
    }
    // A target that is slow at first, so that events pile up in the agent's prefetch.
    let target = Target::with_delay(Duration::from_millis(5), |_, _| (200, vec![]));
    let _agent = AgentProc::start(&agent_args(&relay.ws_url(), "c", &target.url()));
    let got = target.wait_until("all 30 offsets", |v| covers(v, 30));
    let offsets: Vec<u64> = got.iter().map(offset_of).collect();
    assert_eq!(offsets, (1..=30).collect::<Vec<_>>(), "in order, each once");
    assert_eq!(target.peak_concurrency(), 1, "the default is one at a time");
    // Connection reuse: one connection carries them all. A request can race the
    // pool's return of the previous connection and open a spare, hence the slack.
    assert!(
        target.connections() <= 2,
        "30 deliveries over {} connections",
        target.connections()
    );
}

#[test]
fn retryable_status_is_retried_then_acked() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path(), &open_channel("c"));
    // 503 twice (once with Retry-After), then 200.
    let target = Target::with(|_, i| match i {
        0 => (503, vec![]),
        1 => (503, vec![("retry-after".into(), "0".into())]),
        _ => (200, vec![]),
    });
    post(&relay, "c", b"flaky");
    let agent = AgentProc::start(&agent_args(&relay.ws_url(), "c", &target.url()));
    let got = target.wait_for(3);
    assert!(got.iter().all(|r| r.body == b"flaky" && offset_of(r) == 1));
    wait_cursor(&relay, "c", "default", 1);
    post(&relay, "c", b"next");
    let got = target.wait_for(4);
    assert_eq!(got[3].body, b"next");
    assert_eq!(got.len(), 4, "the acked event is not delivered again");
    assert!(agent.stderr_text().contains("retrying"));
}

#[test]
fn refused_event_is_dead_lettered_and_the_stream_goes_on() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path(), &open_channel("c"));
    let target = Target::with(|r, _| {
        if r.body == b"bad" {
            (400, vec![])
        } else {
            (200, vec![])
        }
    });
    for b in [&b"ok1"[..], b"bad", b"ok2"] {
        post(&relay, "c", b);
    }
    let agent = AgentProc::start(&agent_args(&relay.ws_url(), "c", &target.url()));
    let got = target.wait_until("ok2", |v| v.iter().any(|r| r.body == b"ok2"));
    let bodies: Vec<&[u8]> = got.iter().map(|r| r.body.as_slice()).collect();
    assert_eq!(
        bodies,
        vec![&b"ok1"[..], b"bad", b"ok2"],
        "a 400 is not retried"
    );
    wait_cursor(&relay, "c", "default", 3);
    let err = agent.stderr_text();
    assert!(
        err.contains("dead-lettered") && err.contains("http 400"),
        "{err}"
    );
}

#[test]
fn slow_target_does_not_grow_relay_memory() {
    const EVENTS: usize = 1500;
    const BODY: usize = 64 * 1024; // ~94 MiB of backlog
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path(), &open_channel("c"));
    let url = relay.url("/hooks/c");
    std::thread::scope(|s| {
        for t in 0..4 {
            let url = &url;
            s.spawn(move || {
                for i in (t..EVENTS).step_by(4) {
                    let mut body = vec![b'a' + (i % 26) as u8; BODY];
                    body[..8].copy_from_slice(&(i as u64).to_le_bytes());
                    post_bytes(url, "POST", &[], &body);
                }
            });
        }
    });
    // The backlog is stored: whatever the log caches is in the baseline.
    let baseline = rss_kib(relay.pid()).expect("relay rss");
    let target = Target::with_delay(Duration::from_millis(20), |_, _| (200, vec![]));
    let agent = AgentProc::start(&agent_args(&relay.ws_url(), "c", &target.url()));
    let mut peak = baseline;
    let mut agent_peak = 0;
    let mut samples = 0;
    while target.received().len() < 150 {
        peak = peak.max(rss_kib(relay.pid()).expect("relay rss"));
        agent_peak = agent_peak.max(rss_kib(agent.pid()).unwrap_or(0));
        samples += 1;
        target.wait_for(target.received().len() + 5);
    }
    assert!(samples > 10);
    assert!(
        target.received().len() < EVENTS,
        "the agent was still behind while sampling"
    );
    let growth_mib = (peak.saturating_sub(baseline)) / 1024;
    eprintln!("relay rss: baseline {baseline} KiB, peak {peak} KiB; agent peak {agent_peak} KiB");
    assert!(
        growth_mib < 48,
        "relay RSS grew {growth_mib} MiB (baseline {baseline} KiB) for a slow agent: bounded by the window, not the backlog"
    );
    // A generous bound for an unoptimised build; the release target is 15 MB.
    assert!(agent_peak < 64 * 1024, "agent RSS {agent_peak} KiB");
}

#[test]
fn two_groups_each_receive_everything() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path(), &open_channel("c"));
    let (t1, t2) = (Target::ok(), Target::ok());
    let ws = relay.ws_url();
    let (u1, u2) = (t1.url(), t2.url());
    let mut a1 = agent_args(&ws, "c", &u1);
    a1.extend(["--group", "one"]);
    let mut a2 = agent_args(&ws, "c", &u2);
    a2.extend(["--group", "two", "--max-in-flight", "8"]);
    let _g1 = AgentProc::start(&a1);
    let _g2 = AgentProc::start(&a2);
    for i in 0..30 {
        post(&relay, "c", format!("{i}").as_bytes());
    }
    let got1 = t1.wait_until("30 in group one", |v| covers(v, 30));
    let got2 = t2.wait_until("30 in group two", |v| covers(v, 30));
    assert_eq!(first_arrivals(&got1), (1..=30).collect::<Vec<_>>());
    assert_eq!(got2.len(), 30);
    wait_cursor(&relay, "c", "one", 30);
    wait_cursor(&relay, "c", "two", 30);
}

#[test]
fn hot_standby_takes_over_when_the_active_agent_dies() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path(), &open_channel("c"));
    let (ta, tb) = (Target::ok(), Target::ok());
    let ws = relay.ws_url();
    let (ua, ub) = (ta.url(), tb.url());
    let mut a = AgentProc::start(&agent_args(&ws, "c", &ua));
    let b = AgentProc::start(&agent_args(&ws, "c", &ub));
    assert!(
        b.lines()
            .iter()
            .any(|l| l.starts_with("hookrelay agent standby ")),
        "the second member is a standby: {:?}",
        b.lines()
    );
    for i in 0..30 {
        post(&relay, "c", format!("{i}").as_bytes());
    }
    ta.wait_until("30 at the active agent", |v| covers(v, 30));
    wait_cursor(&relay, "c", "default", 30);
    assert!(tb.received().is_empty(), "only the active member receives");
    a.kill();
    b.wait_line("hookrelay agent active ");
    for i in 30..60 {
        post(&relay, "c", format!("{i}").as_bytes());
    }
    let got = tb.wait_until("31..=60 at the standby", |v| {
        let seen: BTreeSet<u64> = v.iter().map(offset_of).collect();
        (31..=60).all(|o| seen.contains(&o))
    });
    assert!(
        got.iter().all(|r| offset_of(r) > 30),
        "nothing acked is redelivered"
    );
    wait_cursor(&relay, "c", "default", 60);
}

#[test]
fn bad_token_exits_2_without_echoing_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path(), &open_channel("c"));
    let target = Target::ok();
    let ws = relay.ws_url();
    let url = target.url();
    let mut agent = AgentProc::spawn(&[
        "agent",
        "--relay",
        &ws,
        "--channel",
        "c",
        "--forward",
        &url,
        "--token",
        "wrong-s3cret",
    ]);
    let status = agent.wait_exit();
    let err = agent.stderr_text();
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("401"), "{err}");
    assert!(!err.contains("wrong-s3cret"), "the token leaked: {err}");
}

#[test]
fn unknown_channel_exits_2() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path(), &open_channel("c"));
    let target = Target::ok();
    let ws = relay.ws_url();
    let url = target.url();
    // The token comes from the environment here.
    let mut agent = AgentProc::spawn_env(
        &[
            "agent",
            "--relay",
            &ws,
            "--channel",
            "nope",
            "--forward",
            &url,
        ],
        &[("HOOKRELAY_TOKEN", TOKEN)],
    );
    let status = agent.wait_exit();
    let err = agent.stderr_text();
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(
        err.contains("unknown_channel") && err.contains("nope"),
        "{err}"
    );
}

#[test]
fn sigterm_finishes_the_delivery_in_flight_and_exits_0() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path(), &open_channel("c"));
    let (url, arrived) = slow_service(Duration::from_millis(700));
    post(&relay, "c", b"in flight");
    let mut agent = AgentProc::start(&agent_args(&relay.ws_url(), "c", &url));
    let request = arrived
        .recv_timeout(DEADLINE)
        .expect("the delivery arrives");
    assert!(request.ends_with(b"in flight"));
    // The service has the request and has not answered: SIGTERM now.
    let status = agent.terminate();
    assert_eq!(status.code(), Some(0), "{}", agent.stderr_text());
    // The agent waited for the answer and acknowledged it, so the cursor moves.
    wait_cursor(&relay, "c", "default", 1);
    assert!(arrived.try_recv().is_err(), "delivered once");
}

#[test]
fn agent_toml_routes_several_channels_on_one_connection() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path(), &(open_channel("a") + &open_channel("b")));
    let (ta, tb) = (Target::ok(), Target::ok());
    let toml = format!(
        "relay = \"{}\"\ntoken = \"env:MY_AGENT_TOKEN\"\n\n[[route]]\nchannel = \"a\"\nforward = \"{}/a\"\n\n[[route]]\nchannel = \"b\"\nforward = \"{}\"\ngroup = \"bee\"\nmax_in_flight = 4\n",
        relay.url(""),
        ta.url(),
        tb.url()
    );
    let path = dir.path().join("agent.toml");
    std::fs::write(&path, toml).expect("write");
    let p = path.to_str().expect("utf-8");
    let mut agent = AgentProc::spawn_env(&["agent", "--config", p], &[("MY_AGENT_TOKEN", TOKEN)]);
    agent.wait_lines("hookrelay agent subscribed ", 2);
    post(&relay, "a", b"to a");
    post(&relay, "b", b"to b");
    let ra = ta.wait_for(1).remove(0);
    let rb = tb.wait_for(1).remove(0);
    assert_eq!((ra.uri.as_str(), ra.body.as_slice()), ("/a", &b"to a"[..]));
    assert_eq!(rb.header("x-hookrelay-channel").as_deref(), Some("b"));
    wait_cursor(&relay, "b", "bee", 1);
    assert_eq!(agent.terminate().code(), Some(0));
}

#[test]
fn invalid_agent_toml_exits_2_naming_line_and_key() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("agent.toml");
    std::fs::write(
        &path,
        "relay = \"ws://127.0.0.1:9\"\n[[route]]\nchannel = \"a\"\nforward = \"http://127.0.0.1:9\"\nmax_in_flight = 0\n",
    )
    .expect("write");
    let p = path.to_str().expect("utf-8");
    let mut agent = AgentProc::spawn(&["agent", "--config", p]);
    assert_eq!(agent.wait_exit().code(), Some(2));
    let err = agent.stderr_text();
    assert!(
        err.contains("agent.toml:5: route[0].max_in_flight"),
        "{err}"
    );
}

/// The forwarding rules on their own, against the recording target (no relay).
mod forwarder {
    use super::*;
    use hookrelay::agent::forward::{Forwarder, Outcome};
    use hookrelay::common::event::Record;
    use hookrelay::common::shutdown::Shutdown;

    fn record(body: &[u8]) -> Record {
        Record {
            id: "evt_1".into(),
            channel: "c".into(),
            offset: 9,
            received_at_ms: 0,
            method: "POST".into(),
            path: "/p".into(),
            query: "x=1".into(),
            headers: vec![
                ("connection".into(), b"x-hop".to_vec()),
                ("x-hop".into(), b"1".to_vec()),
                ("transfer-encoding".into(), b"chunked".to_vec()),
                ("x-keep".into(), b"1".to_vec()),
            ],
            body: body.to_vec(),
            peer: String::new(),
            scheme: "none".into(),
        }
    }

    fn deliver(fwd: &Forwarder, body: &[u8]) -> Outcome {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt");
        rt.block_on(fwd.deliver(record(body), 9, &Shutdown::new(), None))
    }

    #[test]
    fn retries_then_succeeds() {
        install_crypto();
        let target = Target::with(|_, i| if i < 2 { (429, vec![]) } else { (204, vec![]) });
        let fwd = Forwarder::new(&target.url(), 10, 1).expect("fwd");
        assert_eq!(
            deliver(&fwd, b"x"),
            Outcome::Delivered {
                status: 204,
                attempts: 3
            }
        );
        let got = target.received();
        assert_eq!(got.len(), 3);
        assert_eq!(got[2].uri, "/p?x=1");
        assert!(got[2].header("x-hop").is_none() && got[2].header("x-keep").is_some());
        assert!(got[2].header("transfer-encoding").is_none());
    }

    #[test]
    fn gives_up_after_max_attempts_and_on_refusals() {
        install_crypto();
        let target = Target::with(|r, _| {
            if r.body == b"gone" {
                (410, vec![])
            } else {
                (502, vec![])
            }
        });
        let fwd = Forwarder::new(&target.url(), 3, 1).expect("fwd");
        assert_eq!(
            deliver(&fwd, b"down"),
            Outcome::Failed {
                reason: "http 502 after 3 attempts".into(),
                attempts: 3,
                last_status: Some(502)
            }
        );
        assert_eq!(
            deliver(&fwd, b"gone"),
            Outcome::Failed {
                reason: "http 410".into(),
                attempts: 1,
                last_status: Some(410)
            }
        );
        assert_eq!(target.received().len(), 4);
    }

    #[test]
    fn connection_errors_are_retried_and_reported() {
        install_crypto();
        // A port nothing listens on: bind, note it, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let fwd = Forwarder::new(&format!("http://127.0.0.1:{port}"), 2, 1).expect("fwd");
        match deliver(&fwd, b"x") {
            Outcome::Failed {
                reason,
                attempts: 2,
                last_status: None,
            } => assert!(
                reason.contains("refused") && reason.ends_with("after 2 attempts"),
                "{reason}"
            ),
            other => panic!("{other:?}"),
        }
    }

    /// A service that, on every connection, reads the request head (if `answer` is
    /// not empty), writes `answer` and then holds the connection without another byte.
    fn stalling_service(answer: &'static [u8]) -> u16 {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                if !answer.is_empty() {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut buf) {
                            Ok(n) if n > 0 => head.extend_from_slice(&buf[..n]),
                            _ => break,
                        }
                    }
                    let _ = conn.write_all(answer);
                }
                held.push(conn);
            }
        });
        port
    }

    #[test]
    fn a_2xx_whose_body_stalls_is_still_delivered() {
        install_crypto();
        let port = stalling_service(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhello");
        let fwd = Forwarder::new(&format!("http://127.0.0.1:{port}"), 3, 1).expect("fwd");
        assert_eq!(
            deliver(&fwd, b"x"),
            Outcome::Delivered {
                status: 200,
                attempts: 1
            },
            "the status decides; the unread body only costs the connection"
        );
    }

    #[test]
    fn a_tls_handshake_that_never_finishes_is_a_connect_timeout() {
        install_crypto();
        let port = stalling_service(b"");
        let fwd = Forwarder::new(&format!("https://127.0.0.1:{port}"), 1, 1).expect("fwd");
        let started = std::time::Instant::now();
        match deliver(&fwd, b"x") {
            Outcome::Failed {
                reason,
                attempts: 1,
                last_status: None,
            } => assert!(reason.contains("timed out"), "{reason}"),
            other => panic!("{other:?}"),
        }
        // Bounded by the connect deadline (10 s), not the attempt's (60 s).
        assert!(
            started.elapsed() < hookrelay::agent::forward::ATTEMPT_TIMEOUT,
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn redirects_are_not_followed() {
        install_crypto();
        let target = Target::with(|_, _| (302, vec![("location".into(), "/elsewhere".into())]));
        let fwd = Forwarder::new(&target.url(), 5, 1).expect("fwd");
        assert!(matches!(
            deliver(&fwd, b"x"),
            Outcome::Failed {
                attempts: 1,
                last_status: Some(302),
                ..
            }
        ));
        assert_eq!(target.received().len(), 1);
    }
}

/// A CA, and a certificate for 127.0.0.1 it signed: (ca.pem, cert.pem, key.pem).
fn private_ca(
    dir: &std::path::Path,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let ca_key = rcgen::KeyPair::generate().expect("ca key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca cert");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .expect("params")
        .signed_by(&key, &issuer)
        .expect("cert");
    let paths = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&paths.0, ca_cert.pem()).expect("write");
    std::fs::write(&paths.1, cert.pem()).expect("write");
    std::fs::write(&paths.2, key.serialize_pem()).expect("write");
    paths
}

#[test]
fn wss_relay_with_a_private_ca() {
    install_crypto();
    let dir = tempfile::tempdir().expect("tmp");
    let (ca, cert, key) = private_ca(dir.path());
    let relay = RelayProc::start(
        dir.path(),
        &format!("admin_token = \"{ADMIN}\"\n[server.tls]\ncert = {cert:?}\nkey = {key:?}\n"),
        &open_channel("c"),
    );
    assert!(relay.base.starts_with("https://"), "{}", relay.base);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let ca_pem = std::fs::read(&ca).expect("ca");
    let status = rt.block_on(async {
        let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca_pem).expect("pem"))
            .build()
            .expect("client");
        client
            .post(relay.url("/hooks/c"))
            .body("over tls")
            .send()
            .await
            .expect("post")
            .status()
    });
    assert_eq!(status, 200);
    let target = Target::ok();
    let url = target.url();
    let ca_path = ca.to_str().expect("utf-8");
    // https:// maps to wss://; only the private CA is trusted.
    let mut args = agent_args(&relay.base, "c", &url);
    args.extend(["--ca-cert", ca_path]);
    let _agent = AgentProc::start(&args);
    assert_eq!(target.wait_for(1)[0].body, b"over tls");

    // Without --ca-cert the web PKI roots do not know this CA: no connection, and the
    // agent says why while it keeps retrying.
    let other = Target::ok();
    let other_url = other.url();
    let mut full = vec!["agent"];
    full.extend(agent_args(&relay.base, "c", &other_url));
    full.extend(["--group", "other"]);
    let mut untrusting = AgentProc::spawn(&full);
    let start = std::time::Instant::now();
    while !untrusting.stderr_text().contains("cannot reach the relay") {
        assert!(start.elapsed() < DEADLINE, "{}", untrusting.stderr_text());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(untrusting
        .stderr_text()
        .to_lowercase()
        .contains("certificate"));
    assert!(untrusting.alive() && other.received().is_empty());
}
