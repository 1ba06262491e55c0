//! Numbers for the console's overview and charts:
//!
//! ```text
//! GET /v1/overview   per channel: head, scheme, ingest over the last minute, verification
//!                    failures, and per group cursor, lag, dead letters and connected agents
//! GET /v1/stats      per channel: the chart rings (per second and per minute)
//! ```
//!
//! [`run`] fills the rings: once a second it reads each channel's head and its groups'
//! durable cursors, and records what moved. Delivery latency is sampled on each
//! cursor move as now − the received time of the event the cursor reached; it trails
//! the real ack by at most one sample and one group commit.
//!
//! A quiet channel (its head did not move and every cursor is at it) has nothing to
//! acknowledge, so its cursors are read again only every [`QUIET_READ_SECS`]: reading
//! every channel's groups from the log each second was the relay's largest cost when
//! idle with many channels (callgrind, 1,000 channels: 247 of 392 million instructions
//! in 30 s at 20 events/s). What only those reads see on a quiet channel, an operator's
//! reset or a new group, reaches the charts that much later; `/v1/overview` always
//! reads afresh.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::relay::api_error::{json_ok, ApiError};
use crate::relay::auth::{authorize, Credentials};
use crate::relay::console::event::unavailable;
use crate::relay::console::rings::Bucket;
use crate::relay::groups::presence::AgentView;
use crate::relay::state::Relay;

/// How often [`run`] samples.
pub const SAMPLE_INTERVAL_SECS: u64 = 1;

/// How often [`run`] reads the cursors of a quiet channel (see the module doc).
pub const QUIET_READ_SECS: u64 = 10;

#[derive(Debug, Serialize)]
struct GroupOverview {
    name: String,
    cursor: u64,
    lag: u64,
    dead_letters: usize,
    agents: Vec<AgentView>,
}

/// `GET /v1/stats`.
pub fn stats(relay: &Relay, creds: &Credentials) -> Result<warp::reply::Response, ApiError> {
    authorize(relay, creds)?;
    let channels: Vec<_> = relay
        .config
        .channels
        .iter()
        .map(|c| {
            let s = relay.rings.series(&c.name);
            serde_json::json!({"name": c.name, "seconds": s.seconds, "minutes": s.minutes})
        })
        .collect();
    Ok(json_ok(&serde_json::json!({
        "now": crate::common::time::now_unix_ms() / 1000,
        "sample_secs": SAMPLE_INTERVAL_SECS,
        "channels": channels,
    })))
}

/// `GET /v1/overview`.
pub async fn overview(
    relay: &Relay,
    creds: &Credentials,
) -> Result<warp::reply::Response, ApiError> {
    authorize(relay, creds)?;
    let failures = verification_failures(relay);
    let now = crate::common::time::now_unix_ms() / 1000;
    let mut out = Vec::new();
    for c in &relay.config.channels {
        let head = relay.log.head(&c.name);
        let recent: u64 = relay
            .rings
            .series(&c.name)
            .seconds
            .iter()
            .filter(|b| b.t + 60 > now)
            .map(|b| b.ingested)
            .sum();
        out.push(serde_json::json!({
            "name": c.name,
            "scheme": c.verifier.kind.as_str(),
            "head": head,
            "earliest": relay.log.earliest(&c.name).map_err(unavailable)?,
            "ingested_last_minute": recent,
            "verification_failures": failures.get(&c.name).copied().unwrap_or(0),
            "groups": groups(relay, &c.name, head).await?,
        }));
    }
    Ok(json_ok(&serde_json::json!({ "channels": out })))
}

async fn groups(relay: &Relay, channel: &str, head: u64) -> Result<Vec<GroupOverview>, ApiError> {
    let mut agents: BTreeMap<String, Vec<AgentView>> = BTreeMap::new();
    for a in relay.hub.agents(channel) {
        agents.entry(a.group.clone()).or_default().push(a);
    }
    let mut cursors: BTreeMap<String, u64> = relay
        .log
        .groups(channel)
        .await
        .map_err(unavailable)?
        .into_iter()
        .collect();
    for g in agents.keys() {
        cursors.entry(g.clone()).or_insert(0);
    }
    let mut out = Vec::new();
    for (name, cursor) in cursors {
        let dead_letters = relay
            .log
            .dead_letter_count(channel, &name)
            .await
            .map_err(unavailable)?;
        out.push(GroupOverview {
            agents: agents.remove(&name).unwrap_or_default(),
            lag: head.saturating_sub(cursor),
            name,
            cursor,
            dead_letters,
        });
    }
    Ok(out)
}

/// Verification failures per channel since start: the sum over reasons of
/// `hookrelay_verification_failures_total` (read without creating series, so
/// `/metrics` is unchanged).
fn verification_failures(relay: &Relay) -> HashMap<String, u64> {
    use prometheus::core::Collector;
    let mut out = HashMap::new();
    for family in relay.metrics.ingest.verification_failures.collect() {
        for m in family.get_metric() {
            let channel = m
                .get_label()
                .iter()
                .find(|l| l.name() == "channel")
                .map(|l| l.value().to_string());
            if let Some(ch) = channel {
                *out.entry(ch).or_insert(0) += m.get_counter().get_value() as u64;
            }
        }
    }
    out
}

#[derive(Default)]
struct Seen {
    head: u64,
    cursors: HashMap<String, u64>,
    /// Samples taken since the cursors were last read.
    since_read: u64,
}

impl Seen {
    /// Whether the sample at `head` must read the channel's cursors: unless the head
    /// stayed put and no cursor is behind it (nothing to acknowledge), and the last read
    /// is less than [`QUIET_READ_SECS`] old.
    fn must_read(&self, head: u64) -> bool {
        head != self.head
            || self.cursors.values().any(|&c| c < head)
            || (self.since_read + 1) * SAMPLE_INTERVAL_SECS >= QUIET_READ_SECS
    }
}

/// Samples every channel into the rings each second until the relay stops; does
/// nothing without an admin token (no console, no charts).
pub async fn run(relay: Arc<Relay>) {
    if relay.config.server.admin_token.is_none() {
        return;
    }
    let mut seen: HashMap<String, Seen> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs(SAMPLE_INTERVAL_SECS));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = relay.shutdown.wait() => return,
        }
        for c in &relay.config.channels {
            let first = !seen.contains_key(&c.name);
            if first {
                seen.insert(c.name.clone(), Seen::default());
            }
            let Some(s) = seen.get_mut(&c.name) else {
                continue;
            };
            let bucket = sample(&relay, &c.name, s, first).await;
            relay.rings.record(&c.name, bucket);
        }
    }
}

async fn sample(relay: &Relay, channel: &str, seen: &mut Seen, first: bool) -> Bucket {
    let now_ms = crate::common::time::now_unix_ms();
    let head = relay.log.head(channel);
    if !first && !seen.must_read(head) {
        // Quiet: nothing ingested, nothing to deliver, every cursor at the head.
        seen.since_read += 1;
        return Bucket {
            t: now_ms / 1000,
            ..Bucket::default()
        };
    }
    seen.since_read = 0;
    let mut b = Bucket {
        t: now_ms / 1000,
        ingested: if first {
            0
        } else {
            head.saturating_sub(seen.head)
        },
        ..Bucket::default()
    };
    seen.head = head;
    for (group, cursor) in relay.log.groups(channel).await.unwrap_or_default() {
        let before = seen.cursors.insert(group, cursor).unwrap_or(cursor);
        b.lag = b.lag.max(head.saturating_sub(cursor));
        if first || cursor <= before {
            continue;
        }
        b.delivered += cursor - before;
        if let Ok(Some(r)) = relay.log.get(channel, cursor).await {
            b.latency_ms_sum += now_ms.saturating_sub(r.received_at_ms);
            b.latency_count += 1;
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quiet_channel_is_read_again_only_after_a_while_and_a_moving_one_always() {
        let mut seen = Seen {
            head: 5,
            cursors: [("g".to_string(), 5)].into(),
            since_read: 0,
        };
        assert!(!seen.must_read(5), "head still, every cursor at it: quiet");
        assert!(seen.must_read(6), "the head moved");
        seen.since_read = QUIET_READ_SECS / SAMPLE_INTERVAL_SECS - 1;
        assert!(seen.must_read(5), "quiet, but the last read is old enough");
        seen.since_read = 0;
        seen.cursors.insert("h".to_string(), 3);
        assert!(seen.must_read(5), "a group is behind: its cursor may move");
        let empty = Seen {
            head: 5,
            ..Seen::default()
        };
        assert!(!empty.must_read(5), "no groups and no new events");
    }
}
