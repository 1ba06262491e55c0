//! The hub across relay nodes: the group lease its active member must hold before it
//! delivers, and operators' actions made through other nodes.
//!
//! The hub orders the members on this node (one active, the others standby). Across
//! nodes, the storage's lease ([`crate::storage::lease`]) orders the nodes: the active
//! member of this node delivers only while this node holds the group's lease; until it
//! gets it, it tells its agent it is a standby and retries. A *fresh* lease (this node
//! did not hold it before) starts after the cursor read from storage when it was taken,
//! since another node may have delivered meanwhile; a lease kept over a local handover
//! resumes from memory as before. The embedded backend grants every lease at once, so
//! on it nothing changes.
//!
//! A reset or a redrive made through another node arrives as a
//! [`crate::storage::Control`] event: a redrive nudges the group's active member; a
//! reset is applied as a local one (new generation, forced cursor write, nudge) on the
//! node that holds the lease, which thereby also fences off its own late acks of the old
//! position. Nodes without the lease do nothing: their next lease reads the cursor.

use std::sync::atomic::Ordering;

use tokio::sync::{broadcast, watch};

use super::{start, GroupKey, HeldLease, Hub, Log, Member};
use crate::storage::{Control, LeaseGrant};

/// The group's lease as the active member holds it: its id and its loss signal.
pub(crate) struct LeaseHold {
    pub id: u64,
    pub lost: watch::Receiver<bool>,
}

impl Member {
    /// The group's lease, if this node holds it now.
    pub(crate) fn lease(&self) -> Option<LeaseHold> {
        let groups = self.inner.lock();
        let held = groups.get(&self.key)?.lease.as_ref()?;
        Some(LeaseHold {
            id: held.id,
            lost: held.lease.lost(),
        })
    }

    /// Takes a freshly granted lease for the group, if this member is still its active
    /// one: returns where delivery starts, the generation, and the hold. The start is
    /// after the cursor read with the grant (another node may have delivered), unless a
    /// reset made here has not landed yet (then its position is the truth).
    pub(crate) fn hold(&self, grant: LeaseGrant) -> Option<(u64, u64, LeaseHold)> {
        let mut groups = self.inner.lock();
        let g = groups.get_mut(&self.key)?;
        if g.active != Some(self.id) {
            return None;
        }
        if !g.reset {
            if let Some(c) = grant.cursor {
                g.position = c.saturating_add(1);
            }
        }
        g.position = start::retained(self.log.as_ref(), &self.key.channel, g.position);
        let id = self.inner.next_lease.fetch_add(1, Ordering::Relaxed);
        let lost = grant.lease.lost();
        g.lease = Some(HeldLease {
            id,
            lease: grant.lease,
        });
        Some((g.position, g.generation, LeaseHold { id, lost }))
    }

    /// The lease `id` was lost: it goes (a later active member takes a new one).
    pub(crate) fn lease_lost(&self, id: u64) {
        let mut groups = self.inner.lock();
        if let Some(g) = groups.get_mut(&self.key) {
            if g.lease.as_ref().is_some_and(|l| l.id == id) {
                g.lease = None;
            }
        }
    }
}

impl Hub {
    /// After a redrive was marked durably: wakes the group's active member here, and
    /// tells the other nodes so that theirs wakes too.
    pub(crate) async fn redriven(&self, log: &Log, channel: &str, group: &str) {
        self.nudge(channel, group);
        let event = Control::Redrive {
            channel: channel.to_string(),
            group: group.to_string(),
        };
        self.tell_others(log, event).await;
    }

    /// Announces an operator's action to the other relay nodes. The action is durable
    /// already; a failed announcement only delays it on the others (see the storage's
    /// control doc), so it is logged, not returned.
    pub(super) async fn tell_others(&self, log: &Log, event: Control) {
        if let Err(e) = log.publish_control(event).await {
            tracing::warn!(error = %e, "groups: other relay nodes were not told of a reset or redrive");
        }
    }

    /// Applies other nodes' actions until the storage closes its control events.
    pub async fn follow_control(&self, log: Log) {
        let mut events = log.control_events();
        loop {
            match events.recv().await {
                Ok(event) => self.apply(&log, event).await,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "groups: control events from other nodes missed");
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    /// Applies one action made through another node (see the module doc).
    pub(crate) async fn apply(&self, log: &Log, event: Control) {
        match event {
            Control::Redrive { channel, group } => self.nudge(&channel, &group),
            Control::Reset {
                channel,
                group,
                next,
            } => {
                if let Err(e) = self.apply_reset(log, channel, group, next).await {
                    tracing::warn!(error = %e, "groups: a reset from another node failed here");
                }
            }
        }
    }

    async fn apply_reset(
        &self,
        log: &Log,
        channel: String,
        group: String,
        next: u64,
    ) -> Result<(), crate::storage::StorageError> {
        let key = GroupKey { channel, group };
        if !self.holds_lease(&key) {
            return Ok(());
        }
        let slot = log.reserve_cursor_write().await?;
        let (written, generation) = {
            let mut groups = self.inner.lock();
            let Some(g) = groups.get_mut(&key).filter(|g| g.lease.is_some()) else {
                return Ok(());
            };
            let generation = self.inner.fresh_generation();
            (g.restart_at(slot, &key, next, generation), generation)
        };
        tracing::info!(channel = %key.channel, group = %key.group, next, "groups: reset made on another node applied");
        let result = written.await;
        self.inner.reset_landed(&key, generation, None);
        result
    }

    fn holds_lease(&self, key: &GroupKey) -> bool {
        self.inner
            .lock()
            .get(key)
            .is_some_and(|g| g.lease.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::groups::Joined;
    use crate::storage::LocalLease;

    fn open() -> (tempfile::TempDir, Log) {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = crate::storage::open(dir.path(), 0).expect("log");
        (dir, log)
    }

    fn join(hub: &Hub, log: &Log) -> (Member, Joined) {
        hub.join(log, "c", "g", |cursor| Ok(cursor.map_or(1, |c| c + 1)))
            .expect("joined")
    }

    /// A lease whose loss the test controls.
    struct TestLease(watch::Sender<bool>);

    impl crate::storage::Lease for TestLease {
        fn lost(&self) -> watch::Receiver<bool> {
            self.0.subscribe()
        }
    }

    fn grant(cursor: Option<u64>) -> (LeaseGrant, watch::Sender<bool>) {
        let lost = watch::Sender::new(false);
        let lease = Box::new(TestLease(lost.clone()));
        (LeaseGrant { lease, cursor }, lost)
    }

    #[tokio::test]
    async fn an_active_member_delivers_only_with_the_lease_and_keeps_it_over_a_handover() {
        let (_dir, log) = open();
        let hub = Hub::default();
        let (a, _) = join(&hub, &log);
        assert!(a.lease().is_none());
        assert!(hub.active_groups("c").is_empty(), "not delivering yet");
        assert_eq!(hub.agents("c")[0].state, "standby");
        // Another node delivered up to 7 meanwhile: the fresh lease starts at 8.
        let (g, _lost) = grant(Some(7));
        let (next, _, _) = a.hold(g).expect("held");
        assert_eq!(next, 8);
        assert_eq!(hub.active_groups("c"), ["g"]);
        let (b, joined) = join(&hub, &log);
        assert!(matches!(joined, Joined::Standby { .. }));
        drop(a);
        assert!(b.lease().is_some(), "a local handover keeps the lease");
    }

    #[tokio::test]
    async fn a_lost_lease_goes_and_only_that_one() {
        let (_dir, log) = open();
        let hub = Hub::default();
        let (a, _) = join(&hub, &log);
        let (g, lost) = grant(None);
        let (_, _, hold) = a.hold(g).expect("held");
        a.lease_lost(hold.id + 1);
        assert!(a.lease().is_some(), "another lease's loss changes nothing");
        lost.send_replace(true);
        assert!(*a.lease().expect("held").lost.borrow());
        a.lease_lost(hold.id);
        assert!(a.lease().is_none());
        assert!(hub.active_groups("c").is_empty());
    }

    #[tokio::test]
    async fn a_reset_from_another_node_applies_where_the_lease_is_held() {
        let (_dir, log) = open();
        let hub = Hub::default();
        let (a, _) = join(&hub, &log);
        let reset = |next| Control::Reset {
            channel: "c".into(),
            group: "g".into(),
            next,
        };
        // Without the lease, this node leaves the group alone.
        let before = a.current();
        hub.apply(&log, reset(3)).await;
        assert_eq!(a.current(), before);
        assert!(!a.nudge.has_changed().expect("open"));

        let lease = log
            .try_lease("c", "g")
            .await
            .expect("lease")
            .expect("granted");
        assert!(lease.cursor.is_none());
        a.hold(LeaseGrant {
            lease: Box::new(LocalLease::default()),
            cursor: None,
        })
        .expect("held");
        hub.apply(&log, reset(3)).await;
        let (generation, position) = a.current();
        assert_ne!(generation, before.0, "a new generation fences late acks");
        assert_eq!(position, 3);
        assert!(a.nudge.has_changed().expect("open"), "the member is nudged");
        assert_eq!(log.cursor("c", "g").expect("cursor"), Some(2));

        // A redrive from another node nudges.
        let mut nudge = a.nudge.clone();
        nudge.mark_unchanged();
        let redrive = Control::Redrive {
            channel: "c".into(),
            group: "g".into(),
        };
        hub.apply(&log, redrive).await;
        assert!(nudge.has_changed().expect("open"));
    }
}
