//! Background housekeeping of a running relay: retention and dedup expiry.
//!
//! Both are slow scans of the log (the storage backend runs them where they do not
//! hold up the async workers), on a timer, and never on the ingest path. A failed pass is logged and retried on the next tick;
//! nothing here can lose an event that retention would keep.

use std::sync::Arc;
use std::time::Duration;

use crate::common::config::ChannelConfig;
use crate::relay::state::Relay;
use crate::storage::Limits;

/// How often retention runs per channel.
pub const RETENTION_INTERVAL: Duration = Duration::from_secs(5);
/// How often expired dedup ids are swept.
pub const DEDUP_SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// The log's limits for a channel's configured retention.
pub fn limits(channel: &ChannelConfig) -> Limits {
    Limits {
        max_age_ms: channel
            .retention
            .max_age_secs
            .map(|s| s.saturating_mul(1000)),
        max_events: channel.retention.max_events,
        max_bytes: channel.retention.max_bytes,
    }
}

/// Runs until the task is aborted.
pub async fn run(relay: Arc<Relay>) {
    let mut retention = tokio::time::interval(RETENTION_INTERVAL);
    let mut dedup = tokio::time::interval(DEDUP_SWEEP_INTERVAL);
    retention.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    dedup.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = retention.tick() => enforce_all(&relay).await,
            _ = dedup.tick() => expire_dedup(&relay).await,
        }
    }
}

async fn enforce_all(relay: &Relay) {
    let now = crate::common::time::now_unix_ms();
    for channel in &relay.config.channels {
        let limits = limits(channel);
        if limits == Limits::default() {
            continue;
        }
        match relay
            .log
            .enforce_retention(&channel.name, limits, now)
            .await
        {
            Ok(pass) if pass.events > 0 => {
                tracing::debug!(channel = %channel.name, deleted = pass.events, earliest = pass.earliest, "retention pass")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(channel = %channel.name, error = %e, "retention pass failed"),
        }
    }
}

async fn expire_dedup(relay: &Relay) {
    let windows = relay
        .config
        .channels
        .iter()
        .map(|c| (c.name.clone(), c.dedup_window.as_millis() as u64))
        .collect();
    let swept = relay
        .log
        .expire_dedup(crate::common::time::now_unix_ms(), windows)
        .await;
    match swept {
        Ok(n) if n > 0 => tracing::debug!(removed = n, "expired dedup ids"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "dedup sweep failed"),
    }
}
