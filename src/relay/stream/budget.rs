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
//! be ([`ReadPlan::record_bound`]), reads no more than that reservation can cover, and
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

/// How one chunk of events is read from the log: in calls whose events, even at their
/// largest, fit what was reserved for the chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReadPlan {
    /// Most events in the chunk (the free window, the chunk size).
    pub events: usize,
    /// Bytes reserved for the chunk.
    pub reserved: usize,
    /// The largest a stored record may be.
    pub record_bound: usize,
    /// The chunk is complete once it holds this many bytes: large events go a few at a
    /// time, so the subscriptions of a connection take turns on its socket.
    pub target: usize,
    /// The size the chunk's first events are expected to have (the last chunk's average).
    pub estimate: usize,
}

impl ReadPlan {
    /// The bytes to reserve for a chunk of at most `events` events: enough for all of
    /// them at their largest if the budget has that much free now, else what is free,
    /// but at least one record at its largest (waiting for it if need be).
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

    /// How many events the next log call may return, with the chunk holding `events`
    /// events of `bytes` bytes so far; 0 when the chunk is complete. The first call
    /// always reads one event, even one larger than the whole budget.
    pub(crate) fn next_count(&self, events: usize, bytes: usize) -> usize {
        let frame = self
            .record_bound
            .saturating_add(EVENT_FRAME_OVERHEAD_BYTES)
            .max(1);
        let room = self.reserved.saturating_sub(bytes) / frame;
        // Once the chunk has events, their average is the better guess.
        let estimate = match events {
            0 => self.estimate,
            n => bytes / n,
        };
        let toward_target = self.target.saturating_sub(bytes).div_ceil(estimate.max(1));
        let count = room
            .min(toward_target)
            .min(self.events.saturating_sub(events));
        if events == 0 {
            count.max(1).min(self.events)
        } else {
            count
        }
    }
}

impl ReadPlan {
    /// Reads a chunk from `from`, no further than offset `last`, with `read(from, count)`
    /// — the log's read of up to `count` events from `from`, in order — called as often
    /// as [`ReadPlan::next_count`] allows.
    pub(crate) fn read<E>(
        self,
        mut from: u64,
        last: u64,
        mut read: impl FnMut(u64, usize) -> Result<Vec<(u64, Vec<u8>)>, E>,
    ) -> Result<Vec<(u64, Vec<u8>)>, E> {
        let mut chunk = Vec::new();
        let mut bytes = 0usize;
        while from <= last {
            let left = usize::try_from(last - from).map_or(usize::MAX, |n| n.saturating_add(1));
            let count = self.next_count(chunk.len(), bytes).min(left);
            if count == 0 {
                break;
            }
            let part = read(from, count)?;
            let complete = part.len() < count;
            for (offset, record) in part {
                if offset > last {
                    // Past a gap that retention left: not this chunk's.
                    return Ok(chunk);
                }
                bytes = bytes.saturating_add(record.len() + EVENT_FRAME_OVERHEAD_BYTES);
                from = offset.saturating_add(1);
                chunk.push((offset, record));
            }
            if complete {
                // The log has nothing more for now.
                break;
            }
        }
        Ok(chunk)
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

    #[test]
    fn reads_are_sized_by_bytes() {
        let plan = ReadPlan {
            events: 128,
            reserved: 8 * MIB,
            record_bound: MIB - EVENT_FRAME_OVERHEAD_BYTES,
            target: MIB,
            estimate: 200,
        };
        // Small events: as many per call as the reservation covers at their largest.
        assert_eq!(plan.next_count(0, 0), 8);
        assert_eq!(plan.next_count(8, 1600), 7);
        assert_eq!(plan.next_count(120, 24_000), 7);
        assert_eq!(plan.next_count(127, 25_400), 1, "the chunk is full at 128");
        assert_eq!(plan.next_count(128, 25_600), 0);
        // Large events: a few toward the target, never beyond the reservation.
        let large = ReadPlan {
            estimate: 512 * 1024,
            ..plan
        };
        assert_eq!(large.next_count(0, 0), 2);
        assert_eq!(large.next_count(1, 512 * 1024), 1);
        assert_eq!(large.next_count(2, MIB), 0, "the target is reached");
        // Nothing is free beyond one record: one event per chunk.
        let tight = ReadPlan {
            reserved: MIB,
            ..plan
        };
        assert_eq!(tight.next_count(0, 0), 1);
        assert_eq!(tight.next_count(1, 200), 0);
        // A record larger than the whole reservation is still read, alone.
        let huge = ReadPlan {
            reserved: 1000,
            ..plan
        };
        assert_eq!(huge.next_count(0, 0), 1);
        assert_eq!(huge.next_count(1, 5 * MIB), 0);
        let none = ReadPlan { events: 0, ..plan };
        assert_eq!(none.next_count(0, 0), 0);
    }

    /// A log of `sizes[i]`-byte records at offsets `1..`, recording the calls made to it.
    struct FakeLog {
        sizes: Vec<usize>,
        calls: Vec<(u64, usize)>,
    }

    impl FakeLog {
        fn new(sizes: Vec<usize>) -> FakeLog {
            FakeLog {
                sizes,
                calls: Vec::new(),
            }
        }

        fn read(&mut self, from: u64, count: usize) -> Result<Vec<(u64, Vec<u8>)>, ()> {
            self.calls.push((from, count));
            let skip = from.saturating_sub(1) as usize;
            Ok(self
                .sizes
                .iter()
                .enumerate()
                .skip(skip)
                .take(count)
                .map(|(i, &n)| (i as u64 + 1, vec![0u8; n]))
                .collect())
        }
    }

    #[test]
    fn a_chunk_is_read_in_calls_that_the_reservation_covers() {
        let plan = ReadPlan {
            events: 20,
            reserved: 4 * MIB,
            record_bound: MIB - EVENT_FRAME_OVERHEAD_BYTES,
            target: MIB,
            estimate: 100,
        };
        let mut log = FakeLog::new(vec![100; 50]);
        let chunk = plan.read(1, u64::MAX, |f, c| log.read(f, c)).expect("read");
        let offsets: Vec<u64> = chunk.iter().map(|e| e.0).collect();
        assert_eq!(offsets, (1..=20).collect::<Vec<_>>());
        assert_eq!(
            log.calls,
            [(1, 4), (5, 3), (8, 3), (11, 3), (14, 3), (17, 3), (20, 1)]
        );

        // Large records after small ones: never more than the reservation.
        let mut sizes = vec![100; 3];
        sizes.extend([900 * 1024; 10]);
        let mut log = FakeLog::new(sizes);
        let chunk = plan.read(1, u64::MAX, |f, c| log.read(f, c)).expect("read");
        let bytes: usize = chunk.iter().map(|e| e.1.len()).sum();
        assert!(bytes <= plan.reserved, "{bytes}");
        assert_eq!(chunk.len(), 5, "3 small and 2 large reach the target");

        // No further than `last`, and no further than the log.
        let mut log = FakeLog::new(vec![10; 50]);
        let chunk = plan.read(1, 3, |f, c| log.read(f, c)).expect("read");
        assert_eq!(chunk.len(), 3);
        assert_eq!(log.calls, [(1, 3)]);
        let mut log = FakeLog::new(vec![10; 2]);
        let chunk = plan.read(1, u64::MAX, |f, c| log.read(f, c)).expect("read");
        assert_eq!(chunk.len(), 2);
        assert_eq!(log.calls.len(), 1, "a short answer ends the chunk");
    }
}
