//! Hardening of the relay's stream endpoint against a hostile or broken client, on a
//! real relay process with a raw protocol client: bounded memory whatever the event
//! size and window, a ping flood answered in full, and refusal messages in plain words.

mod common;
#[path = "common/ws.rs"]
mod ws;

use std::time::{Duration, Instant};

use common::*;
use hookrelay::common::protocol::{codes, ClientMsg, ServerMsg, Start};
use tokio_tungstenite::tungstenite::Message;
use ws::WsClient;

const TOKEN: &str = "limits-token";

/// A relay with one unsigned channel `c`.
fn start_relay(dir: &std::path::Path, server_extra: &str) -> RelayProc {
    RelayProc::start(
        dir,
        server_extra,
        &format!("[[channel]]\nname = \"c\"\nscheme = \"none\"\ntokens = [\"{TOKEN}\"]\n"),
    )
}

/// The value of `name{labels}` in the relay's `/metrics`, parsed as Prometheus
/// would; 0 if absent.
fn metric(relay: &RelayProc, name: &str, labels: &[(&str, &str)]) -> i64 {
    let scrape = common::metrics::scrape(&relay.url("/metrics"));
    common::metrics::value(&scrape, name, labels).map_or(0, |v| v as i64)
}

/// Polls until `cond` holds; fails past the deadline.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Body `i` of `len` bytes: its index in the first 8 bytes, then a filler.
fn body(i: usize, len: usize) -> Vec<u8> {
    let mut b = vec![b'a' + (i % 26) as u8; len];
    b[..8].copy_from_slice(&(i as u64).to_le_bytes());
    b
}

/// Posts bodies `0..n` of `len` bytes to channel `c` from four threads; returns the
/// body indexes in offset order.
fn post_many(relay: &RelayProc, n: usize, len: usize) -> Vec<usize> {
    let url = relay.url("/hooks/c");
    let mut stored: Vec<(u64, usize)> = std::thread::scope(|s| {
        let posters: Vec<_> = (0..4)
            .map(|t| {
                let url = &url;
                s.spawn(move || {
                    let mut stored = Vec::new();
                    for i in (t..n).step_by(4) {
                        let (status, json) = post_raw(url, "POST", &[], &body(i, len));
                        assert_eq!(status, 200, "{json}");
                        stored.push((json["offset"].as_u64().expect("offset"), i));
                    }
                    stored
                })
            })
            .collect();
        posters
            .into_iter()
            .flat_map(|p| p.join().expect("poster"))
            .collect()
    });
    stored.sort();
    stored.into_iter().map(|(_, i)| i).collect()
}

fn agent_args<'a>(relay: &'a str, target: &'a str) -> Vec<&'a str> {
    vec![
        "--relay",
        relay,
        "--channel",
        "c",
        "--forward",
        target,
        "--token",
        TOKEN,
    ]
}

/// 16 `Read`s with the largest window on one connection that never reads, over 200
/// events of 512 KB: the relay holds what its byte budgets allow, not the windows'
/// worth (2 GB), gives it back when the connection closes, and serves a normal agent
/// meanwhile.
#[test]
fn a_client_that_never_reads_cannot_make_the_relay_hold_its_windows() {
    const EVENTS: usize = 200;
    const BODY: usize = 512 * 1024;
    const READS: u32 = 16;
    const MAX_GROWTH_MIB: u64 = 200;
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(
        dir.path(),
        "max_body_bytes = 1048576\n\
         stream_connection_buffer_bytes = 8388608\n\
         stream_total_buffer_bytes = 268435456",
    );
    let in_offset_order = post_many(&relay, EVENTS, BODY);
    // The log's cache is in the baseline.
    let baseline = rss_kib(relay.pid()).expect("relay rss");
    let mut peak = baseline;
    let mut sample = || {
        let now = rss_kib(relay.pid()).expect("relay rss");
        peak = peak.max(now);
        now
    };

    let mut hog = WsClient::open(&relay, TOKEN);
    for sub in 1..=READS {
        hog.send(&ClientMsg::Read {
            sub,
            channel: "c".into(),
            start: Start::Earliest,
            to: None,
            follow: false,
            window: u32::MAX,
        });
    }
    // Delivery stops once the budgets are spent (or, without them, once everything
    // was sent): the count of events handed to the connection stops moving.
    let (mut last, mut still) = (-1, 0);
    wait_until("delivery to the silent client to stall", || {
        sample();
        let now = metric(
            &relay,
            "hookrelay_events_delivered_total",
            &[("channel", "c")],
        );
        still = if now == last { still + 1 } else { 0 };
        last = now;
        now > 0 && still >= 25
    });

    // A normal agent still receives everything, in order, while the hog holds its share.
    let target = Target::ok();
    let agent = AgentProc::start(&agent_args(&relay.ws_url(), &target.url()));
    let got = target.wait_until("every event", |v| v.len() >= EVENTS);
    sample();
    let order: Vec<usize> = got
        .iter()
        .map(|r| u64::from_le_bytes(r.body[..8].try_into().expect("8 bytes")) as usize)
        .collect();
    assert_eq!(order, in_offset_order);
    assert!(got.iter().zip(order).all(|(r, i)| r.body == body(i, BODY)));
    drop(agent);

    drop(hog);
    wait_until("the connections to close", || {
        sample();
        metric(&relay, "hookrelay_stream_connections", &[]) == 0
    });
    let after = sample();
    let growth_mib = peak.saturating_sub(baseline) / 1024;
    let kept_mib = after.saturating_sub(baseline) / 1024;
    eprintln!(
        "relay rss: baseline {baseline} KiB, peak {peak} KiB, after close {after} KiB; \
         {last} events delivered to the silent client"
    );
    assert!(
        growth_mib < MAX_GROWTH_MIB,
        "relay RSS grew {growth_mib} MiB for one connection that never reads"
    );
    assert!(
        kept_mib < MAX_GROWTH_MIB,
        "relay RSS still {kept_mib} MiB above the baseline after the connection closed"
    );
}

/// Budgets smaller than one event still deliver everything, one event at a time.
#[test]
fn events_larger_than_the_budgets_are_still_delivered_in_order() {
    const EVENTS: usize = 12;
    const BODY: usize = 100 * 1024;
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(
        dir.path(),
        "stream_connection_buffer_bytes = 1000\nstream_total_buffer_bytes = 3000",
    );
    let in_offset_order = post_many(&relay, EVENTS, BODY);
    let mut c = WsClient::open(&relay, TOKEN);
    let mut readers: Vec<WsClient> = (0..2).map(|_| WsClient::open(&relay, TOKEN)).collect();
    c.subscribe(1, "c", "g", Start::Earliest, 64);
    for r in &mut readers {
        r.send(&ClientMsg::Read {
            sub: 1,
            channel: "c".into(),
            start: Start::Earliest,
            to: None,
            follow: false,
            window: 64,
        });
    }
    let mut got = Vec::new();
    for _ in 0..EVENTS {
        let (offset, record) = c.recv_event(1);
        c.ack(1, offset);
        got.push((offset, record.len()));
    }
    let offsets: Vec<u64> = got.iter().map(|g| g.0).collect();
    assert_eq!(offsets, (1..=EVENTS as u64).collect::<Vec<_>>());
    assert!(got.iter().all(|g| g.1 > BODY), "whole records");
    assert_eq!(in_offset_order.len(), EVENTS);
    // The reads on other connections share the relay's budget and get everything too.
    for r in &mut readers {
        r.expect_subscribed(1);
        let offsets = r.recv_offsets(1, EVENTS);
        assert_eq!(offsets, (1..=EVENTS as u64).collect::<Vec<_>>());
    }
}

/// A client that keeps sending (WebSocket pings, which keep it from timing out idle) but
/// never reads holds its connection's budget; the relay gives up on it once it has
/// accepted no data for the idle timeout.
#[test]
fn a_client_that_sends_but_never_reads_is_dropped() {
    const EVENTS: usize = 40;
    const BODY: usize = 512 * 1024;
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(
        dir.path(),
        "max_body_bytes = 1048576\nstream_heartbeat_secs = 1\nstream_idle_timeout_secs = 3",
    );
    post_many(&relay, EVENTS, BODY);
    let mut hog = WsClient::open(&relay, TOKEN);
    hog.send(&ClientMsg::Read {
        sub: 1,
        channel: "c".into(),
        start: Start::Earliest,
        to: None,
        follow: false,
        window: 4096,
    });
    wait_until("the relay to give up on the connection", || {
        // Fails once the relay has closed it; that is what this waits for.
        let _ = hog.try_send_raw(Message::Ping(Vec::new().into()));
        std::thread::sleep(Duration::from_millis(100));
        metric(&relay, "hookrelay_stream_connections", &[]) == 0
    });
    assert!(
        relay.stderr_text().contains("accepts no data"),
        "{}",
        relay.stderr_text()
    );
}

/// 2,000 pings sent back to back are all answered, in order, and the connection goes on.
#[test]
fn a_ping_flood_is_answered_in_full() {
    const PINGS: u64 = 2_000;
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path(), "");
    let mut c = WsClient::open(&relay, TOKEN);
    for nonce in 1..=PINGS {
        c.send(&ClientMsg::Ping { nonce });
    }
    for nonce in 1..=PINGS {
        match c.next_frame() {
            Some(ServerMsg::Pong { nonce: n }) => assert_eq!(n, nonce),
            other => panic!("pong {nonce} of {PINGS}: got {other:?}"),
        }
    }
    // Still usable.
    let (status, json) = post_raw(&relay.url("/hooks/c"), "POST", &[], b"after");
    assert_eq!(status, 200, "{json}");
    assert_eq!(c.subscribe(1, "c", "g", Start::Earliest, 1), (1, true));
    assert_eq!(c.recv_event(1).0, 1);
    assert_eq!(c.recv(), ServerMsg::CaughtUp { sub: 1, head: 1 });
    c.send(&ClientMsg::Ping { nonce: 0 });
    assert_eq!(c.recv(), ServerMsg::Pong { nonce: 0 });
    c.close();
}

/// `bad_frame` refusals say what is wrong in words, without Rust's debug notation.
#[test]
fn bad_frame_messages_are_plain_sentences() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path(), "");
    let mut trailing = ClientMsg::Ping { nonce: 1 }.encode();
    trailing.push(0);
    let subscribe = ClientMsg::Subscribe {
        sub: 1,
        channel: "c".into(),
        group: "g".into(),
        start: Start::Earliest,
        window: 1,
    }
    .encode();
    // Subscribe{sub 1, channel "\xff\xfe", group "g", Committed, window 1}.
    let bad_utf8 = vec![1, 1, 2, 0xff, 0xfe, 1, b'g', 0, 1];
    let read = ClientMsg::Read {
        sub: 1,
        channel: "c".into(),
        start: Start::Earliest,
        to: None,
        follow: false,
        window: 1,
    }
    .encode();
    let mut bad_bool = read.clone();
    let follow_at = bad_bool.len() - 2; // follow, then window
    bad_bool[follow_at] = 7;
    let mut bad_start = subscribe.clone();
    let start_at = subscribe.len() - 2; // start, then window
    bad_start[start_at] = 9;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("unknown type", vec![200, 1, 2], "200"),
        ("trailing byte", trailing, "Ping"),
        ("empty", vec![], "empty"),
        ("cut short", subscribe[..4].to_vec(), "Subscribe"),
        ("invalid UTF-8", bad_utf8, "UTF-8"),
        ("invalid boolean", bad_bool, "Read"),
        ("unknown start", bad_start, "Subscribe"),
        (
            "huge length",
            vec![0, 253, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0],
            "Hello",
        ),
    ];
    for (what, bytes, names) in cases {
        let mut c = WsClient::open(&relay, TOKEN);
        c.send_raw(Message::binary(bytes));
        let message = c.expect_fatal(codes::BAD_FRAME);
        for debug in ["{", "}", "Error", "::", "\"", "Unexpected", "Some(", "None"] {
            assert!(
                !message.contains(debug),
                "{what}: {message:?} contains {debug:?}"
            );
        }
        assert!(message.contains(names), "{what}: {message:?}");
        assert!(message.len() < 200, "{what}: {message:?}");
    }
}
