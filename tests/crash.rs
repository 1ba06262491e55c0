//! Durability under crashes (guarantees 1 and 2): concurrent clients post distinct
//! bodies and record every 200 with its offset; the relay is SIGKILLed in the middle of
//! that, again and again on the same data directory. Afterwards every acknowledged event
//! must be stored intact at its acknowledged offset, offsets must be dense from 1, and
//! no offset may have been given to two acknowledged events. A graceful SIGTERM during
//! ingest must exit 0 and keep every acknowledged event too.

#[path = "common/acks.rs"]
mod acks;
mod common;
#[path = "common/hooks.rs"]
mod hooks;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

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
