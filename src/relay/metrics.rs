//! Prometheus metrics.
//!
//! Labels are only ever configured channel names and fixed result codes, never values
//! a client controls, so the series count is bounded by the config. Nothing secret is
//! a label or a value (guarantee 7).

use std::fmt::Write;
use std::sync::atomic::Ordering;

use prometheus::{Encoder, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder};

use crate::storage::Storage;

/// The relay's Prometheus registry and the counters handlers bump; log and head
/// figures are read from storage at scrape time instead.
pub struct Metrics {
    registry: Registry,
    /// Ingest requests by channel and result (`ok`, `duplicate` or an error code).
    pub ingest: IntCounterVec,
    /// Events sent to agents by channel.
    pub delivered: IntCounterVec,
    /// Acks received from agents by channel.
    pub acked: IntCounterVec,
    /// Dead letters recorded by channel.
    pub dead_lettered: IntCounterVec,
    /// Open agent connections.
    pub connections: IntGauge,
    /// Active and standby subscriptions.
    pub subscriptions: IntGaugeVec,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|_| unreachable!("metric definitions are constant and valid"));
    let _ = registry.register(Box::new(c.clone()));
    c
}

impl Metrics {
    /// A fresh registry with every metric at zero.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let ingest = counter(
            &registry,
            "hookrelay_ingest_requests_total",
            "Ingest requests by channel and result",
            &["channel", "result"],
        );
        let delivered = counter(
            &registry,
            "hookrelay_events_delivered_total",
            "Events sent to agents",
            &["channel"],
        );
        let acked = counter(
            &registry,
            "hookrelay_events_acked_total",
            "Events acknowledged by agents",
            &["channel"],
        );
        let dead_lettered = counter(
            &registry,
            "hookrelay_events_dead_lettered_total",
            "Events dead-lettered by agents",
            &["channel"],
        );
        let connections = IntGauge::new("hookrelay_stream_connections", "Open agent connections")
            .unwrap_or_else(|_| unreachable!("valid metric"));
        let _ = registry.register(Box::new(connections.clone()));
        let subscriptions = IntGaugeVec::new(
            Opts::new("hookrelay_stream_subscriptions", "Subscriptions by state"),
            &["state"],
        )
        .unwrap_or_else(|_| unreachable!("valid metric"));
        let _ = registry.register(Box::new(subscriptions.clone()));
        Metrics {
            registry,
            ingest,
            delivered,
            acked,
            dead_lettered,
            connections,
            subscriptions,
        }
    }

    /// The text exposition, with log counters and per-channel heads read at scrape time.
    /// `inflight_body_bytes` is the in-flight body budget's use now.
    pub fn render(
        &self,
        log: &dyn Storage,
        channels: &[String],
        inflight_body_bytes: u64,
    ) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        let mut out = String::from_utf8(buf).unwrap_or_default();
        let s = log.stats();
        let _ = writeln!(out, "# HELP hookrelay_log_appended_total Events durably appended\n# TYPE hookrelay_log_appended_total counter\nhookrelay_log_appended_total {}", s.appended.load(Ordering::Relaxed));
        let _ = writeln!(out, "# HELP hookrelay_log_flushes_total Group commits (one flush each)\n# TYPE hookrelay_log_flushes_total counter\nhookrelay_log_flushes_total {}", s.batches.load(Ordering::Relaxed));
        let _ = writeln!(out, "# HELP hookrelay_log_flush_seconds_total Time spent applying and flushing batches\n# TYPE hookrelay_log_flush_seconds_total counter\nhookrelay_log_flush_seconds_total {}", s.flush_micros.load(Ordering::Relaxed) as f64 / 1e6);
        let _ = writeln!(out, "# HELP hookrelay_log_failures_total Failed batches (answered 503)\n# TYPE hookrelay_log_failures_total counter\nhookrelay_log_failures_total {}", s.failures.load(Ordering::Relaxed));
        let _ = writeln!(out, "# HELP hookrelay_log_storage_failed 1 after a write to the log failed (writes refused until restart)\n# TYPE hookrelay_log_storage_failed gauge\nhookrelay_log_storage_failed {}", u8::from(s.storage_failed.load(Ordering::Relaxed)));
        let _ = writeln!(out, "# HELP hookrelay_inflight_body_bytes Request body bytes held now (max_inflight_body_bytes bounds it)\n# TYPE hookrelay_inflight_body_bytes gauge\nhookrelay_inflight_body_bytes {inflight_body_bytes}");
        let _ = writeln!(out, "# HELP hookrelay_channel_head Last durable offset per channel\n# TYPE hookrelay_channel_head gauge");
        for c in channels {
            let _ = writeln!(
                out,
                "hookrelay_channel_head{{channel=\"{c}\"}} {}",
                log.head(c)
            );
        }
        out
    }
}
