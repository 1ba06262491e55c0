//! Several relay nodes on one stream prefix: first two backends opened in one process
//! (each its own NATS connection, as two nodes have), then real relay processes on a
//! three-server nats-server cluster.

mod common;
#[path = "common/nats.rs"]
mod nats;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use hookrelay::common::config::JetStreamConfig;
use hookrelay::storage::jetstream::JetStreamStorage;
use hookrelay::storage::types::Dedup;
use hookrelay::storage::Storage;
use nats::NatsServer;

fn config(urls: Vec<String>, prefix: &str) -> JetStreamConfig {
    let mut cfg = JetStreamConfig::new(urls);
    cfg.stream_prefix = prefix.to_string();
    cfg
}

fn event(body: &[u8], at_ms: u64) -> hookrelay::storage::NewEvent {
    hookrelay::storage::contract::event(body, at_ms)
}

/// Two backends ("nodes") on one server and one prefix.
async fn two_nodes(server: &NatsServer, prefix: &str) -> (Arc<dyn Storage>, Arc<dyn Storage>) {
    let cfg = config(vec![server.url.clone()], prefix);
    let a = JetStreamStorage::open(&cfg).await.expect("open a");
    let b = JetStreamStorage::open(&cfg).await.expect("open b");
    (Arc::new(a), Arc::new(b))
}

/// Both nodes append at once, many appends in flight on each (so batches are
/// pipelined and collide): every append is acknowledged, at a distinct offset, the
/// offsets are exactly 1..=n, and the record stored at each offset says that offset
/// and holds the body acknowledged there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_on_one_stream_keep_offsets_dense_and_exact() {
    const PER_NODE: usize = 300;
    const IN_FLIGHT: usize = 16;
    let store = tempfile::tempdir().expect("tempdir");
    let server = NatsServer::single(store.path());
    let (a, b) = two_nodes(&server, "w").await;
    let write = |node: Arc<dyn Storage>, name: &'static str| async move {
        let mut acked = Vec::new();
        for chunk in 0..PER_NODE / IN_FLIGHT + 1 {
            let bodies: Vec<String> = (0..IN_FLIGHT)
                .map(|k| chunk * IN_FLIGHT + k)
                .filter(|i| *i < PER_NODE)
                .map(|i| format!("{name}-{i}"))
                .collect();
            let appends = bodies
                .iter()
                .map(|body| node.append("c", event(body.as_bytes(), 1), None));
            for (body, r) in bodies.iter().zip(join_all(appends).await) {
                acked.push((r.expect("append acknowledged").offset, body.clone()));
            }
        }
        acked
    };
    let (from_a, from_b) = tokio::join!(
        tokio::spawn(write(a.clone(), "a")),
        tokio::spawn(write(b.clone(), "b"))
    );
    let mut by_offset = BTreeMap::new();
    for (offset, body) in from_a.expect("a").into_iter().chain(from_b.expect("b")) {
        assert!(
            by_offset.insert(offset, body).is_none(),
            "offset {offset} given twice"
        );
    }
    let n = (2 * PER_NODE) as u64;
    assert_eq!(
        by_offset.keys().copied().collect::<Vec<_>>(),
        (1..=n).collect::<Vec<_>>(),
        "dense offsets"
    );
    wait_until("b sees the whole stream", || b.head("c") == n).await;
    let stored = b.read("c", 1, 2 * PER_NODE).await.expect("read");
    assert_eq!(stored.len(), 2 * PER_NODE);
    for r in stored {
        assert_eq!(
            r.body,
            by_offset[&r.offset].as_bytes(),
            "offset {}",
            r.offset
        );
    }
    let mut last_ms = 0;
    for r in a.read("c", 1, 2 * PER_NODE).await.expect("read") {
        assert!(r.received_at_ms >= last_ms, "received-at never goes back");
        last_ms = r.received_at_ms;
    }
}

/// An append through node A wakes a watcher of node B (no read, no poll on B's side)
/// and B's head, reads and channel list then include it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_nodes_append_wakes_a_watcher() {
    let store = tempfile::tempdir().expect("tempdir");
    let server = NatsServer::single(store.path());
    let (a, b) = two_nodes(&server, "live").await;
    let mut watched = b.watch("c");
    assert_eq!(*watched.borrow(), 0);
    for i in 1..=3u64 {
        let got = a.append("c", event(b"x", i), None).await.expect("append");
        assert_eq!(got.offset, i);
        tokio::time::timeout(Duration::from_secs(10), watched.wait_for(|h| *h >= i))
            .await
            .expect("b's watcher woke within 10 s")
            .expect("watch open");
    }
    assert_eq!(b.head("c"), 3);
    assert_eq!(b.channels(), vec!["c".to_string()]);
    assert_eq!(b.read("c", 1, 10).await.expect("read").len(), 3);
    let next = b
        .append("c", event(b"y", 4), None)
        .await
        .expect("append on b");
    assert_eq!(next.offset, 4, "b's writer continues after a's appends");
}

/// A delivery id taken through node A is a duplicate through node B, with A's offset;
/// and when both nodes take one id at the same time, exactly one event is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_id_is_deduplicated_across_nodes() {
    let store = tempfile::tempdir().expect("tempdir");
    let server = NatsServer::single(store.path());
    let (a, b) = two_nodes(&server, "dd").await;
    let dedup = |id: &str| {
        Some(Dedup {
            id: id.to_string(),
            window_ms: 60_000,
        })
    };
    let first = a
        .append("c", event(b"one", 1), dedup("d1"))
        .await
        .expect("a");
    let again = b
        .append("c", event(b"one", 2), dedup("d1"))
        .await
        .expect("b");
    assert!(!first.duplicate);
    assert!(again.duplicate, "{again:?}");
    assert_eq!((again.offset, &again.id), (first.offset, &first.id));
    for i in 0..20 {
        let id = format!("race-{i}");
        let (x, y) = tokio::join!(
            a.append("c", event(b"r", 10), dedup(&id)),
            b.append("c", event(b"r", 10), dedup(&id))
        );
        let (x, y) = (x.expect("a"), y.expect("b"));
        assert_eq!(x.offset, y.offset, "one offset for {id}");
        assert!(x.duplicate ^ y.duplicate, "exactly one original for {id}");
    }
    let head = a.head("c").max(b.head("c"));
    assert_eq!(head, 21, "one event per delivery id");
}

/// Retention through node A moves node B's first retained offset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_nodes_purge_moves_earliest() {
    let store = tempfile::tempdir().expect("tempdir");
    let server = NatsServer::single(store.path());
    let (a, b) = two_nodes(&server, "ret").await;
    for i in 1..=5 {
        a.append("c", event(b"x", i), None).await.expect("append");
    }
    wait_until("b sees the appends", || b.head("c") == 5).await;
    let keep_two = hookrelay::storage::Limits {
        max_events: Some(2),
        ..Default::default()
    };
    let pass = a
        .enforce_retention("c", keep_two, 10)
        .await
        .expect("retention");
    assert_eq!(pass.earliest, 4);
    wait_until("b learns the purge", || {
        b.earliest("c").expect("earliest") == 4
    })
    .await;
    let again = b
        .enforce_retention("c", keep_two, 10)
        .await
        .expect("retention on b");
    assert_eq!(
        (again.events, again.earliest),
        (0, 4),
        "a second purge is a no-op"
    );
    let offsets: Vec<u64> = b
        .read("c", 1, 10)
        .await
        .expect("read")
        .iter()
        .map(|r| r.offset)
        .collect();
    assert_eq!(offsets, vec![4, 5]);
}

/// Waits for `cond`, failing after a deadline.
async fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + common::DEADLINE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
