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
//!
//! Operators act on running groups through the hub too. A **reset** moves a group's
//! position (backwards or forwards): under the hub's lock it gives the group a new
//! *generation*, queues the forced cursor write, and nudges the active member, which
//! restarts delivery at the new position. Cursor moves from acks are checked and queued
//! under the same lock, and only for the current generation, so a late ack of the old
//! position can never carry the cursor forward past a reset. A **redrive** only nudges
//! the active member, which then reads the pending redrives from the log.
//!
//! Across relay nodes on one storage, the active member here delivers only while this
//! node holds the group's lease, and resets and redrives made on other nodes arrive as
//! control events: see [`lease`].

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{oneshot, watch};

use super::presence::{AgentView, Presence};
use super::start;
use crate::common::protocol::Refusal;
use crate::storage::Lease;
use crate::storage::{CursorSlot, Storage, StorageError};

pub(crate) mod lease;

/// The storage handle a member keeps for cursor writes after its join.
type Log = Arc<dyn Storage>;

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
    /// Source of group generations; unique across the relay's life, so that a
    /// generation of a group that was forgotten and recreated never matches again.
    next_generation: AtomicU64,
    /// Source of lease ids.
    next_lease: AtomicU64,
    /// Open stream connections; a graceful stop waits for zero.
    open: watch::Sender<usize>,
    /// Peer address and start of each member, for the console.
    presence: Presence,
}

impl Default for Inner {
    fn default() -> Self {
        Inner {
            groups: Mutex::new(HashMap::new()),
            next_member: AtomicU64::new(1),
            next_generation: AtomicU64::new(1),
            next_lease: AtomicU64::new(1),
            open: watch::Sender::new(0),
            presence: Presence::default(),
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
    /// Hot standbys, oldest first, each with the sender that promotes it (with the
    /// start offset and the generation).
    standby: VecDeque<(u64, oneshot::Sender<(u64, u64)>)>,
    /// The first offset the group has not finished: acknowledged prefix + 1 (or, before
    /// any ack, where its first active member started).
    position: u64,
    /// Whether `position` came from an ack (and so must outlive the members until the
    /// cursor is durable), rather than from a start rule.
    acked: bool,
    /// Bumped on every transition to idle, so a stale cleanup leaves a revived group alone.
    epoch: u64,
    /// Changes on every reset; acks of an older generation never move the cursor.
    generation: u64,
    /// `position` was set by a reset: it wins over the on-disk cursor, which may still
    /// hold the old (larger) value until the reset's write lands.
    reset: bool,
    /// Wakes the active member after a reset or a redrive request.
    nudge: watch::Sender<u64>,
    /// The group's lease across relay nodes, while this node holds it: the active
    /// member delivers only with it (see [`lease`]). Kept over local handovers, dropped
    /// (released) when the group is forgotten here or the lease is lost.
    lease: Option<HeldLease>,
}

/// A lease in a group's state, with an id so that a loss only drops the lease it is about.
struct HeldLease {
    id: u64,
    lease: Box<dyn Lease>,
}

impl GroupState {
    fn new(position: u64, generation: u64) -> GroupState {
        GroupState {
            active: None,
            standby: VecDeque::new(),
            position,
            acked: false,
            epoch: 0,
            generation,
            reset: false,
            nudge: watch::Sender::new(0),
            lease: None,
        }
    }

    /// Moves the group to `next` in a new `generation` (a reset): queues the forced
    /// cursor write in `slot` and nudges the active member. Called under the hub's lock.
    fn restart_at(
        &mut self,
        slot: Box<dyn CursorSlot>,
        key: &GroupKey,
        next: u64,
        generation: u64,
    ) -> crate::storage::BoxFuture<'static, Result<(), StorageError>> {
        self.generation = generation;
        self.position = next;
        self.acked = true;
        self.reset = true;
        let written = slot.set(&key.channel, &key.group, next.saturating_sub(1), true);
        self.nudge.send_modify(|n| *n = n.wrapping_add(1));
        written
    }

    /// Whether an active member here delivers (it holds the group's lease).
    fn delivering(&self) -> bool {
        self.active.is_some() && self.lease.is_some()
    }

    /// Queues member `id` as the newest hot standby.
    fn add_standby(&mut self, id: u64) -> Joined {
        let (tx, rx) = oneshot::channel();
        self.standby.push_back((id, tx));
        Joined::Standby {
            position: self.position,
            promoted: rx,
        }
    }

    /// Makes member `id` the active one, delivering from `next`.
    fn activate(&mut self, id: u64, next: u64) -> Joined {
        self.active = Some(id);
        self.position = next;
        Joined::Active {
            next,
            generation: self.generation,
        }
    }
}

/// One group's members on this relay, as [`Hub::members`] reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMembers {
    /// The channel.
    pub channel: String,
    /// The group's name.
    pub group: String,
    /// Active members: 0 or 1.
    pub active: usize,
    /// Hot standbys.
    pub standby: usize,
    /// The first offset the group has not finished (acknowledged prefix + 1, or where
    /// its first member started).
    pub position: u64,
}

/// How a subscription joined its group.
pub(crate) enum Joined {
    /// It is the active member; delivery starts at `next`, in `generation`.
    Active { next: u64, generation: u64 },
    /// It is a hot standby; `promoted` yields the start offset and the generation when
    /// it becomes active. `position` is the group's current position, for the
    /// `Subscribed` frame.
    Standby {
        position: u64,
        promoted: oneshot::Receiver<(u64, u64)>,
    },
}

/// What became of a cursor move after an ack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Advance {
    /// Queued for the next group commit.
    Queued,
    /// From an older generation (a reset happened): ignored.
    Stale,
    /// The committer's queue is full: retry with [`Fence::advance_when_room`].
    Full,
}

/// Membership of one subscription in a group. [`Member::leave`] (or dropping it, which
/// also covers an aborted task) leaves the group and promotes the oldest standby if this
/// was the active member.
pub(crate) struct Member {
    inner: Arc<Inner>,
    log: Log,
    key: GroupKey,
    id: u64,
    left: AtomicBool,
    /// Changes when an operator reset the group or asked for a redrive; created at join
    /// (under the lock), so no nudge after the join is missed.
    pub(crate) nudge: watch::Receiver<u64>,
}

/// What a member needs to move the cursor later, from another task (no membership).
#[derive(Clone)]
pub(crate) struct Fence {
    inner: Arc<Inner>,
    log: Log,
    key: GroupKey,
}

impl Fence {
    /// Waits for room in the committer's queue, then moves the cursor to `acked` if the
    /// group is still in `generation` (checked and queued under the hub's lock, like
    /// [`Member::advance`]).
    pub(crate) async fn advance_when_room(self, generation: u64, acked: u64) {
        let slot = match self.log.reserve_cursor_write().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(channel = %self.key.channel, group = %self.key.group, error = %e, "stream: cursor write failed");
                return;
            }
        };
        let groups = self.inner.lock();
        if groups
            .get(&self.key)
            .is_some_and(|g| g.generation == generation)
        {
            // Not awaited: the write is queued, its durability comes with the batch.
            drop(slot.set(&self.key.channel, &self.key.group, acked, false));
        }
    }
}

impl Member {
    /// Leaves the group; later calls do nothing.
    pub(crate) fn leave(&self) {
        if !self.left.swap(true, Ordering::AcqRel) {
            self.inner.presence.remove(self.id);
            self.inner.leave(&self.log, &self.key, self.id);
        }
    }

    /// Labels this member with its agent's address, for the console's agent list.
    pub(crate) fn announce(&self, peer: &str) {
        let now = crate::common::time::now_unix_ms();
        self.inner.presence.insert(self.id, peer, now);
    }

    /// The active member's acknowledged prefix moved to `acked` in `generation`: moves
    /// the group's position and queues the cursor write, both under the hub's lock so
    /// that a reset is ordered before or after it, never in between.
    pub(crate) fn advance(&self, generation: u64, acked: u64) -> Advance {
        let mut groups = self.inner.lock();
        let Some(g) = groups.get_mut(&self.key) else {
            return Advance::Stale;
        };
        if g.generation != generation {
            return Advance::Stale;
        }
        if g.active == Some(self.id) && acked + 1 > g.position {
            g.position = acked + 1;
            g.acked = true;
        }
        match self
            .log
            .advance_cursor(&self.key.channel, &self.key.group, acked)
        {
            Ok(()) => Advance::Queued,
            Err(_) => Advance::Full,
        }
    }

    /// The group's generation and position now (after a nudge: where to restart).
    pub(crate) fn current(&self) -> (u64, u64) {
        let groups = self.inner.lock();
        match groups.get(&self.key) {
            Some(g) => (g.generation, g.position),
            None => (0, 0),
        }
    }

    /// A handle for cursor moves from another task.
    pub(crate) fn fence(&self) -> Fence {
        Fence {
            inner: self.inner.clone(),
            log: self.log.clone(),
            key: self.key.clone(),
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
        log: &Log,
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
            Some(g) if g.active.is_some() => g.add_standby(id),
            // Idle, kept only until its last cursor move (or reset) is durable.
            Some(g) => {
                let next = resume_at(log, &key, g);
                g.activate(id, next)
            }
            None => {
                let cursor = log.cursor(channel, group).map_err(start::internal)?;
                let next = start(cursor)?;
                let mut g = GroupState::new(next, self.inner.fresh_generation());
                let joined = g.activate(id, next);
                groups.insert(key.clone(), g);
                joined
            }
        };
        // Subscribed under the lock: no nudge after the join is missed.
        let nudge = match groups.get(&key) {
            Some(g) => g.nudge.subscribe(),
            None => watch::Sender::new(0).subscribe(),
        };
        drop(groups);
        Ok((self.member(log, key, id, nudge), joined))
    }

    fn member(&self, log: &Log, key: GroupKey, id: u64, nudge: watch::Receiver<u64>) -> Member {
        Member {
            inner: self.inner.clone(),
            log: log.clone(),
            key,
            id,
            left: AtomicBool::new(false),
            nudge,
        }
    }

    /// Resets a group so that the next event delivered is `next`, moving its durable
    /// cursor to `next - 1` even backwards; answers once that write is durable. A running
    /// group restarts delivery there at once: its active member is nudged, and acks of
    /// what it had in flight no longer move the cursor (see the module doc).
    pub(crate) async fn reset(
        &self,
        log: &Log,
        channel: &str,
        group: &str,
        next: u64,
    ) -> Result<(), StorageError> {
        let key = GroupKey {
            channel: channel.to_string(),
            group: group.to_string(),
        };
        let slot: Box<dyn CursorSlot> = log.reserve_cursor_write().await?;
        let (written, generation, idle_epoch) = {
            let mut groups = self.inner.lock();
            let generation = self.inner.fresh_generation();
            let g = groups
                .entry(key.clone())
                .or_insert_with(|| GroupState::new(next, generation));
            let written = g.restart_at(slot, &key, next, generation);
            let idle = g.active.is_none() && g.standby.is_empty();
            if idle {
                // Kept until the write lands, so that a join meanwhile starts at `next`.
                g.epoch += 1;
            }
            (written, generation, idle.then_some(g.epoch))
        };
        let result = written.await;
        self.inner.reset_landed(&key, generation, idle_epoch);
        result?;
        // Running subscriptions of this group on other relay nodes restart too.
        self.tell_others(
            log,
            crate::storage::Control::Reset {
                channel: channel.to_string(),
                group: group.to_string(),
                next,
            },
        )
        .await;
        Ok(())
    }

    /// Wakes the active member of a group, if any, to pick up pending redrives.
    pub(crate) fn nudge(&self, channel: &str, group: &str) {
        let key = GroupKey {
            channel: channel.to_string(),
            group: group.to_string(),
        };
        if let Some(g) = self.inner.lock().get(&key) {
            g.nudge.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// Groups of `channel` that have an active member on this relay now.
    pub fn active_groups(&self, channel: &str) -> Vec<String> {
        self.inner
            .lock()
            .iter()
            .filter(|(k, g)| k.channel == channel && g.delivering())
            .map(|(k, _)| k.group.clone())
            .collect()
    }

    /// The members of `channel`'s groups on this relay: active first, then standbys.
    pub fn agents(&self, channel: &str) -> Vec<AgentView> {
        let groups = self.inner.lock();
        let mut out = Vec::new();
        for (k, g) in groups.iter().filter(|(k, _)| k.channel == channel) {
            let presence = &self.inner.presence;
            // An active member still waiting for the lease is a standby to people.
            let state = if g.delivering() { "active" } else { "standby" };
            out.extend(g.active.map(|id| presence.view(id, &k.group, state)));
            out.extend(
                g.standby
                    .iter()
                    .map(|(id, _)| presence.view(*id, &k.group, "standby")),
            );
        }
        out.sort_by(|a, b| (&a.group, a.state).cmp(&(&b.group, b.state)));
        out
    }

    /// Counts a new stream connection, here and in `gauge`, until the returned guard
    /// is dropped. (A gauge, not the relay's metrics: those read the hub at scrape
    /// time, and the hub must not import them back.)
    pub(crate) fn connection_opened(&self, gauge: &prometheus::IntGauge) -> OpenConnection {
        self.inner.open.send_modify(|n| *n += 1);
        gauge.inc();
        OpenConnection {
            inner: self.inner.clone(),
            gauge: gauge.clone(),
        }
    }

    /// Every group this relay knows in memory, with its members, for metrics.
    pub fn members(&self) -> Vec<GroupMembers> {
        self.inner
            .lock()
            .iter()
            .map(|(k, g)| GroupMembers {
                channel: k.channel.clone(),
                group: k.group.clone(),
                active: usize::from(g.delivering()),
                standby: g.standby.len() + usize::from(g.active.is_some() && !g.delivering()),
                position: g.position,
            })
            .collect()
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
/// After a reset the memory is the truth (the disk may not have the reset yet).
fn resume_at(log: &Log, key: &GroupKey, g: &GroupState) -> u64 {
    let on_disk = if g.reset {
        0
    } else {
        log.cursor(&key.channel, &key.group)
            .ok()
            .flatten()
            .map_or(0, |c| c.saturating_add(1))
    };
    start::retained(log.as_ref(), &key.channel, g.position.max(on_disk))
}

impl Inner {
    fn fresh_generation(&self) -> u64 {
        self.next_generation.fetch_add(1, Ordering::Relaxed)
    }

    /// A reset's cursor write landed: from now on the cursor in storage is as good as
    /// the position in memory (so a new lease holder here may read it), and an idle
    /// group may go.
    fn reset_landed(&self, key: &GroupKey, generation: u64, idle_epoch: Option<u64>) {
        if let Some(g) = self.lock().get_mut(key) {
            if g.generation == generation {
                g.reset = false;
            }
        }
        if let Some(epoch) = idle_epoch {
            self.forget_if_idle(key, epoch);
        }
    }

    /// Forgets an idle group whose last write is durable, unless it was revived since.
    fn forget_if_idle(&self, key: &GroupKey, epoch: u64) {
        let mut groups = self.lock();
        if groups
            .get(key)
            .is_some_and(|g| g.epoch == epoch && g.active.is_none() && g.standby.is_empty())
        {
            groups.remove(key);
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<GroupKey, GroupState>> {
        // The critical sections cannot panic halfway; a poisoned map is still consistent.
        self.groups.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn leave(self: &Arc<Self>, log: &Log, key: &GroupKey, id: u64) {
        let mut groups = self.lock();
        let Some(g) = groups.get_mut(key) else {
            return;
        };
        if g.active == Some(id) {
            g.active = None;
            let next = resume_at(log, key, g);
            while let Some((standby, promote)) = g.standby.pop_front() {
                // A failed send means that standby is already gone: try the next one.
                if promote.send((next, g.generation)).is_ok() {
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
                    inner.forget_if_idle(&key, epoch);
                });
            }
            Err(_) => {
                groups.remove(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::oneshot::error::TryRecvError;

    fn open() -> (tempfile::TempDir, Log) {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = crate::storage::open(dir.path(), 0).expect("log");
        (dir, log)
    }

    /// Joins group `g` of channel `c`; a new group starts after its cursor, or at 1.
    fn join(hub: &Hub, log: &Log, group: &str) -> (Member, Joined) {
        let (member, joined) = hub
            .join(log, "c", group, |cursor| Ok(cursor.map_or(1, |c| c + 1)))
            .expect("joined");
        // As the stream does: a new active member takes the group's lease (which the
        // embedded backend always grants).
        if matches!(joined, Joined::Active { .. }) && member.lease().is_none() {
            let cursor = log.cursor("c", group).expect("cursor");
            let lease = Box::new(crate::storage::LocalLease::default());
            member
                .hold(crate::storage::LeaseGrant { lease, cursor })
                .expect("held");
        }
        (member, joined)
    }

    fn active(joined: Joined) -> (u64, u64) {
        match joined {
            Joined::Active { next, generation } => (next, generation),
            Joined::Standby { .. } => panic!("a standby, not the active member"),
        }
    }

    fn standby(joined: Joined) -> (u64, oneshot::Receiver<(u64, u64)>) {
        match joined {
            Joined::Standby { position, promoted } => (position, promoted),
            Joined::Active { .. } => panic!("active, not a standby"),
        }
    }

    #[tokio::test]
    async fn the_first_member_is_active_and_the_others_stand_by() {
        let (_dir, log) = open();
        let hub = Hub::default();
        let (_a, joined) = join(&hub, &log, "g");
        let (next, _) = active(joined);
        assert_eq!(next, 1);
        let (_b, joined) = join(&hub, &log, "g");
        let (position, mut promoted) = standby(joined);
        assert_eq!(position, 1);
        assert_eq!(promoted.try_recv(), Err(TryRecvError::Empty));
        // Another group of the same channel is independent.
        let (_h, joined) = join(&hub, &log, "h");
        active(joined);
        let mut groups = hub.active_groups("c");
        groups.sort();
        assert_eq!(groups, ["g", "h"]);
        assert!(hub.active_groups("other").is_empty());
    }

    #[tokio::test]
    async fn the_oldest_standby_is_promoted_when_the_active_leaves_or_is_dropped() {
        let (_dir, log) = open();
        let hub = Hub::default();
        let (a, joined) = join(&hub, &log, "g");
        let (_, generation) = active(joined);
        let (b, joined) = join(&hub, &log, "g");
        let (_, mut b_promoted) = standby(joined);
        let (c, joined) = join(&hub, &log, "g");
        let (_, mut c_promoted) = standby(joined);

        // The active member acks up to 4, then leaves: b resumes after the ack.
        assert_eq!(a.advance(generation, 4), Advance::Queued);
        a.leave();
        a.leave(); // a second leave does nothing
        assert_eq!(b_promoted.try_recv(), Ok((5, generation)));
        assert_eq!(c_promoted.try_recv(), Err(TryRecvError::Empty));

        // A standby whose task is gone (its promotion receiver dropped) is skipped.
        let (_d, joined) = join(&hub, &log, "g");
        drop(standby(joined).1);
        let (_e, joined) = join(&hub, &log, "g");
        let (_, mut e_promoted) = standby(joined);
        // A standby that leaves is no longer in line: c leaves before b does.
        drop(c);
        drop(b); // dropping the active member leaves, like `leave`
        assert_eq!(c_promoted.try_recv(), Err(TryRecvError::Closed));
        assert_eq!(e_promoted.try_recv(), Ok((5, generation)));
        assert_eq!(hub.active_groups("c"), ["g"]);
    }

    #[tokio::test]
    async fn a_group_without_members_is_joined_where_it_stopped() {
        let (_dir, log) = open();
        let hub = Hub::default();
        let (a, joined) = join(&hub, &log, "g");
        let (_, generation) = active(joined);
        assert_eq!(a.advance(generation, 7), Advance::Queued);
        drop(a);
        assert!(hub.active_groups("c").is_empty());
        // Whether the idle group is still in memory or already forgotten (its cursor
        // durable), the next member resumes after the last ack.
        let (_b, joined) = join(&hub, &log, "g");
        assert_eq!(active(joined).0, 8);
    }

    #[tokio::test]
    async fn a_reset_changes_the_generation_and_older_advances_are_ignored() {
        let (_dir, log) = open();
        let hub = Hub::default();
        let (a, joined) = join(&hub, &log, "g");
        let (_, old) = active(joined);
        assert_eq!(a.advance(old, 3), Advance::Queued);
        assert_eq!(a.current(), (old, 4));
        let mut nudge = a.nudge.clone();
        assert!(!nudge.has_changed().expect("open"));

        hub.reset(&log, "c", "g", 2).await.expect("reset");
        let (new, position) = a.current();
        assert_ne!(new, old, "a reset starts a new generation");
        assert_eq!(position, 2);
        assert!(
            nudge.has_changed().expect("open"),
            "the active member is nudged"
        );
        nudge.mark_unchanged();
        assert_eq!(log.cursor("c", "g").expect("cursor"), Some(1));

        // A late ack of what was in flight before the reset moves nothing.
        assert_eq!(a.advance(old, 10), Advance::Stale);
        assert_eq!(a.current(), (new, 2));
        assert_eq!(a.advance(new, 5), Advance::Queued);
        assert_eq!(a.current(), (new, 6));
        log.sync().await.expect("sync");
        assert_eq!(log.cursor("c", "g").expect("cursor"), Some(5));

        // A redrive request only nudges.
        hub.nudge("c", "g");
        assert!(nudge.has_changed().expect("open"));
        assert_eq!(a.current(), (new, 6));
    }

    #[tokio::test]
    async fn a_reset_of_an_idle_group_sets_where_the_next_member_starts() {
        let (_dir, log) = open();
        let hub = Hub::default();
        hub.reset(&log, "c", "g", 3).await.expect("reset");
        let (_a, joined) = join(&hub, &log, "g");
        assert_eq!(active(joined).0, 3);
    }

    #[tokio::test]
    async fn open_connections_are_counted_until_dropped() {
        let hub = Hub::default();
        let metrics = crate::relay::metrics::Metrics::new();
        let one = hub.connection_opened(&metrics.connections);
        let two = hub.connection_opened(&metrics.connections);
        assert_eq!(hub.connections(), 2);
        assert_eq!(metrics.connections.get(), 2);
        drop(one);
        assert!(!hub.wait_closed(Duration::from_millis(10)).await);
        drop(two);
        assert!(hub.wait_closed(Duration::from_secs(5)).await);
        assert_eq!(metrics.connections.get(), 0);
    }
}
