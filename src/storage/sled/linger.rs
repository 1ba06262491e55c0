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
use std::sync::Arc;
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

/// Cursor moves held back, per (channel, group), and since when.
#[derive(Default)]
pub(crate) struct Linger {
    held: HashMap<(String, String), Held>,
    since: Option<Instant>,
    /// A group reached [`CURSOR_LINGER_EVENTS`]: write at once.
    full: bool,
}

impl Linger {
    /// Holds back a forward move of a group's cursor to `offset`.
    pub fn hold(&mut self, channel: String, group: String, offset: u64) {
        let h = self.held.entry((channel, group)).or_insert(Held {
            first: offset,
            largest: offset,
        });
        h.first = h.first.min(offset);
        h.largest = h.largest.max(offset);
        if h.largest - h.first + 1 >= CURSOR_LINGER_EVENTS {
            self.full = true;
        }
        self.since.get_or_insert_with(Instant::now);
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
        self.held
            .drain()
            .map(|((channel, group), h)| (channel, group, h.largest))
            .collect()
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
        l.hold("c".into(), "g".into(), 5);
        l.hold("c".into(), "g".into(), 4);
        l.hold("c".into(), "h".into(), 1);
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
        l.hold("c".into(), "g".into(), 1);
        let since = l.since.expect("held since");
        assert_eq!(
            l.deadline(),
            Some(since + Duration::from_millis(CURSOR_LINGER_MS))
        );
        l.hold("c".into(), "g".into(), CURSOR_LINGER_EVENTS);
        assert_eq!(l.deadline(), Some(since), "full: write at once");
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
