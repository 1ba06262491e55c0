//! Cursor moves from acks wait briefly for the next group commit instead of paying for
//! one of their own.
//!
//! Nobody waits on an ack's cursor write ([`crate::storage::Storage::advance_cursor`]
//! has no answer; the hub keeps a group's position in memory until a sync made it
//! durable). At a webhook trickle each event costs one commit for its append and,
//! half a millisecond later, a second one for its ack's cursor — a second flush and
//! `fdatasync`. So the committer holds such writes back, coalesced per group (cursors
//! from acks only move forward, so the largest wins), and stages them first into the
//! next batch it writes for any other reason — usually the next event's append — or on
//! their own once the oldest has waited [`CURSOR_LINGER_MS`] or a group's cursor has
//! [`CURSOR_LINGER_EVENTS`] acknowledged events not yet durable. What that bounds: after
//! a relay crash, a group may see again its in-flight window plus at most that many
//! acknowledged events (or those acknowledged within that time). Resets and every
//! write with an answer are never held back, and a sync makes held writes durable too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

/// Longest a cursor move from an ack waits for another batch's flush.
pub const CURSOR_LINGER_MS: u64 = 10;

/// Most acknowledged events of one group whose cursor move may wait.
pub const CURSOR_LINGER_EVENTS: u64 = 32;

/// A group's held-back cursor: the first and the largest offset held.
struct Held {
    first: u64,
    largest: u64,
}

/// Cursor moves held back, per channel and group, and since when.
#[derive(Default)]
pub(crate) struct Linger {
    held: HashMap<String, HashMap<String, Held>>,
    since: Option<Instant>,
    /// A group reached [`CURSOR_LINGER_EVENTS`]: write at once.
    full: bool,
}

impl Linger {
    /// Holds back a forward move of a group's cursor to `offset`. Allocates only for a
    /// group not held yet: under load, a group's acks between two batches share one
    /// entry.
    pub fn hold(&mut self, channel: &str, group: &str, offset: u64) {
        let span = match self.held.get_mut(channel).and_then(|g| g.get_mut(group)) {
            Some(h) => {
                h.first = h.first.min(offset);
                h.largest = h.largest.max(offset);
                h.largest - h.first + 1
            }
            None => {
                let h = Held {
                    first: offset,
                    largest: offset,
                };
                let groups = self.held.entry(channel.to_string()).or_default();
                groups.insert(group.to_string(), h);
                1
            }
        };
        if span >= CURSOR_LINGER_EVENTS {
            self.full = true;
        }
        self.since.get_or_insert_with(Instant::now);
    }

    /// Drops what is held for one group.
    pub fn forget(&mut self, channel: &str, group: &str) {
        if let Some(groups) = self.held.get_mut(channel) {
            groups.remove(group);
            if groups.is_empty() {
                self.held.remove(channel);
            }
        }
        if self.held.is_empty() {
            self.since = None;
            self.full = false;
        }
    }

    /// When the held writes must be written at the latest (`None`: nothing held).
    pub fn deadline(&self) -> Option<Instant> {
        let since = self.since?;
        if self.full {
            return Some(since);
        }
        Some(since + Duration::from_millis(CURSOR_LINGER_MS))
    }

    /// Everything held, as (channel, group, offset); empties the linger.
    pub fn take(&mut self) -> Vec<(String, String, u64)> {
        self.since = None;
        self.full = false;
        let mut out = Vec::new();
        for (channel, groups) in self.held.drain() {
            for (group, h) in groups {
                out.push((channel.clone(), group, h.largest));
            }
        }
        out
    }
}

/// The linger, shared by every storage handle (which hold acks' cursor moves in it
/// directly) and the committer (which writes them with its next batch).
///
/// Why not the committer's queue: a send on it wakes the committer's thread. At a
/// trickle each ack then cost a wake-up, a look at the queue and a timed park of the
/// committer, only to hold the move for the next event's batch — two futex calls and
/// two context switches per event (issue 17's profile). Holding it here wakes nobody
/// while the committer is anyway due to look again within [`CURSOR_LINGER_MS`]: after
/// each batch it waits with that deadline. Only a move held while it sleeps without a
/// deadline (the relay went quiet) nudges it through the queue.
#[derive(Default)]
pub(crate) struct SharedLinger(Mutex<State>);

#[derive(Default)]
struct State {
    linger: Linger,
    /// The committer will look at the linger by itself within [`CURSOR_LINGER_MS`].
    committer_will_look: bool,
    /// Forced cursor writes (resets) queued and not yet taken off the queue: while
    /// there are any, acks' moves go through the queue too (see [`SharedLinger::hold`]).
    resets_queued: usize,
}

/// What [`SharedLinger::hold`] did with a cursor move.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Holding {
    /// Held; the committer writes it in time by itself.
    Held,
    /// Held; the committer sleeps without a deadline and must be nudged.
    HeldNudge,
    /// Not held: a reset is queued, so the move must be queued behind it.
    Queue,
}

impl SharedLinger {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves at worst an extra or a missing held
        // move; cursors only bound redelivery, so the state stays usable.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Holds an ack's cursor move, unless a reset is queued: then the move must keep
    /// its place behind the reset, in the queue.
    pub fn hold(&self, channel: &str, group: &str, offset: u64) -> Holding {
        let mut s = self.lock();
        if s.resets_queued > 0 {
            return Holding::Queue;
        }
        s.linger.hold(channel, group, offset);
        if !s.committer_will_look || s.linger.full {
            Holding::HeldNudge
        } else {
            Holding::Held
        }
    }

    /// A forced cursor write (a reset) for this group is being queued.
    ///
    /// The order this keeps is the queue's: what is held for the group was
    /// acknowledged before the reset and must not be written after it, so it is
    /// dropped; and until the committer takes the reset off the queue
    /// ([`SharedLinger::reset_taken`]), acks' moves are queued behind it instead of
    /// held. The committer takes the held moves before it drains the queue and stages
    /// them first, so nothing held is ever staged after a reset that came before it.
    pub fn reset_queued(&self, channel: &str, group: &str) {
        let mut s = self.lock();
        s.linger.forget(channel, group);
        s.resets_queued += 1;
    }

    /// The committer has committed a reset it took off its queue.
    pub fn reset_taken(&self) {
        let mut s = self.lock();
        s.resets_queued = s.resets_queued.saturating_sub(1);
    }

    /// Takes everything held (the committer, for the batch it is about to write).
    pub fn take(&self) -> Vec<(String, String, u64)> {
        self.lock().linger.take()
    }

    /// When the held moves are due (`None`: nothing held).
    pub fn deadline(&self) -> Option<Instant> {
        self.lock().linger.deadline()
    }

    /// The committer will look again by itself within [`CURSOR_LINGER_MS`].
    pub fn committer_will_look(&self) {
        self.lock().committer_will_look = true;
    }

    /// The committer is about to sleep without a deadline: `true` if it may (nothing is
    /// held), and from then on every hold nudges it; `false` if moves are held.
    pub fn committer_may_sleep(&self) -> bool {
        let mut s = self.lock();
        if s.linger.since.is_some() {
            return false;
        }
        s.committer_will_look = false;
        true
    }
}

/// What a wait on the queue with a deadline gave.
pub(crate) enum Received<T> {
    Op(T),
    /// Every sender is gone.
    Closed,
    TimedOut,
}

/// Wakes a thread parked in [`recv_until`].
struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// `blocking_recv` with a deadline, for the committer's own thread (tokio's receiver
/// has none outside a runtime): polls, and parks until woken or the deadline.
pub(crate) fn recv_until<T>(rx: &mut mpsc::Receiver<T>, deadline: Instant) -> Received<T> {
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        match rx.poll_recv(&mut cx) {
            Poll::Ready(Some(op)) => return Received::Op(op),
            Poll::Ready(None) => return Received::Closed,
            Poll::Pending => {}
        }
        let now = Instant::now();
        if now >= deadline {
            return Received::TimedOut;
        }
        // A spurious or stale unpark only costs another poll.
        std::thread::park_timeout(deadline - now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_held_offset_per_group_is_written() {
        let mut l = Linger::default();
        assert!(l.deadline().is_none());
        l.hold("c", "g", 5);
        l.hold("c", "g", 4);
        l.hold("c", "h", 1);
        let mut taken = l.take();
        taken.sort();
        assert_eq!(
            taken,
            vec![("c".into(), "g".into(), 5), ("c".into(), "h".into(), 1)]
        );
        assert!(l.deadline().is_none(), "taking empties it");
    }

    #[test]
    fn the_deadline_is_the_linger_unless_a_group_holds_too_many_events() {
        let mut l = Linger::default();
        l.hold("c", "g", 1);
        let since = l.since.expect("held since");
        assert_eq!(
            l.deadline(),
            Some(since + Duration::from_millis(CURSOR_LINGER_MS))
        );
        l.hold("c", "g", CURSOR_LINGER_EVENTS);
        assert_eq!(l.deadline(), Some(since), "full: write at once");
    }

    #[test]
    fn a_hold_nudges_only_a_sleeping_committer_or_a_full_group_and_queues_behind_a_reset() {
        let l = SharedLinger::default();
        assert_eq!(l.hold("c", "g", 1), Holding::HeldNudge, "asleep: nudge");
        l.committer_will_look();
        assert_eq!(l.hold("c", "g", 2), Holding::Held, "it looks by itself");
        assert_eq!(
            l.hold("c", "g", CURSOR_LINGER_EVENTS),
            Holding::HeldNudge,
            "a full group is due at once"
        );
        assert!(!l.committer_may_sleep(), "moves are held");
        l.reset_queued("c", "g");
        assert!(l.take().is_empty(), "a reset drops what it overrides");
        assert_eq!(l.hold("c", "g", 5), Holding::Queue, "behind the reset");
        l.reset_taken();
        assert_eq!(l.hold("c", "g", 6), Holding::Held);
        assert_eq!(l.take(), vec![("c".into(), "g".into(), 6)]);
        assert!(l.committer_may_sleep(), "nothing held");
        assert_eq!(l.hold("c", "g", 7), Holding::HeldNudge, "asleep again");
    }

    #[test]
    fn recv_until_returns_an_op_sent_from_another_thread_or_times_out() {
        let (tx, mut rx) = mpsc::channel::<u32>(1);
        let start = Instant::now();
        let wait = Duration::from_millis(20);
        assert!(matches!(
            recv_until(&mut rx, start + wait),
            Received::TimedOut
        ));
        assert!(start.elapsed() >= wait);
        let sender = std::thread::spawn(move || tx.blocking_send(7).expect("send"));
        let far = Instant::now() + Duration::from_secs(30);
        assert!(matches!(recv_until(&mut rx, far), Received::Op(7)));
        sender.join().expect("sender");
        assert!(matches!(recv_until(&mut rx, far), Received::Closed));
    }
}
