//! Concurrent ingest that records every acknowledgement, and the check that a log
//! still holds them all: shared by the crash test (SIGKILL) and the power-cut test.
//!
//! Clients post distinct, self-describing bodies with fresh delivery ids and record
//! every 200 with its offset. `verify` then demands dense offsets from 1 to the head
//! and each acknowledged body intact at its acknowledged offset. Needs `common` and
//! `hooks` at the crate root.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use crate::common::{RelayProc, DEADLINE};
use crate::hooks::*;

/// Acknowledgements seen by all clients: offset → body, plus a count to wait on.
#[derive(Default)]
pub struct Acks {
    pub by_offset: BTreeMap<u64, Vec<u8>>,
    /// Acks in the current round (reset before each round).
    pub round: usize,
    /// Offsets acknowledged twice (must stay empty).
    pub reused: Vec<u64>,
}

pub type Shared = Arc<(Mutex<Acks>, Condvar)>;

/// A distinct, self-describing body; lengths vary so that records differ in size.
pub fn body(round: usize, client: usize, seq: usize) -> Vec<u8> {
    let pad = "x".repeat((seq * 37 + client * 11) % 700);
    format!("{{\"round\":{round},\"client\":{client},\"seq\":{seq},\"pad\":\"{pad}\"}}")
        .into_bytes()
}

/// Starts `n` client threads posting GitHub-signed events (secret `secret`) to `url`;
/// each posts until a request fails (the relay is gone) or `stop` is set.
pub fn clients(
    url: String,
    secret: &str,
    n: usize,
    round: usize,
    acks: Shared,
    stop: Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..n)
        .map(|client| {
            let (url, acks, stop) = (url.clone(), acks.clone(), stop.clone());
            let secret = secret.to_string();
            std::thread::spawn(move || {
                let http = Http::new();
                for seq in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let b = body(round, client, seq);
                    let id = format!("r{round}-c{client}-s{seq}");
                    let Ok(r) = http.try_send("POST", &url, &github(&secret, &b, Some(&id)), &b)
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
pub fn wait_acks(acks: &Shared, n: usize) {
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
pub fn verify(http: &Http, relay: &RelayProc, acks: &Shared, channel: &str) {
    let a = acks.0.lock().expect("lock");
    assert!(
        a.reused.is_empty(),
        "offsets acknowledged twice: {:?}",
        a.reused
    );
    let events = all_events(http, relay, channel);
    let offsets: Vec<u64> = events
        .iter()
        .map(|e| e["offset"].as_u64().expect("o"))
        .collect();
    let head = head(http, relay, channel);
    assert_eq!(
        offsets,
        (1..=head).collect::<Vec<_>>(),
        "offsets must be dense from 1 to the head"
    );
    let missing: Vec<u64> = a.by_offset.keys().filter(|o| **o > head).copied().collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged offsets are past the head {head} (lost): {:?}..",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    for (offset, b) in &a.by_offset {
        let e = &events[*offset as usize - 1];
        assert!(
            body_of(e) == *b,
            "offset {offset} holds {:?}, acknowledged {:?}",
            String::from_utf8_lossy(&body_of(e)),
            String::from_utf8_lossy(b)
        );
    }
}
