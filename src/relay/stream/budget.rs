//! Byte budgets for the events a stream connection holds in memory: read from the log
//! and not yet handed to the socket.
//!
//! A window counts events, and an event may be anything up to `max_body_bytes` plus its
//! request head, so windows alone do not bound memory: 16 reads with a window of 4096
//! over 512 KB events would be gigabytes. Every chunk of events therefore holds bytes of
//! two budgets while it exists — its connection's (`[server]
//! stream_connection_buffer_bytes`) and the relay's, shared by all connections
//! (`stream_total_buffer_bytes`) — from before it is read until the writer has handed it
//! to the socket. A subscription whose budget is spent stops reading the log until the
//! writer gives bytes back.
//!
//! The log is read by count, so a chunk's bytes are only known once it is read. A chunk
//! therefore reserves bytes first, assuming its events may be as large as a record can
//! be ([`ReadPlan::reservation`]), reads no more bytes than that reservation (the log
//! bounds a read by bytes itself), and
//! then keeps only what the events really take. Small events are still read many per
//! log call, as long as the budget has room for them all being large.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A stored record is its body plus the request head — method, path, query and
/// headers, which the server caps at 64 KiB — and a few short fields; this is the
/// allowance for everything but the body.
pub(crate) const RECORD_OVERHEAD_BYTES: usize = 80 * 1024;

/// Bytes of one encoded `Event` frame besides its record (tag, ids, length), at most.
pub(crate) const EVENT_FRAME_OVERHEAD_BYTES: usize = 32;

/// The budget shared by every stream connection of the relay.
#[derive(Debug, Clone)]
pub(crate) struct Shared {
    total: Arc<Semaphore>,
    bytes: usize,
}

impl Shared {
    /// A relay-wide budget of `bytes`.
    pub(crate) fn new(bytes: usize) -> Shared {
        let bytes = bytes.clamp(1, Semaphore::MAX_PERMITS);
        Shared {
            total: Arc::new(Semaphore::new(bytes)),
            bytes,
        }
    }

    /// The budget of a new connection: `bytes` of its own, drawing on this one too.
    pub(crate) fn connection(&self, bytes: usize) -> Budget {
        let bytes = bytes.clamp(1, Semaphore::MAX_PERMITS);
        Budget {
            conn: Arc::new(Semaphore::new(bytes)),
            total: self.total.clone(),
            // One reservation never asks for more than either budget holds, so it is
            // always granted eventually; u32 is what a semaphore grants at once.
            max: bytes.min(self.bytes).min(u32::MAX as usize),
        }
    }

    /// Bytes of the shared budget not held by any connection now.
    #[cfg(test)]
    pub(crate) fn available(&self) -> usize {
        self.total.available_permits()
    }
}

/// One connection's budget (see the module doc); cloned into its subscriptions.
#[derive(Debug, Clone)]
pub(crate) struct Budget {
    conn: Arc<Semaphore>,
    total: Arc<Semaphore>,
    max: usize,
}

/// The connection was closed while waiting for its budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Closed;

impl Budget {
    /// Holds `bytes` of both budgets (at most the smaller budget's size), waiting until
    /// they are free: the connection's first, so that a connection that has spent its
    /// own budget waits without holding any of the shared one.
    pub(crate) async fn reserve(&self, bytes: usize) -> Result<Held, Closed> {
        let n = u32::try_from(bytes.clamp(1, self.max)).unwrap_or(u32::MAX);
        let conn = self
            .conn
            .clone()
            .acquire_many_owned(n)
            .await
            .map_err(|_| Closed)?;
        let total = self
            .total
            .clone()
            .acquire_many_owned(n)
            .await
            .map_err(|_| Closed)?;
        Ok(Held { conn, total })
    }

    /// Bytes that could be reserved now without waiting.
    pub(crate) fn available(&self) -> usize {
        self.conn
            .available_permits()
            .min(self.total.available_permits())
            .min(self.max)
    }

    /// The most one reservation may hold.
    pub(crate) fn max(&self) -> usize {
        self.max
    }

    /// Ends the connection's budget: waiting reservations fail with [`Closed`], so no
    /// subscription waits for bytes that a closed connection will never give back.
    pub(crate) fn close(&self) {
        self.conn.close();
    }
}

/// Bytes held of a connection's budget and the shared one; given back when dropped.
#[derive(Debug)]
pub(crate) struct Held {
    conn: OwnedSemaphorePermit,
    total: OwnedSemaphorePermit,
}

impl Held {
    /// Bytes held.
    pub(crate) fn bytes(&self) -> usize {
        self.conn.num_permits()
    }

    /// Gives back what is held beyond `keep` bytes.
    pub(crate) fn shrink_to(&mut self, keep: usize) {
        let excess = self.bytes().saturating_sub(keep.max(1));
        drop(self.conn.split(excess));
        drop(self.total.split(excess));
    }
}

/// How much budget a chunk of events reserves before it is read.
pub(crate) struct ReadPlan;

impl ReadPlan {
    /// The bytes to reserve for a chunk of at most `events` events: enough for all of
    /// them at their largest if the budget has that much free now, else what is free,
    /// but at least one record at its largest (waiting for it if need be). The log read
    /// then stops at what was reserved, and the chunk keeps only what its events take.
    pub(crate) fn reservation(
        events: usize,
        record_bound: usize,
        available: usize,
        max: usize,
    ) -> usize {
        let frame = record_bound.saturating_add(EVENT_FRAME_OVERHEAD_BYTES);
        events
            .saturating_mul(frame)
            .min(available.max(frame))
            .min(max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1024 * 1024;

    #[tokio::test]
    async fn reservations_wait_for_both_budgets_and_come_back_when_dropped() {
        let shared = Shared::new(10 * MIB);
        let a = shared.connection(4 * MIB);
        let b = shared.connection(8 * MIB);
        let mut held_a = a.reserve(4 * MIB).await.expect("a");
        assert_eq!(a.available(), 0);
        assert_eq!(b.available(), 6 * MIB, "a holds 4 of the shared 10");
        // Asking for more than a budget holds asks for all of it.
        assert_eq!(a.max(), 4 * MIB);
        let held_b = b.reserve(6 * MIB).await.expect("b");
        assert_eq!(shared.available(), 0);
        let wait = std::time::Duration::from_millis(20);
        // a's own budget is spent; b's is not, but the shared one is: both wait.
        assert!(tokio::time::timeout(wait, a.reserve(1)).await.is_err());
        assert!(tokio::time::timeout(wait, b.reserve(1)).await.is_err());
        assert_eq!(b.available(), 0, "a waiter that gave up holds nothing");
        held_a.shrink_to(MIB);
        assert_eq!(held_a.bytes(), MIB);
        assert_eq!((a.available(), b.available()), (3 * MIB, 2 * MIB));
        drop(held_b);
        assert_eq!(b.available(), 8 * MIB);
        let extra = a.reserve(MIB).await.expect("a again");
        assert_eq!(a.available(), 2 * MIB);
        drop((held_a, extra));
        assert_eq!(shared.available(), 10 * MIB);
    }

    #[tokio::test]
    async fn a_closed_budget_fails_its_waiters() {
        let shared = Shared::new(MIB);
        let budget = shared.connection(MIB);
        let held = budget.reserve(MIB).await.expect("all of it");
        let waiter = tokio::spawn({
            let budget = budget.clone();
            async move { budget.reserve(1).await.map(|_| ()) }
        });
        budget.close();
        assert_eq!(waiter.await.expect("joined"), Err(Closed));
        drop(held);
        assert_eq!(shared.available(), MIB);
    }

    #[test]
    fn a_reservation_covers_the_chunk_at_its_largest_or_what_is_free() {
        let bound = MIB - EVENT_FRAME_OVERHEAD_BYTES;
        assert_eq!(ReadPlan::reservation(4, bound, 100 * MIB, 8 * MIB), 4 * MIB);
        assert_eq!(ReadPlan::reservation(128, bound, 5 * MIB, 8 * MIB), 5 * MIB);
        assert_eq!(
            ReadPlan::reservation(128, bound, 100 * MIB, 8 * MIB),
            8 * MIB
        );
        // Less than one record free: wait for one.
        assert_eq!(ReadPlan::reservation(128, bound, 1000, 8 * MIB), MIB);
        // Never more than a budget holds, even for one huge record.
        assert_eq!(ReadPlan::reservation(1, 64 * MIB, 0, 8 * MIB), 8 * MIB);
    }
}
