//! At a webhook trickle, an append is committed by the task that made it.
//!
//! The committer ([`super::commit::Committer`]) sits behind a lock that two kinds of
//! callers take in turn: its own thread, which writes whatever queued up as one group
//! commit ([`super::thread`]), and an appending task that finds the log idle.
//!
//! Why: handing an append to the committer's thread and its answer back costs two
//! thread wake-ups per event (a futex wake of the thread, then an eventfd wake of the
//! async worker), each with its context switches. When events arrive one at a time
//! there is nothing to group, so that hand-over buys nothing. Measured on 2 cores at
//! 400 events/s (docs/benchmarks.md, "An idle log's append committed by its own
//! task"): the relay's CPU per event fell by 12–17 %.
//!
//! When: only while the log is idle — the lock is free, nothing is queued, and the
//! last batch ended at least [`IDLE_BEFORE_INLINE`] ago — and the disk is fast (the
//! last write took at most [`SLOWEST_INLINE_WRITE`]; both in [`super::pace`]). The
//! commit blocks the async worker for one write and `fdatasync`. Under load that would
//! stop the worker from reading the very requests a group commit should gather (a
//! prototype without the idle test fell from ~34,000 to ~4,500 events/s at full
//! speed); but under load the last batch always ended just now, so appends queue and
//! are grouped as before. On a slow disk it would hold up the worker's other tasks for
//! longer than the hand-over costs, hence the second test.
//!
//! The price: a disk that hangs in the middle of an inline commit holds that worker
//! (with one worker, the whole relay: health, metrics, console) until the write
//! returns, where the thread would have let the append time out after
//! [`super::APPEND_TIMEOUT`] with a 503 and kept the rest answering. A relay whose
//! disk hangs cannot take events either way; the last write having been fast is the
//! guard against a disk already known to be slow.
//!
//! Why the order of writes stays right: the inline commit takes the acks' held cursor
//! moves (as the thread does, under the same lock) and only when the queue was empty,
//! so no queued reset is overtaken (see [`super::linger::SharedLinger::reset_queued`]). An
//! append that overtakes one the thread has just taken off the queue was concurrent
//! with it: either order is an order the two requests could have arrived in.

use std::time::Instant;

use super::commit::Op;
#[cfg(doc)]
use super::pace::{IDLE_BEFORE_INLINE, SLOWEST_INLINE_WRITE};
use super::SledStorage;

impl SledStorage {
    /// Commits `op` on the calling thread if the log is idle (see the module doc), and
    /// answers it through its reply (`None`); gives it back to be queued otherwise.
    pub(super) fn commit_inline(&self, op: Op) -> Option<Op> {
        // The queue first: under load it is rarely empty, and reading it does not
        // contend for the lock the thread is about to take. A reset queued right after
        // this look is committed after this append: what is held for its group was
        // dropped when it was queued, and later moves queue behind it.
        if !self.queue_is_empty() {
            return Some(op);
        }
        let Ok(mut committer) = self.committer.try_lock() else {
            return Some(op);
        };
        if !committer.pace().allows_inline(Instant::now()) {
            return Some(op);
        }
        let held = self.linger.take();
        committer.commit(held, &mut vec![op]);
        None
    }

    /// Nothing waits in the committer's queue (a nudge counts: the thread is due).
    pub(super) fn queue_is_empty(&self) -> bool {
        self.tx.capacity() == self.tx.max_capacity()
    }
}
