//! Log and storage figures, read at scrape time from the backend's counters (which
//! storage keeps as plain atomics, free of any metrics library) and set here.

use std::sync::atomic::Ordering;

use prometheus::{Counter, IntCounter, IntGauge, IntGaugeVec, Registry};

use super::build;
use crate::storage::Storage;

/// The storage families.
pub struct StorageMetrics {
    appended: IntCounter,
    flushes: IntCounter,
    flush_seconds: Counter,
    failures: IntCounter,
    retention_removed: IntCounter,
    /// The historical name of `storage_failed`, kept for dashboards that use it.
    log_storage_failed: IntGauge,
    storage_failed: IntGauge,
    bytes: IntGauge,
    ready: IntGauge,
    inflight_body_bytes: IntGauge,
    head: IntGaugeVec,
}

/// What a scrape reads besides the log.
pub struct StorageView<'a> {
    /// The log.
    pub log: &'a dyn Storage,
    /// Configured channel names (the only `channel` labels).
    pub channels: &'a [String],
    /// Request body bytes held now.
    pub inflight_body_bytes: u64,
    /// Whether `/readyz` would answer 200 now.
    pub ready: bool,
}

impl StorageMetrics {
    /// Registers the families in `registry`.
    pub fn new(r: &Registry) -> StorageMetrics {
        StorageMetrics {
            appended: build::counter(r, "hookrelay_log_appended_total", "Events durably appended"),
            flushes: build::counter(r, "hookrelay_log_flushes_total", "Group commits (one flush each)"),
            flush_seconds: build::float_counter(r, "hookrelay_log_flush_seconds_total", "Time spent applying and flushing batches"),
            failures: build::counter(r, "hookrelay_log_failures_total", "Failed batches (answered 503)"),
            retention_removed: build::counter(r, "hookrelay_retention_removed_total", "Events deleted by retention"),
            log_storage_failed: build::gauge(r, "hookrelay_log_storage_failed", "1 after a write to the log failed (writes refused until restart); same as hookrelay_storage_failed"),
            storage_failed: build::gauge(r, "hookrelay_storage_failed", "1 after a write to the log failed (writes refused until restart)"),
            bytes: build::gauge(r, "hookrelay_storage_bytes", "Bytes of the data directory (0 when the backend keeps no data on this machine, as JetStream)"),
            ready: build::gauge(r, "hookrelay_ready", "1 when /readyz answers 200 (storage writable), else 0"),
            inflight_body_bytes: build::gauge(r, "hookrelay_inflight_body_bytes", "Request body bytes held now (max_inflight_body_bytes bounds it)"),
            head: build::gauge_vec(r, "hookrelay_channel_head", "Last durable offset per channel", &["channel"]),
        }
    }

    /// Sets every family from the backend's figures now.
    pub fn update(&self, v: &StorageView<'_>) {
        let s = v.log.stats();
        build::raise_to(&self.appended, s.appended.load(Ordering::Relaxed));
        build::raise_to(&self.flushes, s.batches.load(Ordering::Relaxed));
        let micros = s.flush_micros.load(Ordering::Relaxed);
        build::raise_float_to(&self.flush_seconds, micros as f64 / 1e6);
        build::raise_to(&self.failures, s.failures.load(Ordering::Relaxed));
        let removed = s.retention_removed.load(Ordering::Relaxed);
        build::raise_to(&self.retention_removed, removed);
        let failed = i64::from(s.storage_failed.load(Ordering::Relaxed));
        self.log_storage_failed.set(failed);
        self.storage_failed.set(failed);
        let bytes = v.log.disk_bytes().unwrap_or(0);
        self.bytes.set(i64::try_from(bytes).unwrap_or(i64::MAX));
        self.ready.set(i64::from(v.ready));
        let inflight = i64::try_from(v.inflight_body_bytes).unwrap_or(i64::MAX);
        self.inflight_body_bytes.set(inflight);
        for c in v.channels {
            let head = i64::try_from(v.log.head(c)).unwrap_or(i64::MAX);
            self.head.with_label_values(&[c.as_str()]).set(head);
        }
    }
}
