//! Network faults on a real network path, in Linux network namespaces.
//!
//! The agent runs in its own namespace and reaches the relay only outbound, through a
//! router namespace doing NAT (iptables MASQUERADE) — the shape of a real deployment
//! (see `common/netns.rs`). The relay, the recording local service and any delay proxy
//! run in the root namespace, where this test process is. Faults are made in the
//! router, on the relay's TCP port only:
//!
//! - a silent partition: nft drops every packet both ways for 60 s (no RST, no FIN);
//! - 5 % loss (nft `numgen random mod 100 < 5 drop`, real kernel drops and real TCP
//!   retransmits) and 200 ms of delay each way: `tc netem` when the kernel has it, else
//!   a userspace delay proxy (`common/delay_proxy.rs`); the test prints which one ran;
//! - the relay's address changes (the old path goes silent, the name moves);
//! - the NAT mapping expires or is flushed (conntrack), with a strict NAT that drops
//!   packets of flows it no longer knows.
//!
//! The relay runs with `stream_heartbeat_secs = 1`, so the agent's bound for noticing a
//! silent relay is `IDLE_HEARTBEATS` (3) heartbeats = 3 s; the tests allow
//! [`NOTICE_SLACK`] on top for a loaded machine. Without root or where network
//! namespaces are not permitted, each test prints `SKIP netfaults: <why>` and returns;
//! a missing tool (ip, nft, iptables, conntrack) fails the test and names its package.
//!
//! Waits are on conditions (log lines, stdout lines, recorded requests, metrics) with
//! deadlines; the only fixed waits are a fault's own duration.

mod common;
#[path = "common/delay_proxy.rs"]
mod delay_proxy;
#[path = "common/netns.rs"]
mod netns;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use delay_proxy::DelayProxy;
use hookrelay::agent::backoff::RECONNECT_MAX_DELAY;
use hookrelay::agent::dial::DIAL_TIMEOUT;
use hookrelay::agent::plan::prefetch_window;
use hookrelay::agent::session::IDLE_HEARTBEATS;
use netns::Net;

const TOKEN: &str = "nf-token";
/// The relay's heartbeat in the fault tests (`[server] stream_heartbeat_secs`).
const HEARTBEAT_SECS: u64 = 1;
/// The relay's idle timeout (`[server] stream_idle_timeout_secs`).
const RELAY_IDLE_SECS: u64 = 3;
/// Allowed past the agent's bound (`IDLE_HEARTBEATS` heartbeats) for timers on a
/// loaded machine.
const NOTICE_SLACK: Duration = Duration::from_secs(5);
/// The partition length.
const PARTITION: Duration = Duration::from_secs(60);
/// Reconnecting after a long outage: the backoff may have reached its cap, and a dial
/// started during the outage may run to its timeout.
const RECONNECT_BOUND: Duration =
    Duration::from_secs(RECONNECT_MAX_DELAY.as_secs() + DIAL_TIMEOUT.as_secs() + 15);

/// The agent's bound for noticing a silent relay, plus slack.
fn notice_bound() -> Duration {
    Duration::from_secs(HEARTBEAT_SECS * u64::from(IDLE_HEARTBEATS)) + NOTICE_SLACK
}

/// The topology, or None after printing why this machine cannot build it.
fn net_or_skip(test: &str) -> Option<Net> {
    match Net::build() {
        Ok(net) => Some(net),
        Err(why) => {
            eprintln!("SKIP netfaults::{test}: {why}");
            None
        }
    }
}

/// Writes a config listening on `listen` with the given stream timers, data in `dir`.
fn write_config(dir: &Path, name: &str, listen: &str, heartbeat: u64, idle: u64) -> PathBuf {
    let path = dir.join(name);
    let text = format!(
        "[server]\nlisten = \"{listen}\"\ndata_dir = {:?}\n\
         stream_heartbeat_secs = {heartbeat}\nstream_idle_timeout_secs = {idle}\n\n\
         [[channel]]\nname = \"c\"\nscheme = \"none\"\ntokens = [\"{TOKEN}\"]\n",
        dir.join("data").display().to_string()
    );
    std::fs::write(&path, text).expect("write config");
    path
}

fn start_relay(dir: &Path, listen: &str, heartbeat: u64, idle: u64) -> RelayProc {
    let config = write_config(dir, "config.toml", listen, heartbeat, idle);
    RelayProc::start_with(dir, &config, &[])
}

/// A local service on the root side of the router, answering 200.
fn target(net: &Net, close: bool) -> Target {
    let extra = if close {
        vec![("connection".to_string(), "close".to_string())]
    } else {
        vec![]
    };
    Target::bound_to(
        &format!("{}:0", net.host_ip),
        Duration::ZERO,
        move |_, _| (200, extra.clone()),
    )
}

/// `hookrelay agent` inside the agent namespace, once subscribed.
fn start_agent(net: &Net, relay_url: &str, target: &Target, extra: &[&str]) -> AgentProc {
    let wrapper = net.agent_wrapper();
    let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
    let forward = target.url();
    let mut args = vec![
        "agent",
        "--relay",
        relay_url,
        "--channel",
        "c",
        "--forward",
        &forward,
        "--token",
        TOKEN,
    ];
    args.extend_from_slice(extra);
    let agent = AgentProc::spawn_wrapped(&wrapper, &args, &[]);
    agent.wait_lines("hookrelay agent subscribed ", 1);
    agent
}

/// Posts `body` to channel `c` (from the root namespace: ingest is never faulted).
fn post(base: &str, body: &str) -> u64 {
    let (status, json) = post_raw(&format!("{base}/hooks/c"), "POST", &[], body.as_bytes());
    assert_eq!(status, 200, "{json}");
    json["offset"].as_u64().expect("offset")
}

/// The offset of every request the target received, in arrival order.
fn offsets(target: &Target) -> Vec<u64> {
    target
        .received()
        .iter()
        .map(|r| {
            r.header("x-hookrelay-offset")
                .and_then(|v| v.parse().ok())
                .expect("offset header")
        })
        .collect()
}

fn distinct(offsets: &[u64]) -> BTreeSet<u64> {
    offsets.iter().copied().collect()
}

/// Polls `cond` every 50 ms until it holds; returns when, or fails past `deadline`.
fn wait_until(
    what: &str,
    deadline: Duration,
    mut cond: impl FnMut() -> bool,
    context: impl Fn() -> String,
) -> Instant {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Instant::now()
}

/// How often `needle` occurs in the agent's log.
fn count(agent: &AgentProc, needle: &str) -> usize {
    agent.stderr_text().matches(needle).count()
}

/// How many times the agent subscribed (once per connection).
fn subscriptions(agent: &AgentProc) -> usize {
    agent
        .lines()
        .iter()
        .filter(|l| l.starts_with("hookrelay agent subscribed "))
        .count()
}

/// Waits until the target holds every offset in `1..=last`.
fn wait_all_delivered(target: &Target, last: u64, deadline: Duration, agent: &AgentProc) {
    wait_until(
        &format!("offsets 1..={last} at the target"),
        deadline,
        || distinct(&offsets(target)).len() as u64 >= last,
        || {
            format!(
                "have {:?}\n{}",
                distinct(&offsets(target)),
                agent.stderr_text()
            )
        },
    );
    let seen = distinct(&offsets(target));
    assert_eq!(
        seen,
        (1..=last).collect::<BTreeSet<u64>>(),
        "lost or foreign offsets"
    );
}

/// The relay's open agent connections (`hookrelay_stream_connections`).
fn relay_connections(relay: &RelayProc) -> Option<f64> {
    let scrape = common::metrics::scrape(&relay.url("/metrics"));
    common::metrics::value(&scrape, "hookrelay_stream_connections", &[])
}

/// Posts an event every `every` on a thread until stopped; keeps the offsets.
struct Ingest {
    stop: Arc<AtomicBool>,
    offsets: Arc<Mutex<Vec<u64>>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Ingest {
    fn start(base: String, every: Duration) -> Ingest {
        let stop = Arc::new(AtomicBool::new(false));
        let offsets: Arc<Mutex<Vec<u64>>> = Arc::default();
        let (st, offs) = (stop.clone(), offsets.clone());
        let handle = std::thread::spawn(move || {
            let mut i = 0;
            while !st.load(Ordering::SeqCst) {
                let offset = post(&base, &format!("during-{i}"));
                offs.lock().expect("lock").push(offset);
                i += 1;
                std::thread::sleep(every);
            }
        });
        Ingest {
            stop,
            offsets,
            handle: Some(handle),
        }
    }

    fn posted(&self) -> usize {
        self.offsets.lock().expect("lock").len()
    }

    /// Stops and returns the offsets posted (a failed post fails the test).
    fn finish(mut self) -> Vec<u64> {
        self.stop.store(true, Ordering::SeqCst);
        let handle = self.handle.take().expect("handle");
        handle.join().expect("the ingest thread failed");
        self.offsets.lock().expect("lock").clone()
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Waits for the agent's "disconnected" within the agent's bound; returns how long
/// after `cut` it came.
fn wait_noticed(agent: &AgentProc, cut: Instant, what: &str) -> Duration {
    wait_until(
        &format!("the agent to notice {what}"),
        notice_bound(),
        || agent.stderr_text().contains("disconnected"),
        || agent.stderr_text(),
    ) - cut
}

/// Waits until the agent subscribed `n` times in all (once per connection); returns
/// how long after `since`.
fn wait_subscribed(agent: &AgentProc, n: usize, since: Instant, what: &str) -> Duration {
    wait_until(
        &format!("the agent to reconnect {what}"),
        RECONNECT_BOUND,
        || subscriptions(agent) >= n,
        || agent.stderr_text(),
    ) - since
}

/// Requests the target received more than once.
fn duplicates(target: &Target) -> usize {
    let all = offsets(target);
    all.len() - distinct(&all).len()
}

/// The error of the agent's first failed dial, from its log.
fn first_dial_error(agent: &AgentProc) -> String {
    agent
        .stderr_text()
        .lines()
        .find(|l| l.contains("cannot reach the relay"))
        .and_then(|l| l.split("error=").nth(1))
        .unwrap_or("?")
        .to_string()
}

/// Waits for the relay to close its side of a silent agent's connection (its idle
/// timeout, then a goodbye it cannot send); returns how long after `cut`.
fn wait_relay_dropped(relay: &RelayProc, cut: Instant) -> Duration {
    wait_until(
        "the relay to drop the silent agent",
        Duration::from_secs(2 * RELAY_IDLE_SECS) + NOTICE_SLACK,
        || relay_connections(relay) == Some(0.0),
        || relay.stderr_text(),
    ) - cut
}

#[test]
fn a_silent_partition_is_noticed_healed_and_loses_nothing() {
    let Some(net) = net_or_skip("silent_partition") else {
        return;
    };
    const MAX_IN_FLIGHT: usize = 4;
    let dir = tempfile::tempdir().expect("tmp");
    let listen = format!("{}:0", net.host_ip);
    let relay = start_relay(dir.path(), &listen, HEARTBEAT_SECS, RELAY_IDLE_SECS);
    let target = target(&net, false);
    let window = ["--max-in-flight", &MAX_IN_FLIGHT.to_string()].map(String::from);
    let agent = start_agent(&net, &relay.ws_url(), &target, &[&window[0], &window[1]]);
    for i in 0..10 {
        post(&relay.base, &format!("before-{i}"));
    }
    wait_all_delivered(&target, 10, DEADLINE, &agent);
    // Events keep coming in (10 a second) before, during and after the partition.
    let ingest = Ingest::start(relay.base.clone(), Duration::from_millis(100));
    wait_until(
        "ingest to run",
        DEADLINE,
        || ingest.posted() >= 5,
        String::new,
    );

    let cut = Instant::now();
    net.partition(relay.addr.port());
    let noticed = wait_noticed(&agent, cut, "the silent partition");
    let relay_dropped = wait_relay_dropped(&relay, cut);
    // Wait out the partition; the agent keeps dialling meanwhile.
    std::thread::sleep(PARTITION.saturating_sub(cut.elapsed()));
    let attempts = count(&agent, "cannot reach the relay");
    assert!(
        attempts >= 1,
        "no dial during the partition:\n{}",
        agent.stderr_text()
    );
    assert_eq!(subscriptions(&agent), 1, "subscribed through a partition?");
    let dropped = net.dropped_packets();
    assert!(dropped > 0, "the partition dropped nothing");

    net.heal();
    let healed = Instant::now();
    let during = ingest.finish();
    let back = wait_subscribed(&agent, 2, healed, "after the partition");
    let last = post(&relay.base, "after");
    wait_all_delivered(&target, last, DEADLINE, &agent);
    let duplicates = duplicates(&target);
    println!(
        "netfaults: silent partition {PARTITION:?}: agent noticed after {noticed:.1?} \
         (bound {:?}), relay dropped it after {relay_dropped:.1?}, {attempts} failed dials \
         during the partition, {dropped} packets dropped, reconnected {back:.1?} after the \
         path returned; {last} events ({} ingested during the partition), {duplicates} \
         duplicates (window {MAX_IN_FLIGHT})",
        notice_bound(),
        during.len(),
    );
    assert!(
        duplicates <= MAX_IN_FLIGHT,
        "{duplicates} duplicates: {:?}",
        offsets(&target)
    );
}

/// The same fault with a backlog at the cut: the agent holds up to its whole window
/// (`--max-in-flight` plus `agent::plan::PREFETCH_EVENTS` queued events) and, not
/// knowing yet that its acks go nowhere, delivers the queued ones until it notices.
/// Those come again after the reconnect: under a silent partition the duplicates are
/// bounded by the granted window, not by `--max-in-flight` (which bounds them after a
/// crash or a takeover, where queued events are never started).
#[test]
fn a_silent_partition_with_a_backlog_duplicates_at_most_the_window() {
    let Some(net) = net_or_skip("partition_with_backlog") else {
        return;
    };
    const MAX_IN_FLIGHT: u32 = 4;
    const EVENTS: u64 = 300;
    /// Shorter than the first case's: what matters here is the moment of the cut.
    const SHORT_PARTITION: Duration = Duration::from_secs(10);
    let dir = tempfile::tempdir().expect("tmp");
    let listen = format!("{}:0", net.host_ip);
    let relay = start_relay(dir.path(), &listen, HEARTBEAT_SECS, RELAY_IDLE_SECS);
    // A local service taking 30 ms per event: 300 events make a backlog of seconds.
    let target = Target::bound_to(&listen, Duration::from_millis(30), |_, _| (200, vec![]));
    let window = ["--max-in-flight", &MAX_IN_FLIGHT.to_string()].map(String::from);
    let agent = start_agent(&net, &relay.ws_url(), &target, &[&window[0], &window[1]]);
    for i in 0..EVENTS {
        post(&relay.base, &format!("backlog-{i}"));
    }
    let under_way = || target.received().len() >= 20;
    wait_until("deliveries under way", DEADLINE, under_way, String::new);
    let cut = Instant::now();
    net.partition(relay.addr.port());
    let at_cut = target.received().len();
    wait_noticed(&agent, cut, "the silent partition");
    let blind = target.received().len() - at_cut;
    std::thread::sleep(SHORT_PARTITION.saturating_sub(cut.elapsed()));
    net.heal();
    wait_all_delivered(&target, EVENTS, Duration::from_secs(60), &agent);
    let duplicates = duplicates(&target);
    let granted = prefetch_window(MAX_IN_FLIGHT) as usize;
    println!(
        "netfaults: silent partition with a backlog: {blind} deliveries between the cut and \
         the agent noticing, {duplicates} duplicates (--max-in-flight {MAX_IN_FLIGHT}, \
         granted window {granted})"
    );
    assert!(
        duplicates <= granted,
        "{duplicates} duplicates, more than {granted}"
    );
}

/// Event `i` of the loss test: 4 KiB, so that the 200 events take a few hundred
/// packets each way and the loss has something to hit.
fn lossy_body(i: u64) -> String {
    format!("event-{i}:{}", "x".repeat(4096))
}

/// How the agent's path gets its delay: netem in the router, else a userspace proxy.
struct DelayStage {
    /// The URL the agent dials.
    url: String,
    /// The TCP port the agent's connection goes to (where the loss rules go).
    port: u16,
    /// What ran, and why, for the test output.
    name: String,
    _proxy: Option<DelayProxy>,
}

fn delay_stage(net: &Net, relay: &RelayProc, delay: Duration) -> DelayStage {
    let ms = u32::try_from(delay.as_millis()).expect("ms");
    match net.try_netem_delay(relay.addr.port(), ms) {
        Ok(()) => DelayStage {
            url: relay.ws_url(),
            port: relay.addr.port(),
            name: "tc netem".to_string(),
            _proxy: None,
        },
        Err(why) => {
            let proxy = DelayProxy::start(&format!("{}:0", net.host_ip), relay.addr, delay);
            DelayStage {
                url: format!("ws://{}", proxy.addr),
                port: proxy.addr.port(),
                name: format!("a userspace delay proxy, since tc netem failed: {why}"),
                _proxy: Some(proxy),
            }
        }
    }
}

/// The first delivery of every offset came in offset order, with its own body.
fn assert_in_order(target: &Target, events: u64) {
    let mut first_seen = Vec::new();
    for r in &target.received() {
        let offset: u64 = r
            .header("x-hookrelay-offset")
            .expect("offset")
            .parse()
            .expect("n");
        if !first_seen.contains(&offset) {
            first_seen.push(offset);
            let want = match offset {
                1 => "probe".to_string(),
                n => lossy_body(n - 1),
            };
            assert_eq!(r.body, want.as_bytes(), "offset {offset}");
        }
    }
    assert_eq!(first_seen, (1..=events).collect::<Vec<_>>(), "out of order");
}

#[test]
fn loss_and_delay_still_deliver_everything_in_order() {
    let Some(net) = net_or_skip("loss_and_delay") else {
        return;
    };
    const EVENTS: u64 = 200;
    const DELAY: Duration = Duration::from_millis(200);
    let dir = tempfile::tempdir().expect("tmp");
    let listen = format!("{}:0", net.host_ip);
    // Longer timers than the other cases: a retransmitted heartbeat is not a dead relay.
    let relay = start_relay(dir.path(), &listen, 5, 15);
    let target = target(&net, false);
    let stage = delay_stage(&net, &relay, DELAY);
    println!("netfaults: delay stage: {}", stage.name);
    net.lose(stage.port, 5);
    // --max-in-flight 1 (the default): strict order at the target.
    let agent = start_agent(&net, &stage.url, &target, &[]);
    let started = Instant::now();
    let probe = post(&relay.base, "probe");
    wait_all_delivered(&target, probe, DEADLINE, &agent);
    let latency = started.elapsed();
    assert!(
        latency >= DELAY,
        "delivered in {latency:?}: no delay on the path"
    );
    for i in 1..EVENTS {
        post(&relay.base, &lossy_body(i));
    }
    wait_all_delivered(&target, EVENTS, Duration::from_secs(120), &agent);
    let elapsed = started.elapsed();
    assert_in_order(&target, EVENTS);
    let dropped = net.dropped_packets();
    assert!(dropped > 0, "the 5 % loss rule dropped nothing");
    println!(
        "netfaults: 5 % loss + {DELAY:?} each way ({}): {EVENTS} events of 4 KiB in \
         order in {elapsed:.1?}, first one after {latency:.1?}, {dropped} packets dropped, \
         {} TCP retransmits by the agent, {} duplicates, {} reconnects",
        stage.name,
        net.agent_retransmits(),
        duplicates(&target),
        subscriptions(&agent) - 1,
    );
}

/// Silences the agent's connection to `old` (even its FIN is lost), kills it, and
/// starts the relay again on a new address, same port and log. Returns it and its
/// address.
fn move_relay(net: &Net, dir: &Path, mut old: RelayProc) -> (RelayProc, String) {
    let port = old.addr.port();
    let silenced = net.blackhole_current(&net.host_ip, port);
    assert_eq!(silenced, 1, "the agent's connection");
    old.kill();
    let new_ip = net.add_host_address(3);
    let listen = format!("{new_ip}:{port}");
    let config = write_config(dir, "new.toml", &listen, HEARTBEAT_SECS, RELAY_IDLE_SECS);
    (RelayProc::start_with(dir, &config, &[]), new_ip)
}

#[test]
fn a_relay_whose_address_changes_is_not_kept_connected_forever() {
    let Some(net) = net_or_skip("address_change") else {
        return;
    };
    const NAME: &str = "relay.hookrelay.test";
    let dir = tempfile::tempdir().expect("tmp");
    let listen = format!("{}:0", net.host_ip);
    let old = start_relay(dir.path(), &listen, HEARTBEAT_SECS, RELAY_IDLE_SECS);
    let port = old.addr.port();
    net.set_host(NAME, &net.host_ip);
    let target = target(&net, false);
    let agent = start_agent(&net, &format!("ws://{NAME}:{port}"), &target, &[]);
    for i in 0..3 {
        post(&old.base, &format!("old-{i}"));
    }
    wait_all_delivered(&target, 3, DEADLINE, &agent);

    // The relay moves: its old path goes silent, it comes back on a new address.
    let cut = Instant::now();
    let (new, new_ip) = move_relay(&net, dir.path(), old);
    let noticed = wait_noticed(&agent, cut, "the relay's old path went silent");
    // The name still gives the old address: the agent keeps retrying it, and fails.
    let three_failures = || count(&agent, "cannot reach the relay") >= 3;
    wait_until("3 failed dials", DEADLINE, three_failures, || {
        agent.stderr_text()
    });
    assert_eq!(subscriptions(&agent), 1);
    for i in 0..3 {
        post(&new.base, &format!("new-{i}"));
    }
    // The name moves to the new address (what a DNS update does).
    net.set_host(NAME, &new_ip);
    let back = wait_subscribed(&agent, 2, Instant::now(), "to the new address");
    wait_all_delivered(&target, 6, DEADLINE, &agent);
    assert_eq!(
        relay_connections(&new),
        Some(1.0),
        "the agent is on the new relay"
    );
    println!(
        "netfaults: address change: agent noticed after {noticed:.1?} (bound {:?}), {} \
         failed dials to the old address (first: {}), reached the new one {back:.1?} \
         after the name moved; {} duplicates",
        notice_bound(),
        count(&agent, "cannot reach the relay"),
        first_dial_error(&agent),
        duplicates(&target),
    );
    assert!(duplicates(&target) <= 1, "{:?}", offsets(&target));
}

/// Waits for `heartbeats` more answered heartbeats (an idle spell without events).
fn idle_spell(agent: &AgentProc, heartbeats: usize) {
    let answered = count(agent, "heartbeat: the relay answered");
    wait_until(
        &format!("{heartbeats} heartbeats across the idle spell"),
        DEADLINE,
        || count(agent, "heartbeat: the relay answered") >= answered + heartbeats,
        || agent.stderr_text(),
    );
}

#[test]
fn heartbeats_keep_the_nat_mapping_and_a_lost_mapping_is_noticed() {
    let Some(net) = net_or_skip("nat_mapping") else {
        return;
    };
    /// The router forgets an established TCP mapping idle this long.
    const MAPPING_TIMEOUT_SECS: u64 = 4;
    let dir = tempfile::tempdir().expect("tmp");
    let listen = format!("{}:0", net.host_ip);
    let relay = start_relay(dir.path(), &listen, HEARTBEAT_SECS, RELAY_IDLE_SECS);
    let port = relay.addr.port();
    let timeout_key = "net.netfilter.nf_conntrack_tcp_timeout_established";
    net.sysctl(timeout_key, &MAPPING_TIMEOUT_SECS.to_string());
    // Deliveries on fresh connections: the agent's pooled connection to the local
    // service would otherwise cross the same NAT and be flushed with the rest.
    let target = target(&net, true);
    let agent = start_agent(&net, &relay.ws_url(), &target, &[]);
    post(&relay.base, "first");
    wait_all_delivered(&target, 1, DEADLINE, &agent);
    assert_eq!(net.mappings(port), 1, "the agent's mapping in the router");

    // Idle (no events) for three mapping timeouts, observed as heartbeats answered.
    let idle_heartbeats = (3 * MAPPING_TIMEOUT_SECS / HEARTBEAT_SECS) as usize;
    idle_spell(&agent, idle_heartbeats);
    assert_eq!(
        net.mappings(port),
        1,
        "the mapping expired despite heartbeats"
    );
    let log = agent.stderr_text();
    assert!(!log.contains("disconnected"), "{log}");
    post(&relay.base, "after the idle spell");
    wait_all_delivered(&target, 2, DEADLINE, &agent);
    assert_eq!(
        subscriptions(&agent),
        1,
        "reconnected during the idle spell"
    );

    // Now the mapping is lost (a NAT reboot, or an expiry on a box with a shorter
    // timeout), and the NAT drops packets of flows it does not know.
    net.strict_nat(port);
    let cut = Instant::now();
    net.flush_mappings();
    for i in 0..3 {
        post(&relay.base, &format!("lost-mapping-{i}"));
    }
    let noticed = wait_noticed(&agent, cut, "its mapping is gone");
    let back = wait_subscribed(&agent, 2, cut, "through a new mapping");
    wait_all_delivered(&target, 5, DEADLINE, &agent);
    println!(
        "netfaults: NAT mapping (timeout {MAPPING_TIMEOUT_SECS} s): kept alive by \
         heartbeats across {idle_heartbeats} s idle; after a flush the agent noticed in \
         {noticed:.1?} (bound {:?}) and was back {back:.1?} after it; {} duplicates",
        notice_bound(),
        duplicates(&target),
    );
    assert!(duplicates(&target) <= 1, "{:?}", offsets(&target));
}
