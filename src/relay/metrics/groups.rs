//! Per (channel, group) figures, computed at scrape time from the log (cursor, head,
//! the oldest unacknowledged event, dead letters) and the hub (members).
//!
//! `channel` is a configured channel; `group` is a name an authenticated consumer
//! chose (`[A-Za-z0-9_-]{1,64}`, a consumer token needed to create one), and at most
//! [`MAX_GROUPS_PER_CHANNEL`] per channel are exported, so the series stay bounded
//! even if a token holder invents many groups. A scrape costs one read of the event
//! after each lagging cursor and one dead-letter count per group.

use std::collections::BTreeMap;

use prometheus::{GaugeVec, IntGaugeVec, Registry};

use super::build;
use crate::relay::groups::GroupMembers;
use crate::storage::Storage;

/// Most groups of one channel exported (in name order).
pub const MAX_GROUPS_PER_CHANNEL: usize = 256;

/// The group families.
pub struct GroupMetrics {
    cursor: IntGaugeVec,
    lag_events: IntGaugeVec,
    lag_seconds: GaugeVec,
    dead_letters: IntGaugeVec,
    members: IntGaugeVec,
}

/// One group as a scrape sees it.
#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    /// The durable cursor, if the group has acknowledged anything.
    cursor: Option<u64>,
    active: usize,
    standby: usize,
    /// Where the hub's in-memory position puts the cursor (position − 1).
    hub_cursor: Option<u64>,
}

impl GroupMetrics {
    /// Registers the families in `registry`.
    pub fn new(r: &Registry) -> GroupMetrics {
        let cg = &["channel", "group"];
        GroupMetrics {
            cursor: build::gauge_vec(
                r,
                "hookrelay_group_cursor",
                "Last acknowledged offset of a consumer group",
                cg,
            ),
            lag_events: build::gauge_vec(
                r,
                "hookrelay_group_lag_events",
                "Events after the group's cursor up to the channel's head",
                cg,
            ),
            lag_seconds: build::float_gauge_vec(
                r,
                "hookrelay_group_lag_seconds",
                "Age of the oldest unacknowledged event of the group (0 when none)",
                cg,
            ),
            dead_letters: build::gauge_vec(
                r,
                "hookrelay_group_dead_letters",
                "Dead letters the group holds now",
                cg,
            ),
            members: build::gauge_vec(
                r,
                "hookrelay_group_members",
                "Agents subscribed to the group on this relay, by state (active, standby)",
                &["channel", "group", "state"],
            ),
        }
    }

    /// Replaces every series with the figures now: groups that went away disappear.
    pub async fn update(
        &self,
        log: &dyn Storage,
        members: &[GroupMembers],
        channels: &[String],
        now_ms: u64,
    ) {
        for family in [
            &self.cursor,
            &self.lag_events,
            &self.dead_letters,
            &self.members,
        ] {
            family.reset();
        }
        self.lag_seconds.reset();
        for channel in channels {
            let groups = seen(log, members, channel).await;
            for (group, s) in groups.iter().take(MAX_GROUPS_PER_CHANNEL) {
                self.one(log, channel, group, s, now_ms).await;
            }
        }
    }

    async fn one(&self, log: &dyn Storage, channel: &str, group: &str, s: &Seen, now_ms: u64) {
        let labels = [channel, group];
        let head = log.head(channel);
        let cursor = s.cursor.or(s.hub_cursor).unwrap_or(0).min(head);
        self.cursor.with_label_values(&labels).set(to_i64(cursor));
        self.lag_events
            .with_label_values(&labels)
            .set(to_i64(head - cursor));
        let age = oldest_unacked_age_ms(log, channel, cursor, head, now_ms).await;
        self.lag_seconds
            .with_label_values(&labels)
            .set(age as f64 / 1000.0);
        let dead = log.dead_letter_count(channel, group).await.unwrap_or(0);
        self.dead_letters
            .with_label_values(&labels)
            .set(to_i64(dead as u64));
        for (state, n) in [("active", s.active), ("standby", s.standby)] {
            let n = to_i64(n as u64);
            self.members
                .with_label_values(&[channel, group, state])
                .set(n);
        }
    }
}

/// The groups of `channel`: those with a durable cursor and those the hub has now.
async fn seen(
    log: &dyn Storage,
    members: &[GroupMembers],
    channel: &str,
) -> BTreeMap<String, Seen> {
    let mut out: BTreeMap<String, Seen> = BTreeMap::new();
    for (group, cursor) in log.groups(channel).await.unwrap_or_default() {
        out.entry(group).or_default().cursor = Some(cursor);
    }
    for m in members.iter().filter(|m| m.channel == channel) {
        let s = out.entry(m.group.clone()).or_default();
        s.active = m.active;
        s.standby = m.standby;
        s.hub_cursor = Some(m.position.saturating_sub(1));
    }
    out
}

/// How long the event after `cursor` has waited, in ms; 0 when the group is caught up
/// (or that event is already gone to retention and the next one cannot be read).
async fn oldest_unacked_age_ms(
    log: &dyn Storage,
    channel: &str,
    cursor: u64,
    head: u64,
    now_ms: u64,
) -> u64 {
    if cursor >= head {
        return 0;
    }
    let earliest = log.earliest(channel).unwrap_or(0);
    let next = (cursor + 1).max(earliest);
    match log.get(channel, next).await {
        Ok(Some(r)) => now_ms.saturating_sub(r.received_at_ms),
        _ => 0,
    }
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
