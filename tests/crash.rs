//! Durability under crashes (guarantees 1 and 2): concurrent clients post distinct
//! bodies and record every 200 with its offset; the relay is SIGKILLed in the middle of
//! that, again and again on the same data directory. Afterwards every acknowledged event
//! must be stored intact at its acknowledged offset, offsets must be dense from 1, and
//! no offset may have been given to two acknowledged events. A graceful SIGTERM during
//! ingest must exit 0 and keep every acknowledged event too. A relay killed with zeros
//! written past its log's end (at a trickle the relay writes them while the log is
//! idle) must keep every acknowledged event as well.

#[path = "common/acks.rs"]
mod acks;
mod common;
#[path = "common/hooks.rs"]
mod hooks;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use acks::{clients, verify, wait_acks, Shared};
use common::RelayProc;
use hooks::*;

const SECRET: &str = "crash-secret";
const CLIENTS: usize = 4;
const KILLS: usize = 5;

fn start(dir: &std::path::Path) -> RelayProc {
    RelayProc::start(
        dir,
        &format!("admin_token = \"{ADMIN}\""),
        &format!("[[channel]]\nname = \"c\"\nscheme = \"github\"\nsecrets = [\"{SECRET}\"]\n"),
    )
}

#[test]
fn sigkill_during_concurrent_ingest_loses_no_acknowledged_event() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut relay = start(dir.path());
    let http = Http::new();
    let acks: Shared = Arc::default();
    let mut total = 0;

    for round in 0..KILLS {
        acks.0.lock().expect("lock").round = 0;
        let stop = Arc::new(AtomicBool::new(false));
        let threads = clients(
            relay.url("/hooks/c"),
            SECRET,
            CLIENTS,
            round,
            acks.clone(),
            stop.clone(),
        );
        // Kill after a different number of acks each round, with clients mid-flight.
        wait_acks(&acks, 25 + 17 * round);
        relay.kill();
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            t.join().expect("client thread");
        }
        relay.restart();
        let acked = acks.0.lock().expect("lock").by_offset.len();
        assert!(acked > total, "round {round} acknowledged nothing");
        total = acked;
        // Everything acknowledged so far is there after this crash.
        verify(&http, &relay, &acks, "c");
    }

    // The log still works and continues right after the head.
    let head_before = head(&http, &relay, "c");
    let b = b"{\"after\":\"crashes\"}";
    let r = http.post(&relay.url("/hooks/c"), &github(SECRET, b, None), b);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json["offset"], head_before + 1);
}

#[test]
fn sigterm_during_ingest_exits_0_and_keeps_every_ack() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut relay = start(dir.path());
    let http = Http::new();
    let acks: Shared = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let threads = clients(
        relay.url("/hooks/c"),
        SECRET,
        CLIENTS,
        0,
        acks.clone(),
        stop.clone(),
    );
    wait_acks(&acks, 40);
    let status = relay.terminate();
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("client thread");
    }
    assert!(
        status.success(),
        "SIGTERM exit status {status:?}; stderr:\n{}",
        relay.stderr_text()
    );
    let relay = RelayProc::start_with(dir.path(), &relay.config_path.clone(), &[]);
    verify(&http, &relay, &acks, "c");
    assert!(acks.0.lock().expect("lock").by_offset.len() >= 40);
}

/// sled's segment size: the unit the relay writes zeros in ahead of its log.
const SEGMENT_BYTES: u64 = 512 * 1024;
/// Time from one post's start to the next's in the trickle test: a webhook trickle,
/// with the log idle between commits, which is when the relay writes its zeros.
const TRICKLE_PERIOD: Duration = Duration::from_millis(4);

/// A distinct 8 KiB body, so that a round of posts fills several segments.
fn trickle_body(round: usize, seq: usize) -> Vec<u8> {
    let pad = "z".repeat(8 * 1024);
    format!("{{\"round\":{round},\"seq\":{seq},\"pad\":\"{pad}\"}}").into_bytes()
}

/// Waits until sled's log file ends with a whole segment of zeros: the relay has
/// written zeros past the segment its log is filling (`src/storage/sled/zero_ahead.rs`).
/// A segment sled has written never reads all zeros: it starts with a header.
fn wait_for_zeros_past_the_log(log: &std::path::Path) {
    let deadline = Instant::now() + common::DEADLINE;
    loop {
        let bytes = std::fs::read(log).expect("read sled's log file");
        let len = bytes.len() as u64;
        let tail = len.saturating_sub(SEGMENT_BYTES) as usize;
        if len >= 2 * SEGMENT_BYTES
            && len % SEGMENT_BYTES == 0
            && bytes[tail..].iter().all(|b| *b == 0)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no zeros were written past the log: the file is {len} bytes"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Zeros past the log's end must never cost an acknowledged event: at a trickle the
/// relay fills segments it zeroed before and writes new zeros past them, and is then
/// SIGKILLed with those zeros in its file, three times on one data directory. Every
/// acknowledged event is still at its offset after each restart, offsets stay dense,
/// and the log goes on past the zeros.
#[test]
fn sigkill_with_zeros_past_the_log_loses_no_acknowledged_event() {
    const ROUNDS: usize = 3;
    const POSTS: usize = 150;
    let dir = tempfile::tempdir().expect("tmp");
    let log = dir.path().join("data").join("db");
    let mut relay = start(dir.path());
    let http = Http::new();
    let acks: Shared = Arc::default();
    for round in 0..ROUNDS {
        for seq in 0..POSTS {
            let started = Instant::now();
            let b = trickle_body(round, seq);
            let r = http.post(&relay.url("/hooks/c"), &github(SECRET, &b, None), &b);
            assert_eq!(r.status, 200, "{}", r.text());
            let offset = r.json["offset"].as_u64().expect("offset");
            let mut a = acks.0.lock().expect("lock");
            if a.by_offset.insert(offset, b).is_some() {
                a.reused.push(offset);
            }
            drop(a);
            // The trickle's pace, not a wait for the relay: see TRICKLE_PERIOD.
            std::thread::sleep(TRICKLE_PERIOD.saturating_sub(started.elapsed()));
        }
        wait_for_zeros_past_the_log(&log);
        relay.kill();
        relay.restart();
        verify(&http, &relay, &acks, "c");
    }
    let b = b"{\"after\":\"zeros\"}";
    let r = http.post(&relay.url("/hooks/c"), &github(SECRET, b, None), b);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json["offset"], (ROUNDS * POSTS + 1) as u64);
}
