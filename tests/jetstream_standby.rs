//! Consumer groups across relay nodes on one JetStream cluster (three real
//! nats-servers, two real relay processes on one stream prefix, real agents):
//!
//! - hot standby across nodes: the group's active agent is on node A, its standby on
//!   node B; node A is SIGKILLed during ingest; B's agent takes over once A's lease
//!   expires, with no gap (every acknowledged event delivered, in order, none skipped)
//!   and never while A's agent still delivers (each local service records when);
//! - a cursor reset and a redrive made through node A's admin API reach the group's
//!   active subscription on node B.

mod common;
#[path = "common/nats.rs"]
mod nats;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use nats::Cluster;
use serde_json::Value;

const TOKEN: &str = "standby-token";
const ADMIN: &str = "standby-admin";
const GROUP: &str = "g";
/// Pace of the ingest thread: steady, so the kill lands in the middle of it.
const POST_EVERY: Duration = Duration::from_millis(20);

/// A relay node on the cluster under prefix `prefix`, channel `c`.
fn node(dir: &std::path::Path, cluster: &Cluster, prefix: &str) -> RelayProc {
    let servers: Vec<String> = cluster.urls().iter().map(|u| format!("{u:?}")).collect();
    RelayProc::start(
        dir,
        &format!("admin_token = \"{ADMIN}\""),
        &format!(
            "[storage]\nbackend = \"jetstream\"\nservers = [{}]\nstream_prefix = \"{prefix}\"\n\
             replicas = 3\n\n\
             [[channel]]\nname = \"c\"\nscheme = \"none\"\ntokens = [\"{TOKEN}\"]\n",
            servers.join(", ")
        ),
    )
}

/// Posts `body` to channel `c` of `relay`; the offset when acknowledged (200).
fn post(relay: &RelayProc, body: &str) -> Option<u64> {
    let (status, json) = post_raw(&relay.url("/hooks/c"), "POST", &[], body.as_bytes());
    (status == 200).then(|| json["offset"].as_u64().expect("offset"))
}

fn admin_post(relay: &RelayProc, path: &str, body: Value) -> (u16, Value) {
    let headers = vec![
        ("authorization".to_string(), format!("Bearer {ADMIN}")),
        ("content-type".to_string(), "application/json".to_string()),
    ];
    post_raw(
        &relay.url(path),
        "POST",
        &headers,
        body.to_string().as_bytes(),
    )
}

/// A local service that records which offset arrived when, and answers 500 to bodies
/// starting with "bad" while `failing` is set.
struct Service {
    target: Target,
    arrivals: Arc<Mutex<Vec<(u64, Instant)>>>,
}

impl Service {
    fn new(failing: Arc<AtomicBool>) -> Service {
        let arrivals: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::default();
        let log = arrivals.clone();
        let target = Target::with(move |r, _| {
            let offset = r
                .header("x-hookrelay-offset")
                .and_then(|v| v.parse().ok())
                .expect("x-hookrelay-offset");
            log.lock().expect("lock").push((offset, Instant::now()));
            if r.body.starts_with(b"bad") && failing.load(Ordering::SeqCst) {
                (500, vec![])
            } else {
                (200, vec![])
            }
        });
        Service { target, arrivals }
    }

    fn arrivals(&self) -> Vec<(u64, Instant)> {
        self.arrivals.lock().expect("lock").clone()
    }

    fn offsets(&self) -> Vec<u64> {
        self.arrivals().into_iter().map(|(o, _)| o).collect()
    }
}

fn agent(relay: &RelayProc, service: &Service, extra: &[&str]) -> AgentProc {
    let (ws, url) = (relay.ws_url(), service.target.url());
    let mut args = vec![
        "agent",
        "--relay",
        &ws,
        "--channel",
        "c",
        "--forward",
        &url,
        "--token",
        TOKEN,
        "--group",
        GROUP,
    ];
    args.extend_from_slice(extra);
    AgentProc::spawn(&args)
}

/// Polls `cond` until it holds, failing past the deadline.
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Posts `e<i>` to `relay` every [`POST_EVERY`] until `stop`; returns the acknowledged
/// offsets.
fn ingest(relay_url: String, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<u64>> {
    std::thread::spawn(move || {
        let mut acked = Vec::new();
        let mut i = 0;
        while !stop.load(Ordering::SeqCst) {
            i += 1;
            let (status, json) = post_raw(&relay_url, "POST", &[], format!("e{i}").as_bytes());
            assert_eq!(status, 200, "the surviving node refused an event: {json}");
            acked.push(json["offset"].as_u64().expect("offset"));
            std::thread::sleep(POST_EVERY);
        }
        acked
    })
}

#[test]
fn the_standby_on_another_node_takes_over_when_the_active_node_is_killed() {
    let cluster = Cluster::start();
    cluster.wait_ready();
    let (da, db) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    let mut a = node(da.path(), &cluster, "hs");
    let b = node(db.path(), &cluster, "hs");
    let never = Arc::new(AtomicBool::new(false));
    let (sa, sb) = (Service::new(never.clone()), Service::new(never));

    // x on node A is first: it takes the group's lease. y on node B stands by.
    let x = agent(&a, &sa, &[]);
    x.wait_line("hookrelay agent subscribed ");
    let y = agent(&b, &sb, &[]);
    y.wait_line("hookrelay agent standby ");
    assert!(
        !x.lines()
            .iter()
            .any(|l| l.starts_with("hookrelay agent standby ")),
        "x was active from the start: {:?}",
        x.lines()
    );

    // Ingest to node B throughout; node A's agent delivers, until A is killed.
    let stop = Arc::new(AtomicBool::new(false));
    let posting = ingest(b.url("/hooks/c"), stop.clone());
    eventually("node A's agent delivering", || sa.offsets().len() >= 20);
    a.kill();
    let active = y.wait_line("hookrelay agent active ");
    let before = sb.offsets().len();
    eventually("node B's agent delivering", || {
        sb.offsets().len() >= before + 20
    });
    stop.store(true, Ordering::SeqCst);
    let acked = posting.join().expect("ingest thread");
    let last = *acked.last().expect("some events acknowledged");
    eventually("every acknowledged event delivered", || {
        sb.offsets().last() == Some(&last)
    });

    let (xa, yb) = (sa.arrivals(), sb.arrivals());
    let xs: Vec<u64> = xa.iter().map(|(o, _)| *o).collect();
    let ys: Vec<u64> = yb.iter().map(|(o, _)| *o).collect();
    assert_eq!(acked, (1..=last).collect::<Vec<_>>(), "dense offsets");
    assert!(
        xs.windows(2).all(|w| w[1] == w[0] + 1) && xs.first() == Some(&1),
        "node A's agent delivered 1.. in order: {xs:?}"
    );
    assert!(
        ys.windows(2).all(|w| w[1] == w[0] + 1),
        "node B's agent delivered in order, none skipped: {ys:?}"
    );
    let (x_last, y_first) = (*xs.last().expect("x"), *ys.first().expect("y"));
    assert!(
        y_first <= x_last + 1,
        "no gap between the nodes: A's agent ended at {x_last}, B's began at {y_first} ({active})"
    );
    let delivered: BTreeSet<u64> = xs.iter().chain(&ys).copied().collect();
    assert_eq!(
        delivered,
        (1..=last).collect::<BTreeSet<_>>(),
        "every acknowledged event delivered"
    );
    // Never both at once: B's agent received its first event after A's agent its last.
    let x_end = xa.iter().map(|(_, t)| *t).max().expect("x");
    let y_start = yb.iter().map(|(_, t)| *t).min().expect("y");
    assert!(
        y_start > x_end,
        "B's agent delivered {:?} before A's agent's last delivery",
        x_end - y_start
    );
    assert!(
        b.stderr_text()
            .contains("stream: standby promoted to active"),
        "node B promoted its standby"
    );
}

/// A group's entry in `GET /v1/channels/c/groups` of `relay`.
fn group_info(relay: &RelayProc) -> Value {
    let (status, json) = get(&relay.url("/v1/channels/c/groups"), Some(ADMIN));
    assert_eq!(status, 200, "{json}");
    json["groups"]
        .as_array()
        .and_then(|gs| gs.iter().find(|g| g["name"] == GROUP).cloned())
        .unwrap_or(Value::Null)
}

fn dead_letter_offsets(relay: &RelayProc) -> Vec<u64> {
    let (status, json) = get(
        &relay.url(&format!("/v1/channels/c/groups/{GROUP}/dead-letters")),
        Some(ADMIN),
    );
    assert_eq!(status, 200, "{json}");
    json["dead_letters"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|d| d["offset"].as_u64())
        .collect()
}

#[test]
fn a_reset_and_a_redrive_through_one_node_reach_the_active_agent_on_another() {
    let cluster = Cluster::start();
    cluster.wait_ready();
    let (da, db) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    let a = node(da.path(), &cluster, "rr");
    let b = node(db.path(), &cluster, "rr");
    let failing = Arc::new(AtomicBool::new(true));
    let service = Service::new(failing.clone());
    // One attempt per event: a refused one is dead-lettered at once.
    let y = agent(&b, &service, &["--max-attempts", "1"]);
    y.wait_line("hookrelay agent subscribed ");

    for body in ["e1", "e2", "bad3", "e4"] {
        assert!(post(&b, body).is_some(), "{body} acknowledged");
    }
    eventually("1..=4 delivered", || service.offsets().len() >= 4);
    // Node A sees what node B's agent did: the cursor and the dead letter.
    eventually("cursor 4 seen through node A", || {
        group_info(&a)["cursor"] == 4
    });
    eventually("dead letter 3 seen through node A", || {
        dead_letter_offsets(&a) == [3]
    });
    assert_eq!(service.offsets(), [1, 2, 3, 4]);

    // A reset through node A: node B's running subscription restarts at 2 at once.
    failing.store(false, Ordering::SeqCst);
    let (status, json) = admin_post(
        &a,
        &format!("/v1/channels/c/groups/{GROUP}/reset"),
        serde_json::json!({"offset": 2}),
    );
    assert_eq!(status, 200, "{json}");
    eventually("2..=4 again", || service.offsets().len() >= 7);
    assert_eq!(
        service.offsets()[4..],
        [2, 3, 4],
        "redelivered from the reset point"
    );
    eventually("cursor 4 again", || group_info(&a)["cursor"] == 4);

    // A redrive through node A of a dead letter made on node B.
    failing.store(true, Ordering::SeqCst);
    assert_eq!(post(&b, "bad5"), Some(5));
    eventually("dead letter 5 seen through node A", || {
        dead_letter_offsets(&a).contains(&5)
    });
    failing.store(false, Ordering::SeqCst);
    let (status, json) = admin_post(
        &a,
        &format!("/v1/channels/c/groups/{GROUP}/dead-letters/redrive"),
        serde_json::json!({"offsets": [5]}),
    );
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["redriven"], serde_json::json!([5]), "{json}");
    eventually("the redriven dead letter arrives on node B's agent", || {
        service.offsets().iter().filter(|o| **o == 5).count() == 2
    });
    eventually("the redrive settled", || {
        !dead_letter_offsets(&a).contains(&5)
    });
    assert!(
        b.stderr_text()
            .contains("reset made on another node applied"),
        "node B applied node A's reset"
    );
}

/// The lease at the storage level, two "nodes" in this process on a three-server
/// cluster: node A is connected to server 0 only, node B to servers 1 and 2. Only one
/// holds the lease; when server 0 hangs (SIGSTOP), A cannot renew, and A's lease is
/// reported lost before B can take it over.
#[test]
fn a_node_that_cannot_renew_stops_before_another_takes_the_lease() {
    use hookrelay::common::config::JetStreamConfig;
    use hookrelay::storage::jetstream::JetStreamStorage;
    use hookrelay::storage::Storage;

    let cluster = Cluster::start();
    cluster.wait_ready();
    let urls = cluster.urls();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let open = |urls: Vec<String>| {
        let mut cfg = JetStreamConfig::new(urls);
        cfg.stream_prefix = "lease".into();
        cfg.replicas = 3;
        rt.block_on(JetStreamStorage::open(&cfg)).expect("open")
    };
    let a = open(urls[..1].to_vec());
    let b = open(urls[1..].to_vec());
    rt.block_on(async {
        let held = a
            .try_lease("c", GROUP)
            .await
            .expect("try")
            .expect("granted");
        assert!(
            b.try_lease("c", GROUP).await.expect("try").is_none(),
            "held by A"
        );
        let mut lost = held.lease.lost();
        assert!(!*lost.borrow());

        // Server 0 hangs: A's renewals go unanswered.
        let hung = cluster.servers[0].pid();
        assert_eq!(unsafe { libc::kill(hung, libc::SIGSTOP) }, 0);
        let stopped = async {
            lost.wait_for(|l| *l).await.expect("lease kept");
            Instant::now()
        };
        let taken = async {
            let start = Instant::now();
            loop {
                if let Ok(Some(grant)) = b.try_lease("c", GROUP).await {
                    return (Instant::now(), grant);
                }
                // Bounded generously: if the hung server led the bucket's stream, the
                // other two elect a new leader first, which on a loaded 2-core machine
                // has taken longer than 30 s. The property is the order, below.
                assert!(
                    start.elapsed() < DEADLINE * 3,
                    "B never took the lease over"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        let (stopped_at, (taken_at, _grant)) = tokio::join!(stopped, taken);
        assert_eq!(unsafe { libc::kill(hung, libc::SIGCONT) }, 0);
        assert!(
            stopped_at < taken_at,
            "A stopped {:?} after B took the lease",
            stopped_at - taken_at
        );
        drop(held);
    });
}
