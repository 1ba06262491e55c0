//! The relay side of the agent stream (`GET /v1/stream`), against a real relay process
//! and a raw protocol client: authentication before the upgrade, refusals, windowed
//! in-order delivery of the stored bytes, cursors, consumer groups with hot standby,
//! dead letters, live wake-up, group-less reads and graceful stop.

mod common;
#[path = "common/ws.rs"]
mod ws;

use std::time::{Duration, Instant};

use common::*;
use hookrelay::common::event::Record;
use hookrelay::common::protocol::{codes, ClientMsg, ServerMsg, Start, MAX_CLIENT_FRAME_BYTES};
use hookrelay::common::verify::SchemeKind;
use tokio_tungstenite::tungstenite::Message;
use ws::WsClient;

const ADMIN: &str = "adm-token";
const TOKEN_A: &str = "tok-a-secret";
const TOKEN_B: &str = "tok-b-secret";

/// Two unsigned channels, `a` and `b`, each with its own consumer token.
fn start_relay(dir: &std::path::Path) -> RelayProc {
    RelayProc::start(
        dir,
        &format!("admin_token = \"{ADMIN}\""),
        &format!(
            "[[channel]]\nname = \"a\"\nscheme = \"none\"\ntokens = [\"{TOKEN_A}\"]\n\n\
             [[channel]]\nname = \"b\"\nscheme = \"none\"\ntokens = [\"{TOKEN_B}\"]\n"
        ),
    )
}

/// Posts one event and returns its offset.
fn post(relay: &RelayProc, channel: &str, body: &[u8]) -> u64 {
    let (status, json) = post_signed(
        &relay.url(&format!("/hooks/{channel}")),
        SchemeKind::None,
        "unused",
        body,
        None,
        &[],
    );
    assert_eq!(status, 200, "{json}");
    json["offset"].as_u64().expect("offset")
}

/// A group's committed cursor from the admin API.
fn cursor(relay: &RelayProc, channel: &str, group: &str) -> Option<u64> {
    let (status, json) = get(&relay.url("/v1/channels"), Some(ADMIN));
    assert_eq!(status, 200, "{json}");
    json["channels"]
        .as_array()
        .expect("channels")
        .iter()
        .find(|c| c["name"] == channel)
        .expect("channel listed")["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["name"] == group)
        .and_then(|g| g["cursor"].as_u64())
}

/// Polls until `cond` holds; fails past the deadline.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_cursor(relay: &RelayProc, channel: &str, group: &str, want: u64) {
    wait_until(&format!("cursor {channel}/{group} = {want}"), || {
        cursor(relay, channel, group) == Some(want)
    });
}

/// The value of `name{labels}` in the relay's `/metrics`, parsed as Prometheus would.
fn metric(relay: &RelayProc, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let scrape = common::metrics::scrape(&relay.url("/metrics"));
    common::metrics::value(&scrape, name, labels)
}

fn subscribe_msg(sub: u32, channel: &str, group: &str, start: Start, window: u32) -> ClientMsg {
    ClientMsg::Subscribe {
        sub,
        channel: channel.into(),
        group: group.into(),
        start,
        window,
    }
}

#[test]
fn a_bad_or_missing_token_gets_401_before_any_upgrade() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path());

    let refused = WsClient::connect(&relay, Some("not-a-token"))
        .err()
        .expect("a wrong token must not be upgraded");
    assert_eq!(refused.status, 401);
    assert_eq!(refused.body["error"], "unauthorized", "{:?}", refused.body);

    let refused = WsClient::connect(&relay, None)
        .err()
        .expect("a missing token must not be upgraded");
    assert_eq!(refused.status, 401);
    assert_eq!(refused.body["error"], "unauthorized", "{:?}", refused.body);

    // The admin token is not a consumer token either.
    let refused = WsClient::connect(&relay, Some(ADMIN))
        .err()
        .expect("the admin token must not be upgraded");
    assert_eq!(refused.status, 401);

    // A valid token is upgraded, and no token ever reaches the logs.
    WsClient::open(&relay, TOKEN_A).close();
    let logs = relay.stderr_text();
    for secret in [TOKEN_A, TOKEN_B, ADMIN, "not-a-token"] {
        assert!(!logs.contains(secret), "a token leaked into the logs");
    }
}

#[test]
fn subscription_refusals_are_per_subscription_and_keep_the_connection() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path());
    post(&relay, "a", b"{\"n\":1}");
    post(&relay, "a", b"{\"n\":2}");
    let mut c = WsClient::open(&relay, TOKEN_A);

    // A token for channel a cannot read channel b.
    c.send(&subscribe_msg(1, "b", "g", Start::Earliest, 8));
    assert_eq!(c.expect_error(codes::FORBIDDEN_CHANNEL).0, Some(1));
    c.send(&ClientMsg::Read {
        sub: 2,
        channel: "b".into(),
        start: Start::Earliest,
        to: None,
        follow: false,
        window: 8,
    });
    assert_eq!(c.expect_error(codes::FORBIDDEN_CHANNEL).0, Some(2));

    c.send(&subscribe_msg(3, "nope", "g", Start::Earliest, 8));
    assert_eq!(c.expect_error(codes::UNKNOWN_CHANNEL).0, Some(3));

    c.send(&subscribe_msg(4, "a", "bad group!", Start::Earliest, 8));
    assert_eq!(c.expect_error(codes::INVALID_GROUP).0, Some(4));

    // Explicit offsets must exist; the refusal names the available range.
    c.send(&subscribe_msg(5, "a", "g", Start::Offset(9), 8));
    let (sub, message) = c.expect_error(codes::OFFSET_OUT_OF_RANGE);
    assert_eq!(sub, Some(5));
    assert!(message.contains("earliest 1, latest 2"), "{message}");
    c.send(&subscribe_msg(6, "a", "g", Start::Offset(0), 8));
    let (_, message) = c.expect_error(codes::OFFSET_COMPACTED);
    assert!(message.contains("earliest 1, latest 2"), "{message}");

    // An ack for a subscription that does not exist.
    c.ack(77, 1);
    assert_eq!(c.expect_error(codes::UNKNOWN_OFFSET).0, Some(77));

    // A working subscription; then the same id again closes both.
    assert_eq!(c.subscribe(8, "a", "g", Start::Earliest, 8), (1, true));
    assert_eq!(c.recv_offsets(8, 2), vec![1, 2]);
    assert_eq!(c.recv(), ServerMsg::CaughtUp { sub: 8, head: 2 });
    c.send(&subscribe_msg(8, "a", "g", Start::Earliest, 8));
    assert_eq!(c.expect_error(codes::DUPLICATE_SUBSCRIPTION).0, Some(8));

    // The connection still serves: heartbeats, and a new subscription of the same group
    // that gets the unacknowledged events again.
    c.send(&ClientMsg::Ping { nonce: 42 });
    assert_eq!(c.recv(), ServerMsg::Pong { nonce: 42 });
    assert_eq!(c.subscribe_active(9, "a", "g", Start::Earliest, 8), 1);
    assert_eq!(c.recv_offsets(9, 2), vec![1, 2]);
    c.close();
}

#[test]
fn no_common_version_is_refused_and_closed() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path());
    let mut c = WsClient::connect(&relay, Some(TOKEN_A)).expect("upgrade");
    c.send(&ClientMsg::Hello {
        versions: vec![99, 1000],
        agent: "future-agent".into(),
    });
    c.expect_fatal(codes::UNSUPPORTED_VERSION);
}

#[test]
fn malformed_frames_close_only_their_connection() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path());

    // Bytes that are no protocol frame.
    let mut c = WsClient::open(&relay, TOKEN_A);
    c.send_raw(Message::binary(vec![200u8, 1, 2]));
    c.expect_fatal(codes::BAD_FRAME);

    // A valid frame with trailing garbage.
    let mut c = WsClient::open(&relay, TOKEN_A);
    let mut frame = ClientMsg::Ping { nonce: 1 }.encode();
    frame.push(0);
    c.send_raw(Message::binary(frame));
    c.expect_fatal(codes::BAD_FRAME);

    // A text frame.
    let mut c = WsClient::open(&relay, TOKEN_A);
    c.send_raw(Message::text("{\"type\":\"hello\"}"));
    c.expect_fatal(codes::BAD_FRAME);

    // Anything before Hello.
    let mut c = WsClient::connect(&relay, Some(TOKEN_A)).expect("upgrade");
    c.send(&subscribe_msg(1, "a", "g", Start::Earliest, 1));
    c.expect_fatal(codes::BAD_FRAME);

    // A second Hello.
    let mut c = WsClient::open(&relay, TOKEN_A);
    c.send(&ClientMsg::Hello {
        versions: vec![1],
        agent: "again".into(),
    });
    c.expect_fatal(codes::BAD_FRAME);

    // The relay still serves both ingest and the stream.
    assert_eq!(post(&relay, "a", b"after"), 1);
    let mut c = WsClient::open(&relay, TOKEN_A);
    assert_eq!(c.subscribe(1, "a", "g", Start::Earliest, 1), (1, true));
    assert_eq!(c.recv_event(1).0, 1);
    c.close();
}

#[test]
fn oversized_frames_are_refused_and_the_relay_survives() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut relay = start_relay(dir.path());

    // Just over the protocol limit.
    let mut c = WsClient::open(&relay, TOKEN_A);
    c.send_raw(Message::binary(vec![0u8; MAX_CLIENT_FRAME_BYTES + 1]));
    let message = c.expect_fatal(codes::FRAME_TOO_LARGE);
    assert!(
        message.contains(&MAX_CLIENT_FRAME_BYTES.to_string()),
        "{message}"
    );

    // Far over it, beyond what the WebSocket layer reads at all: the relay stops reading
    // at the frame header, so the answer may be lost to the reset that unread data
    // causes; either way the connection ends and nothing else is sent.
    let mut c = WsClient::open(&relay, TOKEN_A);
    if c.try_send_raw(Message::binary(vec![0u8; 4 * 1024 * 1024]))
        .is_ok()
    {
        if let Some(frame) = c.next_frame() {
            match frame {
                ServerMsg::Error {
                    sub: None, code, ..
                } => assert_eq!(code, codes::FRAME_TOO_LARGE),
                other => panic!("expected frame_too_large, got {other:?}"),
            }
        }
    }

    assert!(relay.alive());
    assert_eq!(post(&relay, "a", b"still here"), 1);
    let mut c = WsClient::open(&relay, TOKEN_A);
    assert_eq!(c.subscribe(1, "a", "g", Start::Earliest, 4), (1, true));
    assert_eq!(c.recv_event(1).0, 1);
    c.close();
}

#[test]
fn events_arrive_in_order_with_the_exact_stored_bytes() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path());
    let bodies: Vec<Vec<u8>> = vec![
        b"{\"n\":1}".to_vec(),
        vec![0, 159, 146, 150, 255, b'\n'],
        Vec::new(),
    ];
    let mut ids = Vec::new();
    for (i, body) in bodies.iter().enumerate() {
        let (status, json) = post_raw(
            &relay.url(&format!("/hooks/a/deep/path?i={i}&x=%20y")),
            "POST",
            &[("x-custom".to_string(), format!("v{i}"))],
            body,
        );
        assert_eq!(status, 200, "{json}");
        assert_eq!(json["offset"], i as u64 + 1);
        ids.push(json["id"].as_str().expect("id").to_string());
    }

    let mut c = WsClient::open(&relay, TOKEN_A);
    assert_eq!(c.subscribe(1, "a", "g", Start::Earliest, 16), (1, true));
    for (i, body) in bodies.iter().enumerate() {
        let (offset, bytes) = c.recv_event(1);
        assert_eq!(offset, i as u64 + 1);
        let record = Record::decode(&bytes).expect("the frame carries a stored record");
        // The stored encoding, byte for byte (nothing re-encoded differently).
        assert_eq!(record.encode(), bytes);
        assert_eq!(record.offset, offset);
        assert_eq!(record.channel, "a");
        assert_eq!(record.id, ids[i]);
        assert_eq!(&record.body, body);
        assert_eq!(record.method, "POST");
        assert_eq!(record.path, "/deep/path");
        assert_eq!(record.query, format!("i={i}&x=%20y"));
        let custom: Vec<&Vec<u8>> = record
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("x-custom"))
            .map(|(_, v)| v)
            .collect();
        assert_eq!(custom, vec![&format!("v{i}").into_bytes()]);
    }
    assert_eq!(c.recv(), ServerMsg::CaughtUp { sub: 1, head: 3 });
    c.close();
}

#[test]
fn hello_picks_the_highest_version_both_sides_speak() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path());
    for (offered, chosen) in [(vec![1], 1), (vec![1, 2], 2), (vec![2, 99], 2)] {
        let mut c = WsClient::connect(&relay, Some(TOKEN_A)).expect("upgrade");
        c.send(&ClientMsg::Hello {
            versions: offered.clone(),
            agent: "versions".into(),
        });
        match c.recv() {
            ServerMsg::Welcome { version, .. } => assert_eq!(version, chosen, "{offered:?}"),
            other => panic!("expected Welcome, got {other:?}"),
        }
        c.close();
    }
}

#[test]
fn ack_ranges_settle_bursts_and_bad_ranges_are_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path());
    for i in 1..=6u64 {
        assert_eq!(post(&relay, "a", format!("{i}").as_bytes()), i);
    }
    let mut c = WsClient::open(&relay, TOKEN_A);
    assert_eq!(c.subscribe(1, "a", "g", Start::Earliest, 8), (1, true));
    assert_eq!(c.recv_offsets(1, 6), vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(c.recv(), ServerMsg::CaughtUp { sub: 1, head: 6 });
    let range = |sub, first, last| ClientMsg::AckRange { sub, first, last };
    c.send(&range(1, 1, 4));
    wait_cursor(&relay, "a", "g", 4);

    // A range reaching past what was sent is refused whole: 5 and 6 stay unacked.
    c.send(&range(1, 5, 7));
    assert_eq!(c.expect_error(codes::UNKNOWN_OFFSET).0, Some(1));
    assert_eq!(c.subscribe(2, "a", "g", Start::Earliest, 8), (5, true));
    assert_eq!(c.recv_offsets(2, 2), vec![5, 6]);
    assert_eq!(c.recv(), ServerMsg::CaughtUp { sub: 2, head: 6 });

    // A range over an offset acked already.
    c.ack(2, 5);
    c.send(&range(2, 5, 6));
    assert_eq!(c.expect_error(codes::UNKNOWN_OFFSET).0, Some(2));
    wait_cursor(&relay, "a", "g", 5);

    // Backwards, and absurdly long: refused at once, not walked.
    for (sub, first, last) in [(3, 6, 5), (4, 0, u64::MAX)] {
        assert_eq!(c.subscribe(sub, "a", "g", Start::Earliest, 8), (6, true));
        assert_eq!(c.recv_event(sub).0, 6);
        assert_eq!(c.recv(), ServerMsg::CaughtUp { sub, head: 6 });
        c.send(&range(sub, first, last));
        assert_eq!(c.expect_error(codes::UNKNOWN_OFFSET).0, Some(sub));
    }

    // The connection and the relay are fine; a good range still works.
    assert_eq!(c.subscribe(5, "a", "g", Start::Earliest, 8), (6, true));
    assert_eq!(c.recv_event(5).0, 6);
    c.send(&range(5, 6, 6));
    wait_cursor(&relay, "a", "g", 6);
    c.close();
}

#[test]
fn the_window_bounds_unacknowledged_events() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path());
    for i in 1..=5u64 {
        assert_eq!(post(&relay, "a", format!("{i}").as_bytes()), i);
    }
    let mut c = WsClient::open(&relay, TOKEN_A);
    c.send(&subscribe_msg(1, "a", "g", Start::Earliest, 2));
    match c.recv() {
        ServerMsg::Subscribed { window, next, .. } => assert_eq!((window, next), (2, 1)),
        other => panic!("expected Subscribed, got {other:?}"),
    }
    assert_eq!(c.recv_offsets(1, 2), vec![1, 2]);
    // A subscription sends its frames in order and handles acks only between sends, so
    // the answer to a bogus ack is a barrier: had event 3 been sent without an ack, it
    // would come before this error.
    c.ack(1, 99);
    assert_eq!(c.expect_error(codes::UNKNOWN_OFFSET).0, Some(1));

    // Again from the start (nothing was acked), now acking one at a time.
    assert_eq!(c.subscribe(2, "a", "g", Start::Earliest, 2), (1, true));
    let mut outstanding = 0;
    let mut received = Vec::new();
    let mut take = |c: &mut WsClient, outstanding: &mut i32| {
        let (offset, _) = c.recv_event(2);
        *outstanding += 1;
        assert!(*outstanding <= 2, "more than the window outstanding");
        received.push(offset);
    };
    take(&mut c, &mut outstanding);
    take(&mut c, &mut outstanding);
    for acked in 1..=3u64 {
        c.ack(2, acked);
        outstanding -= 1;
        take(&mut c, &mut outstanding);
    }
    assert_eq!(received, vec![1, 2, 3, 4, 5]);
    assert_eq!(c.recv(), ServerMsg::CaughtUp { sub: 2, head: 5 });
    c.close();
}

#[test]
fn out_of_order_acks_move_the_cursor_over_the_contiguous_prefix_only() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path());
    for i in 1..=3u64 {
        post(&relay, "a", format!("{i}").as_bytes());
    }
    let mut c = WsClient::open(&relay, TOKEN_A);
    assert_eq!(c.subscribe(1, "a", "g", Start::Earliest, 3), (1, true));
    assert_eq!(c.recv_offsets(1, 3), vec![1, 2, 3]);
    c.ack(1, 2);
    c.ack(1, 3);
    c.ack(1, 1);
    wait_cursor(&relay, "a", "g", 3);
    // Another group acks 3 and 1 but never 2: its cursor stops at 1.
    let mut d = WsClient::open(&relay, TOKEN_A);
    assert_eq!(d.subscribe(1, "a", "h", Start::Earliest, 3), (1, true));
    assert_eq!(d.recv_offsets(1, 3), vec![1, 2, 3]);
    d.ack(1, 3);
    d.ack(1, 1);
    wait_cursor(&relay, "a", "h", 1);
    d.close();
    // Reconnecting resumes after the prefix: 2 again (it was never acked), then 3.
    let mut d = WsClient::open(&relay, TOKEN_A);
    assert_eq!(d.subscribe(1, "a", "h", Start::Latest, 3), (2, true));
    assert_eq!(d.recv_offsets(1, 2), vec![2, 3]);
    c.close();
    d.close();
}

#[test]
fn a_committed_cursor_wins_over_the_start_and_survives_a_crash() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut relay = start_relay(dir.path());
    for i in 1..=5u64 {
        post(&relay, "a", format!("{i}").as_bytes());
    }
    let mut c = WsClient::open(&relay, TOKEN_A);
    assert_eq!(c.subscribe(1, "a", "g", Start::Earliest, 5), (1, true));
    assert_eq!(c.recv_offsets(1, 5), vec![1, 2, 3, 4, 5]);
    for offset in 1..=3 {
        c.ack(1, offset);
    }
    c.close();

    // At once, whatever the start says: the group resumes at cursor + 1.
    let mut c = WsClient::open(&relay, TOKEN_A);
    assert_eq!(c.subscribe(1, "a", "g", Start::Latest, 5), (4, true));
    assert_eq!(c.recv_offsets(1, 2), vec![4, 5]);
    c.close();

    // And after a SIGKILL of the relay, from disk.
    wait_cursor(&relay, "a", "g", 3);
    relay.restart();
    let mut c = WsClient::open(&relay, TOKEN_A);
    assert_eq!(c.subscribe(1, "a", "g", Start::Offset(1), 5), (4, true));
    assert_eq!(c.recv_offsets(1, 2), vec![4, 5]);
    assert_eq!(c.recv(), ServerMsg::CaughtUp { sub: 1, head: 5 });
    c.close();
}

#[test]
fn each_group_receives_every_event() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path());
    for i in 1..=3u64 {
        post(&relay, "a", format!("{i}").as_bytes());
    }
    let mut one = WsClient::open(&relay, TOKEN_A);
    let mut two = WsClient::open(&relay, TOKEN_A);
    assert_eq!(two.subscribe(1, "a", "g2", Start::Earliest, 8), (1, true));
    assert_eq!(two.recv_offsets(1, 3), vec![1, 2, 3]);
    // Two groups on one connection too; their frames interleave.
    one.send(&subscribe_msg(1, "a", "g1", Start::Earliest, 8));
    one.send(&subscribe_msg(2, "a", "g3", Start::Earliest, 8));
    let mut by_sub: std::collections::HashMap<u32, Vec<u64>> = Default::default();
    while by_sub.values().map(Vec::len).sum::<usize>() < 6 {
        match one.recv() {
            ServerMsg::Event { sub, offset, .. } => by_sub.entry(sub).or_default().push(offset),
            ServerMsg::Subscribed { active, .. } => assert!(active),
            ServerMsg::CaughtUp { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(by_sub[&1], vec![1, 2, 3]);
    assert_eq!(by_sub[&2], vec![1, 2, 3]);
    for offset in 1..=3 {
        one.ack(1, offset);
        two.ack(1, offset);
    }
    wait_cursor(&relay, "a", "g1", 3);
    wait_cursor(&relay, "a", "g2", 3);
    assert_eq!(cursor(&relay, "a", "g3"), None, "g3 acked nothing");
    one.close();
    two.close();
}

#[test]
fn a_hot_standby_takes_over_with_the_unacknowledged_events() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path());
    for i in 1..=3u64 {
        post(&relay, "a", format!("{i}").as_bytes());
    }
    let mut first = WsClient::open(&relay, TOKEN_A);
    assert_eq!(first.subscribe(1, "a", "g", Start::Earliest, 8), (1, true));
    assert_eq!(first.recv_offsets(1, 3), vec![1, 2, 3]);
    assert_eq!(first.recv(), ServerMsg::CaughtUp { sub: 1, head: 3 });
    first.ack(1, 1);
    wait_cursor(&relay, "a", "g", 1);

    let mut second = WsClient::open(&relay, TOKEN_A);
    let (_, active) = second.subscribe(7, "a", "g", Start::Earliest, 8);
    assert!(!active, "the second member of a group is a standby");
    wait_until("the standby gauge", || {
        metric(
            &relay,
            "hookrelay_stream_subscriptions",
            &[("state", "standby")],
        ) == Some(1.0)
    });

    // A new event goes to the active member only.
    post(&relay, "a", b"4");
    assert_eq!(first.recv_event(1).0, 4);

    // The active member leaves without acking 2..4: the standby is promoted at 2, and
    // the first frame it ever got after Subscribed is that promotion.
    first.close();
    assert_eq!(second.recv(), ServerMsg::Active { sub: 7, next: 2 });
    assert_eq!(second.recv_offsets(7, 3), vec![2, 3, 4]);
    for offset in 2..=4 {
        second.ack(7, offset);
    }
    wait_cursor(&relay, "a", "g", 4);
    wait_until("the gauges after promotion", || {
        let m = common::metrics::scrape(&relay.url("/metrics"));
        let v = |name, labels| common::metrics::value(&m, name, labels);
        v("hookrelay_stream_subscriptions", &[("state", "active")]) == Some(1.0)
            && v("hookrelay_stream_subscriptions", &[("state", "standby")]) == Some(0.0)
            && v("hookrelay_stream_connections", &[]) == Some(1.0)
    });
    second.close();
}

#[test]
fn unsubscribe_hands_the_group_over_after_the_acks_sent_before_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path());
    for i in 1..=3u64 {
        post(&relay, "a", format!("{i}").as_bytes());
    }
    let mut first = WsClient::open(&relay, TOKEN_A);
    assert_eq!(first.subscribe(1, "a", "g", Start::Earliest, 8), (1, true));
    assert_eq!(first.recv_offsets(1, 3), vec![1, 2, 3]);
    assert_eq!(first.recv(), ServerMsg::CaughtUp { sub: 1, head: 3 });
    let mut second = WsClient::open(&relay, TOKEN_A);
    assert!(
        !second.subscribe(1, "a", "g", Start::Earliest, 8).1,
        "standby"
    );

    // Ack then unsubscribe at once: the ack still counts for the handover.
    first.ack(1, 1);
    first.send(&ClientMsg::Unsubscribe { sub: 1 });
    assert_eq!(second.recv(), ServerMsg::Active { sub: 1, next: 2 });
    assert_eq!(second.recv_offsets(1, 2), vec![2, 3]);

    // The first connection is still usable, and now it is the standby.
    first.send(&ClientMsg::Ping { nonce: 5 });
    assert_eq!(first.recv(), ServerMsg::Pong { nonce: 5 });
    assert!(
        !first.subscribe(2, "a", "g", Start::Earliest, 8).1,
        "standby"
    );
    first.close();
    second.close();
}

#[test]
fn a_nack_dead_letters_the_event_and_the_stream_goes_on() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path());
    for i in 1..=3u64 {
        post(&relay, "a", format!("{i}").as_bytes());
    }
    let mut c = WsClient::open(&relay, TOKEN_A);
    assert_eq!(c.subscribe(1, "a", "g", Start::Earliest, 3), (1, true));
    assert_eq!(c.recv_offsets(1, 3), vec![1, 2, 3]);
    c.send(&ClientMsg::Nack {
        sub: 1,
        offset: 1,
        reason: "http 400".into(),
        attempts: 1,
        last_status: Some(400),
    });
    c.ack(1, 2);
    c.ack(1, 3);
    wait_cursor(&relay, "a", "g", 3);
    assert_eq!(
        metric(
            &relay,
            "hookrelay_events_dead_lettered_total",
            &[("channel", "a")]
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(&relay, "hookrelay_events_acked_total", &[("channel", "a")]),
        Some(2.0)
    );
    assert_eq!(
        metric(
            &relay,
            "hookrelay_events_delivered_total",
            &[("channel", "a")]
        ),
        Some(3.0)
    );
    // The nacked event is not redelivered; new events keep coming.
    assert_eq!(c.recv(), ServerMsg::CaughtUp { sub: 1, head: 3 });
    post(&relay, "a", b"4");
    assert_eq!(c.recv_event(1).0, 4);
    c.close();
}

#[test]
fn a_live_event_wakes_a_caught_up_subscriber() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path());
    let mut c = WsClient::open(&relay, TOKEN_A);
    assert_eq!(c.subscribe(1, "a", "g", Start::Latest, 4), (1, true));
    assert_eq!(c.recv(), ServerMsg::CaughtUp { sub: 1, head: 0 });
    for i in 1..=3u64 {
        let body = format!("live {i}");
        assert_eq!(post(&relay, "a", body.as_bytes()), i);
        let (offset, bytes) = c.recv_event(1);
        assert_eq!(offset, i);
        assert_eq!(
            Record::decode(&bytes).expect("record").body,
            body.as_bytes()
        );
        c.ack(1, offset);
    }
    c.close();
}

#[test]
fn a_read_delivers_its_range_then_end_and_moves_no_cursor() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start_relay(dir.path());
    for i in 1..=5u64 {
        post(&relay, "a", format!("{i}").as_bytes());
    }
    let mut c = WsClient::open(&relay, TOKEN_A);
    let read = |sub, start, to, follow, window| ClientMsg::Read {
        sub,
        channel: "a".into(),
        start,
        to,
        follow,
        window,
    };

    c.send(&read(1, Start::Offset(2), Some(4), false, 8));
    assert_eq!(c.expect_subscribed(1), (2, true));
    assert_eq!(c.recv_offsets(1, 3), vec![2, 3, 4]);
    assert_eq!(c.recv(), ServerMsg::End { sub: 1, last: 4 });
    for offset in 2..=4 {
        c.ack(1, offset);
    }

    // Without `to` or follow: up to the head as of the subscription, with window 1.
    c.send(&read(2, Start::Committed, None, false, 1));
    assert_eq!(c.expect_subscribed(2), (1, true));
    for offset in 1..=5 {
        assert_eq!(c.recv_event(2).0, offset);
        c.ack(2, offset);
    }
    assert_eq!(c.recv(), ServerMsg::End { sub: 2, last: 5 });

    // Follow: caught up, then live events, no End.
    c.send(&read(3, Start::Latest, None, true, 8));
    assert_eq!(c.expect_subscribed(3), (6, true));
    assert_eq!(c.recv(), ServerMsg::CaughtUp { sub: 3, head: 5 });
    post(&relay, "a", b"6");
    assert_eq!(c.recv_event(3).0, 6);

    // No group was created or moved by any of it.
    let (_, json) = get(&relay.url("/v1/channels"), Some(ADMIN));
    let a = json["channels"]
        .as_array()
        .expect("channels")
        .iter()
        .find(|ch| ch["name"] == "a")
        .expect("a")
        .clone();
    assert_eq!(a["groups"], serde_json::json!([]), "{a}");
    c.close();
}

#[test]
fn sigterm_tells_every_agent_the_relay_is_shutting_down() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut relay = start_relay(dir.path());
    post(&relay, "a", b"1");
    let mut one = WsClient::open(&relay, TOKEN_A);
    assert_eq!(one.subscribe(1, "a", "g", Start::Earliest, 4), (1, true));
    assert_eq!(one.recv_event(1).0, 1);
    assert_eq!(one.recv(), ServerMsg::CaughtUp { sub: 1, head: 1 });
    let mut two = WsClient::open(&relay, TOKEN_B);
    assert_eq!(two.subscribe(1, "b", "g", Start::Earliest, 4), (1, true));
    assert_eq!(two.recv(), ServerMsg::CaughtUp { sub: 1, head: 0 });

    unsafe {
        libc::kill(relay.pid(), libc::SIGTERM);
    }
    one.expect_fatal(codes::SHUTTING_DOWN);
    two.expect_fatal(codes::SHUTTING_DOWN);
    let status = wait_exit(&mut relay.child);
    assert!(status.success(), "{status:?}");
}
