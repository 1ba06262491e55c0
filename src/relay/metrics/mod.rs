//! Prometheus metrics, through the `prometheus` crate.
//!
//! Labels are only ever configured channel names, consumer group names (bounded, see
//! [`groups`]) and fixed codes, never values a client controls, so the series count is
//! bounded by the config. Nothing secret is a label or a value (guarantee 7).
//!
//! Handlers bump counters as things happen ([`ingest`], the stream's counters here);
//! figures that storage or the hub already keep ([`storage`], [`groups`]) are read at
//! scrape time, under one lock so that concurrent scrapes never see a family halfway
//! rebuilt.

pub mod build;
pub mod groups;
pub mod ingest;
pub mod storage;

use prometheus::{Encoder, IntCounterVec, IntGauge, IntGaugeVec, Registry, TextEncoder};

use crate::relay::groups::GroupMembers;
use groups::GroupMetrics;
use ingest::IngestMetrics;
use storage::{StorageMetrics, StorageView};

/// The relay's registry and its metric families.
pub struct Metrics {
    registry: Registry,
    /// Ingest requests, latency, verification failures and group-commit sizes.
    pub ingest: IngestMetrics,
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
    groups: GroupMetrics,
    storage: StorageMetrics,
    /// Held while a scrape rebuilds and encodes the scrape-time families.
    scrape: tokio::sync::Mutex<()>,
}

/// What a scrape reads: the storage view plus the hub's groups.
pub struct ScrapeInputs<'a> {
    /// The log, channels, body budget and readiness.
    pub storage: StorageView<'a>,
    /// The hub's groups with their members.
    pub members: Vec<GroupMembers>,
    /// The time now, unix ms (for lag in seconds).
    pub now_ms: u64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric at zero.
    pub fn new() -> Metrics {
        let r = Registry::new();
        let connections =
            build::gauge(&r, "hookrelay_stream_connections", "Open agent connections");
        Metrics {
            ingest: IngestMetrics::new(&r),
            delivered: build::counter_vec(
                &r,
                "hookrelay_events_delivered_total",
                "Events sent to agents",
                &["channel"],
            ),
            acked: build::counter_vec(
                &r,
                "hookrelay_events_acked_total",
                "Events acknowledged by agents",
                &["channel"],
            ),
            dead_lettered: build::counter_vec(
                &r,
                "hookrelay_events_dead_lettered_total",
                "Events dead-lettered by agents",
                &["channel"],
            ),
            connections,
            subscriptions: build::gauge_vec(
                &r,
                "hookrelay_stream_subscriptions",
                "Subscriptions by state",
                &["state"],
            ),
            groups: GroupMetrics::new(&r),
            storage: StorageMetrics::new(&r),
            scrape: tokio::sync::Mutex::new(()),
            registry: r,
        }
    }

    /// Creates the per-channel series at zero for the configured channels, so that
    /// alert rules built on `increase()` see the first event (a series that appears
    /// at 1 has no earlier sample to increase from).
    pub fn init_channels(&self, channels: &[String]) {
        for c in channels {
            self.ingest.init_channel(c);
            for family in [&self.delivered, &self.acked, &self.dead_lettered] {
                let _ = family.with_label_values(&[c.as_str()]);
            }
        }
    }

    /// The text exposition, with storage and group figures read now.
    pub async fn render(&self, inputs: ScrapeInputs<'_>) -> String {
        let _one_at_a_time = self.scrape.lock().await;
        let v = &inputs.storage;
        self.storage.update(v);
        self.groups
            .update(v.log, &inputs.members, v.channels, inputs.now_ms)
            .await;
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}
