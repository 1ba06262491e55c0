//! Ingest phase: N signed webhooks, as fast as the relay acknowledges them.
//!
//! `concurrency` workers share one keep-alive client and each keeps one request in
//! flight, like `wrk -c`. Every 200 counts; anything else is an error. Latency is the
//! time to the relay's acknowledgement, which comes after the fsync.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::report::{histogram, PhaseResult};
use hdrhistogram::Histogram;

use super::target::{BenchError, Signer, Target};
use crate::agent::progress::Progress;

/// What every worker shares.
#[derive(Clone)]
struct Shared {
    client: reqwest::Client,
    url: String,
    signer: Signer,
    body: bytes::Bytes,
    /// The next request number to take; workers stop at `count`.
    next: Arc<AtomicU64>,
    count: u64,
    errors: Arc<AtomicU64>,
    progress: Progress,
}

/// One worker: one request in flight at a time until `count` are taken; returns the
/// latencies of its successful requests.
async fn worker(w: Shared) -> Histogram<u64> {
    let mut h = histogram();
    while w.next.fetch_add(1, Ordering::Relaxed) < w.count {
        let mut req = w
            .client
            .post(&w.url)
            .header("content-type", "application/json");
        for (n, v) in w.signer.sign(&w.body, None) {
            req = req.header(n, v);
        }
        let t0 = Instant::now();
        match req.body(w.body.clone()).send().await {
            Ok(resp) if resp.status().is_success() => {
                let _ = resp.bytes().await;
                let _ = h.record(t0.elapsed().as_micros().max(1) as u64);
            }
            _ => {
                w.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        w.progress.add(1);
    }
    h
}

pub async fn run(
    target: &Target,
    count: u64,
    concurrency: u64,
    body_size: usize,
) -> Result<PhaseResult, BenchError> {
    let client = reqwest::Client::builder()
        .http1_only()
        .pool_max_idle_per_host(concurrency as usize)
        .build()
        .map_err(|e| BenchError::Setup(e.to_string()))?;
    let shared = Shared {
        client,
        url: target.ingest_url(),
        signer: target.signer.clone(),
        body: bytes::Bytes::from(super::target::body(body_size)),
        next: Arc::new(AtomicU64::new(0)),
        count,
        errors: Arc::new(AtomicU64::new(0)),
        progress: Progress::start("ingest", Some(count)),
    };
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency.max(1))
        .map(|_| tokio::spawn(worker(shared.clone())))
        .collect();
    let mut h = histogram();
    for w in workers {
        if let Ok(part) = w.await {
            let _ = h.add(&part);
        }
    }
    let elapsed = started.elapsed();
    shared.progress.finish();
    let errors = shared.errors.load(Ordering::Relaxed);
    let ok = count.saturating_sub(errors);
    Ok(PhaseResult::new(
        "ingest",
        ok,
        errors,
        elapsed,
        ok * body_size as u64,
        Some(&h),
    ))
}
