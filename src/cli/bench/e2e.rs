//! End-to-end phase: a fixed offered rate from provider POST to arrival at the local
//! service, through the real relay, the real agent code (in process) and a local HTTP
//! service (in process).
//!
//! Each event carries its sequence number in an `x-bench-seq` header, which the relay
//! stores and the agent forwards like any other header. Send and arrival instants are
//! kept per sequence number against one monotonic clock, so latency needs no clock
//! agreement and no body parsing. The offered rate is open-loop (a timer, not "send
//! the next when the last finished"), so a slow relay shows up as latency, not as a
//! silently lower rate.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::report::{histogram, PhaseResult};
use super::target::{BenchError, Target};
use crate::agent::progress::Progress;
use crate::common::protocol::Start;

/// How long to wait for the last events after the offered load ends.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Header that carries the sequence number.
const SEQ_HEADER: &str = "x-bench-seq";
/// Events sent (and waited for) before measuring: connection set-up and first-use costs.
const WARMUP_EVENTS: u64 = 20;

fn err(message: impl std::fmt::Display) -> BenchError {
    BenchError::Phase {
        phase: "e2e",
        message: message.to_string(),
    }
}

/// Arrival times (ns since `epoch`, 0 = not yet) indexed by sequence number.
struct Arrivals {
    epoch: Instant,
    at: Vec<AtomicU64>,
    /// Sequence numbers below this are warm-up and not counted.
    measured_from: usize,
    /// Any arrival at all (the agent is delivering).
    any: AtomicU64,
    /// Arrivals of measured events.
    count: AtomicU64,
    notify: tokio::sync::Notify,
}

impl Arrivals {
    /// Slots for `total` events, the first `warmup` of them not measured.
    fn new(epoch: Instant, total: u64, warmup: u64) -> Arrivals {
        Arrivals {
            epoch,
            at: (0..total).map(|_| AtomicU64::new(0)).collect(),
            measured_from: warmup as usize,
            any: AtomicU64::new(0),
            count: AtomicU64::new(0),
            notify: tokio::sync::Notify::new(),
        }
    }

    fn record(&self, seq: usize) {
        let ns = self.epoch.elapsed().as_nanos().max(1) as u64;
        // Redeliveries keep the first arrival.
        if let Some(slot) = self.at.get(seq) {
            if slot
                .compare_exchange(0, ns, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                self.any.fetch_add(1, Ordering::AcqRel);
                if seq >= self.measured_from {
                    self.count.fetch_add(1, Ordering::AcqRel);
                }
                self.notify.notify_waiters();
            }
        }
    }

    /// Waits until `counter` reaches `n`; false on timeout.
    async fn wait_for(&self, counter: &AtomicU64, n: u64, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.notify.notified();
            if counter.load(Ordering::Acquire) >= n {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return counter.load(Ordering::Acquire) >= n;
            }
        }
    }
}

/// Posts numbered events and notes when each was sent.
struct Poster {
    client: reqwest::Client,
    target: Arc<Target>,
    body: bytes::Bytes,
    epoch: Instant,
    /// Send times (ns since `epoch`, 0 = not sent) indexed by sequence number.
    sent: Arc<Vec<AtomicU64>>,
    /// Posts the relay did not accept.
    errors: Arc<AtomicU64>,
}

impl Poster {
    fn new(
        target: &Arc<Target>,
        epoch: Instant,
        total: u64,
        body_size: usize,
    ) -> Result<Poster, BenchError> {
        let client = reqwest::Client::builder()
            .http1_only()
            .tcp_nodelay(true)
            .build()
            .map_err(err)?;
        Ok(Poster {
            client,
            target: target.clone(),
            body: bytes::Bytes::from(super::target::body(body_size)),
            epoch,
            sent: Arc::new((0..total).map(|_| AtomicU64::new(0)).collect()),
            errors: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The post of event `seq`, as a future that owns what it needs (to be spawned).
    fn post(&self, seq: u64) -> impl std::future::Future<Output = ()> + Send + 'static {
        let (client, body, sent, errors, target, epoch) = (
            self.client.clone(),
            self.body.clone(),
            self.sent.clone(),
            self.errors.clone(),
            self.target.clone(),
            self.epoch,
        );
        async move {
            let mut req = client
                .post(target.ingest_url())
                .header(SEQ_HEADER, seq.to_string())
                .header("content-type", "application/json");
            for (n, v) in target.signer.sign(&body, None) {
                req = req.header(n, v);
            }
            if let Some(slot) = sent.get(seq as usize) {
                slot.store(epoch.elapsed().as_nanos().max(1) as u64, Ordering::Release);
            }
            match req.body(body).send().await {
                Ok(r) if r.status().is_success() => {}
                _ => {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

/// The local service, recording each arrival by its sequence header.
async fn start_service(
    arrivals: &Arc<Arrivals>,
) -> Result<(String, tokio::task::JoinHandle<()>), BenchError> {
    let recorder = arrivals.clone();
    super::service::start(Duration::ZERO, move |headers| {
        let seq = headers
            .get(SEQ_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if let Some(seq) = seq {
            recorder.record(seq);
        }
    })
    .await
    .map_err(err)
}

/// Warm-up: the agent starts at the head, so an event posted before it subscribed
/// never arrives; posts one at a time until one does, then the rest of the warm-up,
/// and waits for them.
async fn warm_up(poster: &Poster, arrivals: &Arrivals) -> Result<(), BenchError> {
    let mut seq = 0u64;
    while arrivals.any.load(Ordering::Acquire) == 0 {
        if seq >= WARMUP_EVENTS {
            return Err(err(
                "the agent did not start receiving (check --token and the channel)",
            ));
        }
        poster.post(seq).await;
        seq += 1;
        arrivals
            .wait_for(&arrivals.any, 1, Duration::from_millis(500))
            .await;
    }
    // Counted before posting: the rest of the warm-up starts arriving while it is posted.
    let warm = arrivals.any.load(Ordering::Acquire) + (WARMUP_EVENTS - seq);
    for s in seq..WARMUP_EVENTS {
        poster.post(s).await;
    }
    arrivals.wait_for(&arrivals.any, warm, DRAIN_TIMEOUT).await;
    Ok(())
}

/// The offered load: events `WARMUP_EVENTS..total`, open loop at `rate` per second.
/// Returns whether all arrived before [`DRAIN_TIMEOUT`], and the time it took.
async fn offer_load(
    poster: &Poster,
    arrivals: &Arrivals,
    rate: u64,
    total: u64,
) -> (bool, Duration) {
    let measured = total - WARMUP_EVENTS;
    let progress = Progress::start("e2e", Some(measured));
    let mut tick = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    for s in WARMUP_EVENTS..total {
        tick.tick().await;
        tokio::spawn(poster.post(s));
        progress.add(1);
    }
    let all_arrived = arrivals
        .wait_for(&arrivals.count, measured, DRAIN_TIMEOUT)
        .await;
    let elapsed = started.elapsed();
    progress.finish();
    (all_arrived, elapsed)
}

/// Latencies of the measured events (send to arrival), and how many never arrived.
/// Sequence numbers of the first missing events, kept for the warning.
const MISSING_SHOWN: usize = 10;

fn latencies(
    sent: &[AtomicU64],
    arrivals: &Arrivals,
) -> (hdrhistogram::Histogram<u64>, u64, Vec<usize>) {
    let mut h = histogram();
    let mut missing = 0u64;
    let mut first_missing = Vec::new();
    for (s, sent_at) in sent.iter().enumerate().skip(arrivals.measured_from) {
        let tx = sent_at.load(Ordering::Acquire);
        let rx = arrivals.at.get(s).map_or(0, |a| a.load(Ordering::Acquire));
        if tx == 0 || rx == 0 {
            missing += 1;
            if first_missing.len() < MISSING_SHOWN {
                first_missing.push(s);
            }
        } else {
            let _ = h.record((rx.saturating_sub(tx) / 1000).max(1));
        }
    }
    (h, missing, first_missing)
}

pub async fn run(
    target: &Arc<Target>,
    rate: u64,
    duration_secs: u64,
    body_size: usize,
) -> Result<PhaseResult, BenchError> {
    let rate = rate.max(1);
    let total = WARMUP_EVENTS + rate * duration_secs.max(1);
    let epoch = Instant::now();
    let arrivals = Arc::new(Arrivals::new(epoch, total, WARMUP_EVENTS));
    let (service_url, service) = start_service(&arrivals).await?;
    // A fresh group starting at the head: earlier events in the channel are not ours.
    let (stop, agent) =
        super::target::spawn_agent(target, service_url, "bench-e2e", Start::Latest, 1);
    let poster = Poster::new(target, epoch, total, body_size)?;
    if let Err(e) = warm_up(&poster, &arrivals).await {
        stop.trigger();
        return Err(e);
    }
    let (all_arrived, elapsed) = offer_load(&poster, &arrivals, rate, total).await;
    stop.trigger();
    let _ = agent.await;
    service.abort();

    let (h, missing, first_missing) = latencies(&poster.sent, &arrivals);
    if !all_arrived {
        // Refused posts never arrive; the rest were accepted and are late or lost.
        tracing::warn!(
            missing,
            refused = poster.errors.load(Ordering::Relaxed),
            first = ?first_missing,
            "some events did not arrive before the drain timeout"
        );
    }
    let measured = total - WARMUP_EVENTS;
    Ok(PhaseResult::new(
        "e2e",
        measured - missing,
        missing,
        elapsed,
        (measured - missing) * body_size as u64,
        Some(&h),
    ))
}
