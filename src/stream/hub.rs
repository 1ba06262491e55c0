//! Consumer groups across connections, and the count of open stream connections.
//!
//! Per (channel, group) exactly one subscription is *active*; the others are hot
//! standbys, queued in arrival order, that receive nothing. When the active one ends
//! (unsubscribe, connection closed or dropped, idle timeout) the oldest standby is
//! promoted and told where to start: the group's acknowledged prefix + 1. Because the
//! old active is gone before its [`Member`] guard runs, no event is ever sent to two
//! members at once, and what it had in flight unacknowledged is sent again to the new
//! one (at-least-once).
//!
//! Acks move the durable cursor through the log's batched `advance_cursor`, so the
//! cursor on disk may trail the acks by one group commit. The hub therefore remembers
//! each group's position in memory and keeps it after the last member leaves until a
//! log sync has made the cursor durable; a member that reconnects at once resumes
//! exactly after its last ack instead of one commit earlier.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{oneshot, watch};

use super::start;
use super::Refusal;
use crate::log::EventLog;
use crate::metrics::Metrics;

/// Registry of consumer groups and their active/standby subscriptions; also counts open
/// stream connections so a graceful stop can wait for them.
#[derive(Default)]
pub struct Hub {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("connections", &self.connections())
            .finish_non_exhaustive()
    }
}

struct Inner {
    groups: Mutex<HashMap<GroupKey, GroupState>>,
    next_member: AtomicU64,
    /// Open stream connections; a graceful stop waits for zero.
    open: watch::Sender<usize>,
}

impl Default for Inner {
    fn default() -> Self {
        Inner {
            groups: Mutex::new(HashMap::new()),
            next_member: AtomicU64::new(1),
            open: watch::Sender::new(0),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct GroupKey {
    channel: String,
    group: String,
}

struct GroupState {
    /// The member receiving events, if any.
    active: Option<u64>,
    /// Hot standbys, oldest first, each with the sender that promotes it.
    standby: VecDeque<(u64, oneshot::Sender<u64>)>,
    /// The first offset the group has not finished: acknowledged prefix + 1 (or, before
    /// any ack, where its first active member started).
    position: u64,
    /// Whether `position` came from an ack (and so must outlive the members until the
    /// cursor is durable), rather than from a start rule.
    acked: bool,
    /// Bumped on every transition to idle, so a stale cleanup leaves a revived group alone.
    epoch: u64,
}

/// How a subscription joined its group.
pub(crate) enum Joined {
    /// It is the active member; delivery starts at `next`.
    Active { next: u64 },
    /// It is a hot standby; `promoted` yields the start offset when it becomes active.
    /// `position` is the group's current position, for the `Subscribed` frame.
    Standby {
        position: u64,
        promoted: oneshot::Receiver<u64>,
    },
}

/// Membership of one subscription in a group. [`Member::leave`] (or dropping it, which
/// also covers an aborted task) leaves the group and promotes the oldest standby if this
/// was the active member.
pub(crate) struct Member {
    inner: Arc<Inner>,
    log: EventLog,
    key: GroupKey,
    id: u64,
    left: AtomicBool,
}

impl Member {
    /// Leaves the group; later calls do nothing.
    pub(crate) fn leave(&self) {
        if !self.left.swap(true, Ordering::AcqRel) {
            self.inner.leave(&self.log, &self.key, self.id);
        }
    }

    /// The active member's acknowledged prefix moved to `acked`.
    pub(crate) fn advanced(&self, acked: u64) {
        let mut groups = self.inner.lock();
        if let Some(g) = groups.get_mut(&self.key) {
            if g.active == Some(self.id) && acked + 1 > g.position {
                g.position = acked + 1;
                g.acked = true;
            }
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.leave();
    }
}

/// One open stream connection; dropping it updates the count and the gauge.
pub(crate) struct OpenConnection {
    inner: Arc<Inner>,
    gauge: prometheus::IntGauge,
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.inner.open.send_modify(|n| *n = n.saturating_sub(1));
        self.gauge.dec();
    }
}

impl Hub {
    /// Joins `group` on `channel`. A group that is already running (in memory) or has a
    /// committed cursor (on disk) decides the start; only a new group asks `start`,
    /// which gets the committed cursor (if any) and may refuse.
    pub(crate) fn join(
        &self,
        log: &EventLog,
        channel: &str,
        group: &str,
        start: impl FnOnce(Option<u64>) -> Result<u64, Refusal>,
    ) -> Result<(Member, Joined), Refusal> {
        let key = GroupKey {
            channel: channel.to_string(),
            group: group.to_string(),
        };
        let id = self.inner.next_member.fetch_add(1, Ordering::Relaxed);
        let mut groups = self.inner.lock();
        let joined = match groups.get_mut(&key) {
            Some(g) if g.active.is_some() => {
                let (tx, rx) = oneshot::channel();
                g.standby.push_back((id, tx));
                Joined::Standby {
                    position: g.position,
                    promoted: rx,
                }
            }
            Some(g) => {
                // Idle, kept only until its last cursor move is durable.
                let next = resume_at(log, channel, group, g.position);
                g.active = Some(id);
                g.position = next;
                Joined::Active { next }
            }
            None => {
                let cursor = log.cursor(channel, group).map_err(start::internal)?;
                let next = start(cursor)?;
                groups.insert(
                    key.clone(),
                    GroupState {
                        active: Some(id),
                        standby: VecDeque::new(),
                        position: next,
                        acked: false,
                        epoch: 0,
                    },
                );
                Joined::Active { next }
            }
        };
        drop(groups);
        let member = Member {
            inner: self.inner.clone(),
            log: log.clone(),
            key,
            id,
            left: AtomicBool::new(false),
        };
        Ok((member, joined))
    }

    /// Counts a new stream connection until the returned guard is dropped.
    pub(crate) fn connection_opened(&self, metrics: &Metrics) -> OpenConnection {
        self.inner.open.send_modify(|n| *n += 1);
        metrics.connections.inc();
        OpenConnection {
            inner: self.inner.clone(),
            gauge: metrics.connections.clone(),
        }
    }

    /// Open stream connections.
    pub fn connections(&self) -> usize {
        *self.inner.open.borrow()
    }

    /// Waits until every stream connection has closed (they close themselves when the
    /// relay's shutdown fires), at most `timeout`. True when all closed in time.
    pub async fn wait_closed(&self, timeout: Duration) -> bool {
        let mut rx = self.inner.open.subscribe();
        let closed = tokio::time::timeout(timeout, rx.wait_for(|n| *n == 0)).await;
        matches!(closed, Ok(Ok(_)))
    }
}

/// Where a group resumes: after the best known acknowledged prefix, in memory
/// (`position`) or on disk (the committed cursor), never before the retained events.
fn resume_at(log: &EventLog, channel: &str, group: &str, position: u64) -> u64 {
    let on_disk = log
        .cursor(channel, group)
        .ok()
        .flatten()
        .map_or(0, |c| c.saturating_add(1));
    start::retained(log, channel, position.max(on_disk))
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, HashMap<GroupKey, GroupState>> {
        // The critical sections cannot panic halfway; a poisoned map is still consistent.
        self.groups.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn leave(self: &Arc<Self>, log: &EventLog, key: &GroupKey, id: u64) {
        let mut groups = self.lock();
        let Some(g) = groups.get_mut(key) else {
            return;
        };
        if g.active == Some(id) {
            g.active = None;
            let next = resume_at(log, &key.channel, &key.group, g.position);
            while let Some((standby, promote)) = g.standby.pop_front() {
                // A failed send means that standby is already gone: try the next one.
                if promote.send(next).is_ok() {
                    g.active = Some(standby);
                    g.position = next;
                    break;
                }
            }
        } else {
            g.standby.retain(|(s, _)| *s != id);
        }
        if g.active.is_some() || !g.standby.is_empty() {
            return;
        }
        if !g.acked {
            groups.remove(key);
            return;
        }
        g.epoch += 1;
        let epoch = g.epoch;
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                let inner = self.clone();
                let log = log.clone();
                let key = key.clone();
                rt.spawn(async move {
                    // Everything queued before (the last cursor move) is durable after this.
                    let _ = log.sync().await;
                    let mut groups = inner.lock();
                    if groups
                        .get(&key)
                        .is_some_and(|g| g.epoch == epoch && g.active.is_none())
                    {
                        groups.remove(&key);
                    }
                });
            }
            Err(_) => {
                groups.remove(key);
            }
        }
    }
}
