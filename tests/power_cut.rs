//! Power loss, not just a crash: the relay's data dir sits on a FUSE layer that keeps
//! every write not yet fsynced/fdatasynced in memory (`tests/powercut/unsyncedfs.py`,
//! in the manner of Jepsen's LazyFS). Concurrent clients post events and record every
//! 200; an agent acknowledges a cursor. Then the relay is SIGKILLed and the power is
//! cut: the layer drops every unsynced write and the backing dir keeps only what was
//! synced. On a fresh mount of what is left, a new relay must hold every acknowledged
//! event at its acknowledged offset with its body, dense offsets, and the cursor.
//!
//! A SIGKILL alone cannot show this (the page cache survives it). FUSE has no
//! `sync_file_range` request, so sled 0.34's own flush makes nothing durable here; what
//! does is the committer's `fdatasync` after each flush (`storage/sled/fsync.rs`) and
//! sled's 1 s timer `fsync`. Acks since the last timer tick survive only through the
//! committer's, so each round ingests hard and is cut at a different point.
//!
//! Needs root and FUSE (`.ci/run` installs libfuse2 and fusepy); fails, naming what is
//! missing, without them.

#[path = "common/acks.rs"]
mod acks;
mod common;
#[path = "common/hooks.rs"]
mod hooks;
#[path = "common/unsyncedfs.rs"]
mod unsyncedfs;
#[path = "common/ws.rs"]
mod ws;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use acks::{clients, verify, wait_acks, Shared};
use common::{RelayProc, DEADLINE};
use hookrelay::common::protocol::Start;
use hooks::*;
use unsyncedfs::UnsyncedFs;
use ws::WsClient;

const SECRET: &str = "power-secret";
const AGENT_TOKEN: &str = "power-agent-token";
const GROUP: &str = "g";
/// Power cuts in the test, each after a different amount of ingest.
const ROUNDS: usize = 3;
/// Concurrent posting clients: enough to keep the committer's group commits busy.
const CLIENTS: usize = 8;
/// Events the agent acknowledges per round (its window, acked in one go).
const CURSOR_STEP: u64 = 10;

fn write_config(dir: &Path, data_dir: &Path) -> std::path::PathBuf {
    let path = dir.join("config.toml");
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\nadmin_token = \"{ADMIN}\"\n\n\
         [[channel]]\nname = \"c\"\nscheme = \"github\"\nsecrets = [\"{SECRET}\"]\n\
         tokens = [\"{AGENT_TOKEN}\"]\n",
        data_dir.display().to_string()
    );
    std::fs::write(&path, text).expect("write config");
    path
}

/// The group's cursor as the admin API reports it (None before its first ack).
fn cursor(http: &Http, relay: &RelayProc) -> Option<u64> {
    let r = http.get(&relay.url("/v1/channels/c/groups"), Some(ADMIN));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["name"] == GROUP)
        .map(|g| g["cursor"].as_u64().expect("cursor"))
}

/// An agent takes the next `CURSOR_STEP` events of the group and acknowledges them;
/// returns the new cursor once the relay shows it, after one more 200 (a later group
/// commit, which makes the cursor write durable: the write queue is FIFO).
fn acknowledge_cursor(http: &Http, relay: &RelayProc, acks: &Shared, round: usize) -> u64 {
    let mut agent = WsClient::open(relay, AGENT_TOKEN);
    agent.subscribe(1, "c", GROUP, Start::Committed, CURSOR_STEP as u32);
    let offsets = agent.recv_offsets(1, CURSOR_STEP as usize);
    for o in &offsets {
        agent.ack(1, *o);
    }
    let last = *offsets.last().expect("events");
    let start = Instant::now();
    while cursor(http, relay) != Some(last) {
        assert!(
            start.elapsed() < DEADLINE,
            "the cursor never reached {last}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let b = format!("{{\"after_cursor\":{round}}}").into_bytes();
    let r = http.post(&relay.url("/hooks/c"), &github(SECRET, &b, None), &b);
    assert_eq!(r.status, 200, "{}", r.text());
    let offset = r.json["offset"].as_u64().expect("offset");
    acks.0.lock().expect("lock").by_offset.insert(offset, b);
    agent.close();
    last
}

#[test]
fn power_cut_after_sigkill_loses_no_acknowledged_event_or_cursor() {
    unsyncedfs::require();
    let tmp = tempfile::tempdir().expect("tmp");
    let (backing, mnt) = (tmp.path().join("backing"), tmp.path().join("mnt"));
    let config = write_config(tmp.path(), &mnt.join("data"));
    let http = Http::new();
    let acks: Shared = Arc::default();
    let mut acked_cursor = None;

    for round in 0..=ROUNDS {
        let fs = UnsyncedFs::mount(&backing, &mnt);
        let mut relay = RelayProc::start_with(tmp.path(), &config, &[]);
        // Everything acknowledged before the last cut survived it.
        verify(&http, &relay, &acks, "c");
        assert_eq!(
            cursor(&http, &relay),
            acked_cursor,
            "the acknowledged cursor"
        );
        if round == ROUNDS {
            let head = head(&http, &relay, "c");
            let b = b"{\"after\":\"power cuts\"}";
            let r = http.post(&relay.url("/hooks/c"), &github(SECRET, b, None), b);
            assert_eq!(r.status, 200, "{}", r.text());
            assert_eq!(r.json["offset"], head + 1, "the log goes on after the head");
            break;
        }

        acks.0.lock().expect("lock").round = 0;
        let stop = Arc::new(AtomicBool::new(false));
        let url = relay.url("/hooks/c");
        let threads = clients(url, SECRET, CLIENTS, round, acks.clone(), stop.clone());
        wait_acks(&acks, 2 * CURSOR_STEP as usize);
        acked_cursor = Some(acknowledge_cursor(&http, &relay, &acks, round));
        // Cut after a different amount of ingest each round, with clients mid-flight.
        wait_acks(&acks, 200 + 150 * round);
        relay.kill();
        let report = fs.cut();
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            t.join().expect("client thread");
        }
        eprintln!(
            "round {round}: {} acks in all; {report}",
            acks.0.lock().expect("lock").by_offset.len()
        );
    }
}
