//! Who may deliver a consumer group, across relay nodes, and how an operator's action
//! on one node reaches the others: the trait-level types of [`super::Storage`]'s lease
//! and control methods.
//!
//! A **lease** is the right to deliver one (channel, group). Exactly one holder exists
//! at a time across every node on the same storage; a node whose member becomes active
//! takes the lease before it sends anything, and the other nodes' members wait as hot
//! standbys, retrying every [`LEASE_RETRY_MS`]. The holder learns through
//! [`Lease::lost`] that it may no longer deliver, early enough that it stops before any
//! other node can take the lease over (the JetStream backend's module doc gives the
//! timing). Dropping a [`Lease`] releases it. The embedded backend is a single node: it
//! grants every lease at once and never loses one.
//!
//! A **control event** is a reset or a redrive made through one node's admin API; the
//! other nodes apply it to their running subscriptions as if it were made locally.

use tokio::sync::watch;

/// How often a member waiting for its group's lease on another node tries again.
pub const LEASE_RETRY_MS: u64 = 500;

/// The right to deliver one (channel, group); dropping it releases it.
pub trait Lease: Send + Sync {
    /// Becomes `true` once the holder must stop delivering (it could not renew in time,
    /// or another node holds the lease now); it never goes back to `false`.
    fn lost(&self) -> watch::Receiver<bool>;
}

/// A lease just taken, with the group's cursor as stored when it was taken: another node
/// may have moved it since this node's cache last heard, and the new holder must resume
/// exactly after it.
pub struct LeaseGrant {
    /// The lease.
    pub lease: Box<dyn Lease>,
    /// The group's committed cursor, read after the lease was taken.
    pub cursor: Option<u64>,
}

impl std::fmt::Debug for LeaseGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseGrant")
            .field("cursor", &self.cursor)
            .finish_non_exhaustive()
    }
}

/// A lease that is never lost: the grant of a single-node backend.
#[derive(Debug)]
pub struct LocalLease {
    // Kept so that receivers never see the channel close.
    lost: watch::Sender<bool>,
}

impl Default for LocalLease {
    fn default() -> Self {
        LocalLease {
            lost: watch::Sender::new(false),
        }
    }
}

impl Lease for LocalLease {
    fn lost(&self) -> watch::Receiver<bool> {
        self.lost.subscribe()
    }
}

/// An operator's action on a consumer group, made through one node and applied by the
/// others.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Control {
    /// The group's cursor was reset (durably) so that `next` is delivered next.
    Reset {
        /// The channel.
        channel: String,
        /// The consumer group.
        group: String,
        /// The offset delivered next.
        next: u64,
    },
    /// Dead letters of the group were marked for redrive (durably).
    Redrive {
        /// The channel.
        channel: String,
        /// The consumer group.
        group: String,
    },
}
