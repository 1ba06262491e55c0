//! Ingest metrics: requests by channel, result and status, their latency, refused
//! signatures by reason, and the size of each group commit.
//!
//! `channel` is a configured channel name or `_unknown`; `result` is `ok`,
//! `duplicate` or one of the spec's stable error codes; `reason` is a verification
//! error code. None is text a client chooses, so the series count is bounded.

use std::time::Duration;

use prometheus::{Histogram, HistogramVec, IntCounterVec, Registry};

use super::build;

/// Upper bounds of the ingest latency histogram, in seconds: the fsync dominates, so
/// the buckets are dense from 1 ms to 1 s and sparse up to the append timeout.
pub const INGEST_SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Upper bounds of the group-commit size histogram, in operations per flush.
pub const BATCH_SIZE_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0, 16384.0,
];

/// The ingest families.
pub struct IngestMetrics {
    /// Requests by channel, result and HTTP status.
    pub requests: IntCounterVec,
    /// Time from the request's routing to its response, by channel and result.
    pub duration: HistogramVec,
    /// Refused signatures by channel and reason.
    pub verification_failures: IntCounterVec,
    /// Operations per group commit (unlabelled: one writer per log).
    pub batch_size: Histogram,
}

impl IngestMetrics {
    /// Registers the families in `registry`.
    pub fn new(registry: &Registry) -> IngestMetrics {
        IngestMetrics {
            requests: build::counter_vec(
                registry,
                "hookrelay_ingest_requests_total",
                "Ingest requests by channel, result (ok, duplicate or the error code) and HTTP status",
                &["channel", "result", "status"],
            ),
            duration: build::histogram_vec(
                registry,
                "hookrelay_ingest_duration_seconds",
                "Time from a webhook's arrival to the relay's answer, by channel and result",
                &["channel", "result"],
                INGEST_SECONDS_BUCKETS,
            ),
            verification_failures: build::counter_vec(
                registry,
                "hookrelay_verification_failures_total",
                "Webhooks refused by the signature or timestamp check, by channel and reason",
                &["channel", "reason"],
            ),
            batch_size: build::histogram(
                registry,
                "hookrelay_commit_batch_size",
                "Operations (appends and cursor writes) made durable by one group commit",
                BATCH_SIZE_BUCKETS,
            ),
        }
    }

    /// Counts one answered ingest request.
    pub fn answered(&self, channel: &str, result: &str, status: u16, took: Duration) {
        let status = status.to_string();
        self.requests
            .with_label_values(&[channel, result, status.as_str()])
            .inc();
        self.duration
            .with_label_values(&[channel, result])
            .observe(took.as_secs_f64());
    }

    /// Counts one refused signature; `reason` is the verifier's stable error code.
    pub fn verification_failed(&self, channel: &str, reason: &'static str) {
        self.verification_failures
            .with_label_values(&[channel, reason])
            .inc();
    }

    /// Creates the series of `channel` at zero, so that the first request or
    /// refusal is an increase Prometheus can see (`increase()` needs a sample before).
    pub fn init_channel(&self, channel: &str) {
        use crate::common::verify::VerifyError;
        let reasons = [
            VerifyError::MissingSignature,
            VerifyError::InvalidSignature,
            VerifyError::TimestampOutOfTolerance,
        ];
        for reason in reasons {
            let _ = self
                .verification_failures
                .with_label_values(&[channel, reason.code()]);
        }
        let _ = self.requests.with_label_values(&[channel, "ok", "200"]);
    }

    /// The callback storage calls with each group commit's size.
    pub fn batch_observer(&self) -> crate::storage::types::BatchSizeFn {
        let h = self.batch_size.clone();
        std::sync::Arc::new(move |size| h.observe(size as f64))
    }
}
