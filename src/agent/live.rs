//! Per-connection bookkeeping of one subscription: the window the relay granted,
//! events received but not started, deliveries in flight, and acks gathered but not
//! sent. Pure state, no I/O: the session ([`crate::agent::session`]) reads and writes
//! the socket around it.

use std::collections::VecDeque;

use crate::common::protocol::ClientMsg;

/// Acks of consecutive offsets not sent yet, gathered into one run `(first, last)`, so
/// that a burst of events costs the relay one `AckRange` to read, not one `Ack` each.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AckRun(Option<(u64, u64)>);

impl AckRun {
    /// Adds `offset`. When it does not extend the run, the run so far is returned (to be
    /// sent now, before it) and a new run starts at `offset`.
    pub fn push(&mut self, offset: u64) -> Option<(u64, u64)> {
        match &mut self.0 {
            Some((_, last)) if last.checked_add(1) == Some(offset) => {
                *last = offset;
                None
            }
            run => run.replace((offset, offset)),
        }
    }

    /// The gathered run, leaving none.
    pub fn take(&mut self) -> Option<(u64, u64)> {
        self.0.take()
    }
}

/// The frame acknowledging `run` on subscription `sub`: `Ack` for one offset,
/// `AckRange` for more.
pub fn ack_frame(sub: u32, (first, last): (u64, u64)) -> ClientMsg {
    if first == last {
        ClientMsg::Ack { sub, offset: first }
    } else {
        ClientMsg::AckRange { sub, first, last }
    }
}

/// The relay sent more events than a window it granted allows: a broken relay, not a
/// reason to buffer without bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the relay exceeded the window")]
pub struct WindowExceeded;

/// Per-connection state of one subscription.
#[derive(Debug, Default)]
pub struct Live {
    /// The window the relay granted (at least 1 once subscribed).
    window: u32,
    /// Events received and not started yet, in offset order.
    pending: VecDeque<(u64, Vec<u8>)>,
    /// Events started and not finished yet.
    in_flight: u32,
    /// The relay said the range ended (`End`), or `--until` was reached.
    ended: bool,
    /// Acks gathered for the next flush.
    pub acks: AckRun,
}

impl Live {
    /// The relay granted `window` (a broken relay's 0 counts as 1).
    pub fn subscribed(&mut self, window: u32) {
        self.window = window.max(1);
    }

    /// Queues a received event. The relay keeps at most `window` unacknowledged, and
    /// some of those may be acked but not yet known to the relay; anything past twice
    /// the window is refused.
    pub fn queue(&mut self, offset: u64, record: Vec<u8>) -> Result<(), WindowExceeded> {
        let held = self.pending.len() + self.in_flight as usize;
        if held >= 2 * self.window.max(1) as usize {
            return Err(WindowExceeded);
        }
        self.pending.push_back((offset, record));
        Ok(())
    }

    /// The next event to start while fewer than `concurrency` run; it counts as in
    /// flight until [`Live::finish_one`].
    pub fn start_next(&mut self, concurrency: u32) -> Option<(u64, Vec<u8>)> {
        if self.in_flight >= concurrency {
            return None;
        }
        let next = self.pending.pop_front()?;
        self.in_flight += 1;
        Some(next)
    }

    /// One event started with [`Live::start_next`] finished.
    pub fn finish_one(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// Drops the events not started (at shutdown: unacked, so the relay sends them again).
    pub fn drop_pending(&mut self) {
        self.pending.clear();
    }

    /// The range ended: nothing more will be taken.
    pub fn end(&mut self) {
        self.ended = true;
    }

    /// Whether the relay sent `End` and every event was taken.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// The range ended and everything taken from it is finished.
    pub fn is_done(&self) -> bool {
        self.ended && self.in_flight == 0 && self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_acks_coalesce_into_one_run() {
        let mut run = AckRun::default();
        assert_eq!(run.push(3), None);
        assert_eq!(run.push(4), None);
        assert_eq!(run.push(5), None);
        assert_eq!(run.take(), Some((3, 5)));
        assert_eq!(run.take(), None);
    }

    #[test]
    fn a_gap_or_a_step_back_sends_the_run_so_far() {
        let mut run = AckRun::default();
        run.push(1);
        run.push(2);
        assert_eq!(run.push(4), Some((1, 2)), "gap");
        assert_eq!(run.push(3), Some((4, 4)), "out of order");
        assert_eq!(run.push(3), Some((3, 3)), "repeat");
        assert_eq!(run.take(), Some((3, 3)));
        // The end of the offset space does not wrap around.
        let mut run = AckRun::default();
        run.push(u64::MAX);
        assert_eq!(run.push(0), Some((u64::MAX, u64::MAX)));
    }

    #[test]
    fn one_offset_is_an_ack_and_more_a_range() {
        assert_eq!(ack_frame(2, (7, 7)), ClientMsg::Ack { sub: 2, offset: 7 });
        assert_eq!(
            ack_frame(2, (7, 9)),
            ClientMsg::AckRange {
                sub: 2,
                first: 7,
                last: 9
            }
        );
    }

    #[test]
    fn the_window_bounds_what_is_held() {
        let mut live = Live::default();
        live.subscribed(2);
        for offset in 1..=4 {
            live.queue(offset, vec![]).expect("within twice the window");
        }
        assert_eq!(live.queue(5, vec![]), Err(WindowExceeded));
        // Started events still count; finished ones return the room.
        assert!(live.start_next(1).is_some());
        assert_eq!(live.queue(5, vec![]), Err(WindowExceeded));
        live.finish_one();
        assert_eq!(live.queue(5, vec![]), Ok(()));
    }

    #[test]
    fn a_zero_window_counts_as_one() {
        let mut live = Live::default();
        live.subscribed(0);
        live.queue(1, vec![]).expect("one");
        live.queue(2, vec![]).expect("two");
        assert_eq!(live.queue(3, vec![]), Err(WindowExceeded));
    }

    #[test]
    fn deliveries_start_in_order_up_to_the_concurrency() {
        let mut live = Live::default();
        live.subscribed(8);
        for offset in 1..=3 {
            live.queue(offset, vec![offset as u8]).expect("queue");
        }
        assert_eq!(live.start_next(2), Some((1, vec![1])));
        assert_eq!(live.start_next(2), Some((2, vec![2])));
        assert_eq!(live.start_next(2), None, "two in flight");
        live.finish_one();
        assert_eq!(live.start_next(2), Some((3, vec![3])));
        assert_eq!(live.start_next(2), None, "nothing pending");
    }

    #[test]
    fn done_once_ended_and_empty() {
        let mut live = Live::default();
        live.subscribed(4);
        live.queue(1, vec![]).expect("queue");
        live.queue(2, vec![]).expect("queue");
        live.start_next(1);
        live.end();
        assert!(live.ended() && !live.is_done());
        live.drop_pending();
        assert!(!live.is_done(), "one still in flight");
        live.finish_one();
        assert!(live.is_done());
        live.finish_one();
        assert!(live.is_done(), "an extra finish does not underflow");
    }
}
