//! The JetStream backend against a real nats-server: the same storage contract as the
//! embedded backend, one fresh server (and stream prefix) per check.

#[path = "common/nats.rs"]
mod nats;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use hookrelay::common::config::JetStreamConfig;
use hookrelay::storage::contract::Harness;
use hookrelay::storage::jetstream::JetStreamStorage;
use hookrelay::storage::Storage;
use nats::NatsServer;

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A server of its own and a prefix of its own; every `open` reconnects.
struct JsHarness {
    server: NatsServer,
    prefix: String,
    _store: tempfile::TempDir,
}

impl JsHarness {
    fn new() -> JsHarness {
        let store = tempfile::tempdir().expect("tempdir");
        JsHarness {
            server: NatsServer::single(store.path()),
            prefix: format!("t{}", NEXT.fetch_add(1, Ordering::Relaxed)),
            _store: store,
        }
    }
}

#[async_trait::async_trait]
impl Harness for JsHarness {
    async fn open(&self) -> Arc<dyn Storage> {
        let mut cfg = JetStreamConfig::new(vec![self.server.url.clone()]);
        cfg.stream_prefix = self.prefix.clone();
        Arc::new(JetStreamStorage::open(&cfg).await.expect("open jetstream"))
    }

    fn store_expires_ids(&self) -> bool {
        true
    }
}

mod contract {
    use super::JsHarness;
    hookrelay::storage_contract_tests!(JsHarness::new());
}

fn config(urls: Vec<String>, prefix: &str, replicas: usize) -> JetStreamConfig {
    let mut cfg = JetStreamConfig::new(urls);
    cfg.stream_prefix = prefix.to_string();
    cfg.replicas = replicas;
    cfg
}

fn event(body: &[u8]) -> hookrelay::storage::NewEvent {
    hookrelay::storage::contract::event(body, 1)
}

#[tokio::test]
async fn a_server_without_jetstream_is_refused_by_name() {
    let store = tempfile::tempdir().expect("tempdir");
    let server = NatsServer::without_jetstream(store.path());
    let err = JetStreamStorage::open(&config(vec![server.url.clone()], "x", 1))
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("no JetStream"), "{err}");
}

#[tokio::test]
async fn more_replicas_than_servers_is_refused() {
    let store = tempfile::tempdir().expect("tempdir");
    let server = NatsServer::single(store.path());
    let err = JetStreamStorage::open(&config(vec![server.url.clone()], "x", 3))
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("3 replica(s)"), "{err}");
}

/// Three servers, replicas = 3: appends go on after one server is SIGKILLed, and every
/// acknowledged event is there, at its offset, read through a fresh connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_keeps_acknowledged_events_when_a_server_dies() {
    let mut cluster = nats::Cluster::start();
    let urls = cluster.urls();
    let cfg = config(urls.clone(), "cl", 3);
    let s = open_when_the_cluster_is_up(&cfg).await;
    let mut acked = Vec::new();
    append_until(&s, &mut acked, 20).await;
    cluster.servers[0].kill();
    append_until(&s, &mut acked, 40).await;
    let offsets: std::collections::HashSet<u64> = acked.iter().map(|(o, _)| *o).collect();
    assert_eq!(
        offsets.len(),
        acked.len(),
        "every acknowledged offset is distinct"
    );
    s.close().await.expect("close");
    drop(s);
    let fresh = open_when_the_cluster_is_up(&config(urls[1..].to_vec(), "cl", 3)).await;
    for (offset, body) in &acked {
        let got = fresh
            .get("c", *offset)
            .await
            .expect("get")
            .expect("acknowledged event kept");
        assert_eq!(&got.body, body, "offset {offset}");
    }
}

/// Opens once the cluster has elected its JetStream leader (retrying until a deadline).
async fn open_when_the_cluster_is_up(cfg: &JetStreamConfig) -> Arc<dyn Storage> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        match JetStreamStorage::open(cfg).await {
            Ok(s) => return Arc::new(s),
            Err(e) if tokio::time::Instant::now() < deadline => {
                eprintln!("cluster not ready yet: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
            Err(e) => panic!("the cluster never came up: {e}"),
        }
    }
}

/// Appends until `acked` holds `n` acknowledged events, retrying failed appends (a
/// leader election after a kill) until a deadline.
async fn append_until(s: &Arc<dyn Storage>, acked: &mut Vec<(u64, Vec<u8>)>, n: usize) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(90);
    while acked.len() < n {
        let body = format!("event {}", acked.len()).into_bytes();
        match s.append("c", event(&body), None).await {
            Ok(a) => acked.push((a.offset, body)),
            Err(e) if tokio::time::Instant::now() < deadline => {
                eprintln!("append failed, retrying: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => panic!("appends never resumed: {e}"),
        }
    }
}

/// Offsets are never reused even when retention emptied a stream and the server
/// itself was SIGKILLed and restarted on the same store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_survive_an_emptied_stream_and_a_server_crash() {
    let store = tempfile::tempdir().expect("tempdir");
    let mut server = NatsServer::single(store.path());
    let cfg = config(vec![server.url.clone()], "crash", 1);
    {
        let s = JetStreamStorage::open(&cfg).await.expect("open");
        for _ in 0..3 {
            s.append("c", event(b"x"), None).await.expect("append");
        }
        let none = hookrelay::storage::Limits {
            max_events: Some(0),
            ..Default::default()
        };
        s.enforce_retention("c", none, 0).await.expect("retention");
        assert_eq!(s.earliest("c").expect("earliest"), 4);
        s.close().await.expect("close");
    }
    let port = server.port;
    server.kill();
    let server = NatsServer::single_on(store.path(), port);
    let s = JetStreamStorage::open(&config(vec![server.url.clone()], "crash", 1))
        .await
        .expect("reopen");
    assert_eq!((s.head("c"), s.earliest("c").expect("earliest")), (3, 4));
    let next = s.append("c", event(b"y"), None).await.expect("append");
    assert_eq!(next.offset, 4, "offsets are never reused");
}

/// A cursor written through one handle shows up in another's synchronous cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_nodes_cursor_writes_reach_the_cache() {
    let store = tempfile::tempdir().expect("tempdir");
    let server = NatsServer::single(store.path());
    let cfg = config(vec![server.url.clone()], "two", 1);
    let a = JetStreamStorage::open(&cfg).await.expect("open a");
    let b = JetStreamStorage::open(&cfg).await.expect("open b");
    a.set_cursor("c", "g", 7, false).await.expect("set");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while b.cursor("c", "g").expect("cursor") != Some(7) {
        assert!(
            std::time::Instant::now() < deadline,
            "the watch never delivered"
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    b.set_cursor("c", "g", 5, false).await.expect("set");
    assert_eq!(
        b.cursor("c", "g").expect("cursor"),
        Some(7),
        "never backwards"
    );
}

/// The test harness's own readiness signal: a cluster member whose route port is taken
/// says "Server is ready" and then exits. Its start must report the taken port (which
/// `Cluster::start` retries on fresh ports) rather than hand back a dead server.
#[test]
fn a_member_whose_route_port_is_taken_is_reported_and_not_ready() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let route = taken.local_addr().expect("addr").port();
    let store = tempfile::tempdir().expect("tempdir");
    let routes = [route, nats::free_port(), nats::free_port()];
    let started = NatsServer::cluster_member("taken", 0, store.path(), nats::free_port(), &routes);
    match started {
        Err(nats::StartError::PortTaken(line)) => assert!(line.contains("router port"), "{line}"),
        Err(other) => panic!("expected a taken route port, got {other:?}"),
        Ok(_) => panic!("a member without its route port was handed back as ready"),
    }
}
