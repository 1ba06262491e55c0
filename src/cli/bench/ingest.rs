//! Ingest phase: N signed webhooks, as fast as the relay acknowledges them.
//!
//! `concurrency` workers share one keep-alive client and each keeps one request in
//! flight, like `wrk -c`. Every 200 counts; anything else is an error. Latency is the
//! time to the relay's acknowledgement, which comes after the fsync.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::report::{histogram, PhaseResult};
use super::Target;
use crate::agent::progress::Progress;

pub async fn run(
    target: &Target,
    count: u64,
    concurrency: u64,
    body_size: usize,
) -> Result<PhaseResult, super::BenchError> {
    let client = reqwest::Client::builder()
        .http1_only()
        .pool_max_idle_per_host(concurrency as usize)
        .build()
        .map_err(|e| super::BenchError::Setup(e.to_string()))?;
    let body = bytes::Bytes::from(super::body(body_size));
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let progress = Progress::start("ingest", Some(count));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (client, body, next, errors, progress) = (
            client.clone(),
            body.clone(),
            next.clone(),
            errors.clone(),
            progress.clone(),
        );
        let url = target.ingest_url();
        let signer = target.signer.clone();
        workers.push(tokio::spawn(async move {
            let mut h = histogram();
            while next.fetch_add(1, Ordering::Relaxed) < count {
                let mut req = client.post(&url).header("content-type", "application/json");
                for (n, v) in signer.sign(&body, None) {
                    req = req.header(n, v);
                }
                let t0 = Instant::now();
                match req.body(body.clone()).send().await {
                    Ok(resp) if resp.status().is_success() => {
                        let _ = resp.bytes().await;
                        let _ = h.record(t0.elapsed().as_micros().max(1) as u64);
                    }
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                progress.add(1);
            }
            h
        }));
    }
    let mut h = histogram();
    for w in workers {
        if let Ok(part) = w.await {
            let _ = h.add(&part);
        }
    }
    let elapsed = started.elapsed();
    progress.finish();
    let errors = errors.load(Ordering::Relaxed);
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
