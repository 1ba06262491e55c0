//! Durability under crashes (guarantees 1 and 2): concurrent clients post distinct
//! bodies and record every 200 with its offset; the relay is SIGKILLed in the middle of
//! that, again and again on the same data directory. Afterwards every acknowledged event
//! must be stored intact at its acknowledged offset, offsets must be dense from 1, and
//! no offset may have been given to two acknowledged events. A graceful SIGTERM during
//! ingest must exit 0 and keep every acknowledged event too.

mod common;
#[path = "common/hooks.rs"]
mod hooks;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use common::{RelayProc, DEADLINE};
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

/// Acknowledgements seen by all clients: offset → body, plus a count to wait on.
#[derive(Default)]
struct Acks {
    by_offset: BTreeMap<u64, Vec<u8>>,
    /// Acks in the current round (reset before each round).
    round: usize,
    /// Offsets acknowledged twice (must stay empty).
    reused: Vec<u64>,
}

type Shared = Arc<(Mutex<Acks>, Condvar)>;

/// A distinct, self-describing body; lengths vary so that records differ in size.
fn body(round: usize, client: usize, seq: usize) -> Vec<u8> {
    let pad = "x".repeat((seq * 37 + client * 11) % 700);
    format!("{{\"round\":{round},\"client\":{client},\"seq\":{seq},\"pad\":\"{pad}\"}}")
        .into_bytes()
}

/// Starts the client threads against `url`; each posts until a request fails (the relay
/// is gone) or `stop` is set.
fn clients(
    url: String,
    round: usize,
    acks: Shared,
    stop: Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..CLIENTS)
        .map(|client| {
            let (url, acks, stop) = (url.clone(), acks.clone(), stop.clone());
            std::thread::spawn(move || {
                let http = Http::new();
                for seq in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let b = body(round, client, seq);
                    let id = format!("r{round}-c{client}-s{seq}");
                    let Ok(r) = http.try_send("POST", &url, &github(SECRET, &b, Some(&id)), &b)
                    else {
                        return; // killed mid-request: not acknowledged
                    };
                    if r.status != 200 {
                        // A refusal is not an ack; nothing else to record.
                        continue;
                    }
                    assert_eq!(r.json["duplicate"], false, "fresh ids are never duplicates");
                    let offset = r.json["offset"].as_u64().expect("offset");
                    let (lock, cv) = &*acks;
                    let mut a = lock.lock().expect("lock");
                    if a.by_offset.insert(offset, b).is_some() {
                        a.reused.push(offset);
                    }
                    a.round += 1;
                    cv.notify_all();
                }
            })
        })
        .collect()
}

/// Waits until `n` acks were seen in the current round.
fn wait_acks(acks: &Shared, n: usize) {
    let (lock, cv) = &**acks;
    let start = Instant::now();
    let mut a = lock.lock().expect("lock");
    while a.round < n {
        let left = DEADLINE
            .checked_sub(start.elapsed())
            .unwrap_or_else(|| panic!("only {} of {n} acks before the deadline", a.round));
        a = cv.wait_timeout(a, left).expect("lock").0;
    }
}

/// The whole proof: dense offsets from 1 to head, each ack intact at its offset.
fn verify(http: &Http, relay: &RelayProc, acks: &Shared) {
    let a = acks.0.lock().expect("lock");
    assert!(
        a.reused.is_empty(),
        "offsets acknowledged twice: {:?}",
        a.reused
    );
    let events = all_events(http, relay, "c");
    let offsets: Vec<u64> = events
        .iter()
        .map(|e| e["offset"].as_u64().expect("o"))
        .collect();
    let head = head(http, relay, "c");
    assert_eq!(
        offsets,
        (1..=head).collect::<Vec<_>>(),
        "offsets must be dense from 1 to the head"
    );
    for (offset, b) in &a.by_offset {
        let e = events
            .get(*offset as usize - 1)
            .unwrap_or_else(|| panic!("acknowledged offset {offset} is past the head {head}"));
        assert!(
            body_of(e) == *b,
            "offset {offset} holds {:?}, acknowledged {:?}",
            String::from_utf8_lossy(&body_of(e)),
            String::from_utf8_lossy(b)
        );
    }
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
        let threads = clients(relay.url("/hooks/c"), round, acks.clone(), stop.clone());
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
        verify(&http, &relay, &acks);
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
    let threads = clients(relay.url("/hooks/c"), 0, acks.clone(), stop.clone());
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
    verify(&http, &relay, &acks);
    assert!(acks.0.lock().expect("lock").by_offset.len() >= 40);
}
