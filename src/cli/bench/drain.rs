//! Drain phase: how fast an agent works through a backlog.
//!
//! It posts `count` events while no agent of a fresh group is connected, then starts the
//! real agent code (in process) at the first of them and measures (a) the time from the
//! agent's start — dialling included — to the first event at the local service, and
//! (b) the rate at which the backlog then arrives. The local service answers after
//! `service_delay` (0 = a fast target; 20 ms models a slow one), and `max_in_flight`
//! is the agent's window, as with `hookrelay agent --max-in-flight`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::report::PhaseResult;
use super::target::{BenchError, Target};
use crate::common::protocol::Start;

/// Longest wait for the whole backlog to arrive.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(300);

fn err(message: impl std::fmt::Display) -> BenchError {
    BenchError::Phase {
        phase: "drain",
        message: message.to_string(),
    }
}

/// Counts deliveries; first and last arrival times.
#[derive(Default)]
struct Counter {
    /// Arrivals to wait for: the waiter is woken once, when they are all in (a wake-up
    /// per arrival would spend the CPU the drain is measured on).
    expected: u64,
    arrived: AtomicU64,
    first: Mutex<Option<Instant>>,
    last: Mutex<Option<Instant>>,
    notify: tokio::sync::Notify,
}

impl Counter {
    fn arrive(&self) {
        let now = Instant::now();
        if let Ok(mut f) = self.first.lock() {
            f.get_or_insert(now);
        }
        if let Ok(mut l) = self.last.lock() {
            *l = Some(now);
        }
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.expected {
            self.notify.notify_waiters();
        }
    }

    /// Waits until every expected event arrived, or `timeout`.
    async fn wait_all(&self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.notify.notified();
            if self.arrived.load(Ordering::Acquire) >= self.expected {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return;
            }
        }
    }

    /// The phase's result: the backlog's arrival rate, from the first arrival to the
    /// last, and the time from `started` (the agent's start) to the first.
    fn result(&self, started: Instant, body_size: usize) -> Result<PhaseResult, BenchError> {
        let arrived = self.arrived.load(Ordering::Acquire);
        let first_at = self.first.lock().ok().and_then(|f| *f);
        let last_at = self.last.lock().ok().and_then(|l| *l);
        let (Some(first_at), Some(last_at)) = (first_at, last_at) else {
            return Err(err("no event arrived (check --token)"));
        };
        let draining = last_at
            .duration_since(first_at)
            .max(Duration::from_micros(1));
        let mut result = PhaseResult::new(
            "drain",
            arrived,
            self.expected.saturating_sub(arrived),
            draining,
            arrived * body_size as u64,
            None,
        );
        result.first_event_ms = Some(first_at.duration_since(started).as_secs_f64() * 1000.0);
        Ok(result)
    }
}

/// The offset the relay gave one synchronously posted event.
async fn post_one(target: &Target, body: &[u8]) -> Result<u64, BenchError> {
    let client = reqwest::Client::new();
    let mut req = client
        .post(target.ingest_url())
        .header("content-type", "application/json");
    for (n, v) in target.signer.sign(body, None) {
        req = req.header(n, v);
    }
    let resp = req.body(body.to_vec()).send().await.map_err(err)?;
    let bytes = resp.bytes().await.map_err(err)?;
    let json: serde_json::Value = serde_json::from_slice(&bytes).map_err(err)?;
    json.get("offset")
        .and_then(|o| o.as_u64())
        .ok_or_else(|| err(format!("unexpected answer {json}")))
}

pub async fn run(
    target: &Arc<Target>,
    count: u64,
    concurrency: u64,
    body_size: usize,
    max_in_flight: u32,
    service_delay: Duration,
) -> Result<PhaseResult, BenchError> {
    // The backlog: offsets first+1 ..= first+count (nothing else posts meanwhile).
    let first = post_one(target, &super::target::body(body_size)).await?;
    let ingest = super::ingest::run(target, count, concurrency, body_size).await?;
    if ingest.errors > 0 {
        return Err(err(format!("{} backlog posts failed", ingest.errors)));
    }
    let counter = Arc::new(Counter {
        expected: count,
        ..Counter::default()
    });
    let recorder = counter.clone();
    let (service_url, service) = super::service::start(service_delay, move |_| recorder.arrive())
        .await
        .map_err(err)?;
    let started = Instant::now();
    let (stop, agent) = super::target::spawn_agent(
        target,
        service_url,
        "bench-drain",
        Start::Offset(first + 1),
        max_in_flight,
    );
    counter.wait_all(DRAIN_TIMEOUT).await;
    stop.trigger();
    let _ = agent.await;
    service.abort();
    counter.result(started, body_size)
}
