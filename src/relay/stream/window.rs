//! The window and acknowledgement bookkeeping of one subscription: pure state, no I/O.
//!
//! A subscription may have at most `size` events *outstanding* — sent and not yet
//! covered by the contiguous acknowledged prefix. Counting the span, not just the
//! unacknowledged ones, keeps this bookkeeping (and so the relay's memory) bounded by
//! the window even when one event is stuck and later ones are acknowledged.
//!
//! Three kinds of events count against the window:
//!
//! - **in flight**: sent normally, in offset order, each either pending or settled
//!   (acked or nacked). Settling moves the *prefix* — the last offset of the contiguous
//!   settled run at the front — which is what the group's cursor may move to;
//! - **stale**: in flight when the group was reset. Their acks and nacks only return
//!   window credit;
//! - **redriving**: dead letters sent again (below the cursor). Their acks and nacks
//!   settle the redrive, never the prefix.
//!
//! The pending redrives not sent yet (the *redrive queue*) live here too, so that the
//! choice of what to redrive next sees what is in flight.
//!
//! The subscription task ([`super::subscription`]) does everything else: reading the
//! log, sending, moving the cursor and recording dead letters with what this type tells
//! it.

use std::collections::{BTreeSet, VecDeque};

/// What an ack or a nack of one offset is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Claim {
    /// An event sent before a reset: its window credit is returned, nothing else.
    Stale,
    /// A redriven event: its credit is returned; the caller settles the redrive.
    Redriven,
    /// An event in flight and not settled: settle it with [`Window::settle`].
    Pending,
    /// Not outstanding: never sent, or settled already.
    Unknown,
}

/// What became of an acknowledged range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RangeAck {
    /// Every offset of the range was in flight and is now settled; `prefix` is the new
    /// end of the settled prefix if it moved.
    Settled { count: usize, prefix: Option<u64> },
    /// Stale or redriven events are in play: the caller settles each offset of the
    /// range like a single ack. The range is no longer than what is outstanding.
    OneByOne,
}

/// An ack or nack named an offset that is not outstanding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NotInFlight(pub u64);

/// The window of one subscription (see the module doc).
#[derive(Debug)]
pub(crate) struct Window {
    size: usize,
    /// Sent events not yet covered by the settled prefix, in offset order, each with
    /// whether it was settled already.
    inflight: VecDeque<(u64, bool)>,
    /// Events sent before a reset and not settled yet.
    stale: Vec<u64>,
    /// Redriven events sent and not settled yet.
    redriving: Vec<u64>,
    /// Pending redrives not sent yet.
    redrive_queue: BTreeSet<u64>,
}

impl Window {
    /// An empty window of `size` events (at least one).
    pub(crate) fn new(size: usize) -> Window {
        Window {
            size: size.max(1),
            inflight: VecDeque::new(),
            stale: Vec::new(),
            redriving: Vec::new(),
            redrive_queue: BTreeSet::new(),
        }
    }

    /// The granted window, in events.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// Events the agent holds unsettled: they all count against the window.
    pub(crate) fn outstanding(&self) -> usize {
        self.inflight.len() + self.stale.len() + self.redriving.len()
    }

    /// Free room in the window.
    pub(crate) fn free(&self) -> usize {
        self.size.saturating_sub(self.outstanding())
    }

    /// An event was sent normally. Offsets sent this way strictly increase (until a
    /// [`Window::reset`]): the lookups are binary searches.
    pub(crate) fn sent(&mut self, offset: u64) {
        debug_assert!(self.inflight.back().is_none_or(|&(last, _)| offset > last));
        self.inflight.push_back((offset, false));
    }

    /// What an ack or nack of `offset` is about. A stale or redriven event stops being
    /// outstanding here; a pending one only once [`Window::settle`]d.
    pub(crate) fn claim(&mut self, offset: u64) -> Claim {
        if let Some(i) = self.stale.iter().position(|&o| o == offset) {
            self.stale.swap_remove(i);
            return Claim::Stale;
        }
        if let Some(i) = self.redriving.iter().position(|&o| o == offset) {
            self.redriving.swap_remove(i);
            return Claim::Redriven;
        }
        if self.pending(offset) {
            Claim::Pending
        } else {
            Claim::Unknown
        }
    }

    /// Settles the in-flight `offset` (an ack or a nack) and drops the settled prefix.
    /// Returns the prefix's new end if it moved: the cursor may move there.
    pub(crate) fn settle(&mut self, offset: u64) -> Result<Option<u64>, NotInFlight> {
        let slot = self
            .inflight
            .binary_search_by_key(&offset, |e| e.0)
            .ok()
            .and_then(|i| self.inflight.get_mut(i))
            .filter(|e| !e.1);
        match slot {
            Some(e) => e.1 = true,
            None => return Err(NotInFlight(offset)),
        }
        Ok(self.advance_prefix())
    }

    /// An ack of `first..=last`. Every offset must be outstanding, so a range is never
    /// longer than the window: that is checked first, so a hostile range (`0..=u64::MAX`)
    /// costs nothing. In the common case (no reset, no redrive in play) the range is
    /// checked and settled at once; otherwise the caller settles each offset.
    pub(crate) fn ack_range(&mut self, first: u64, last: u64) -> Result<RangeAck, NotInFlight> {
        let Some(count) = last
            .checked_sub(first)
            .and_then(|d| usize::try_from(d).ok())
            .and_then(|d| d.checked_add(1))
            .filter(|&n| n <= self.outstanding())
        else {
            return Err(NotInFlight(first));
        };
        if !(self.stale.is_empty() && self.redriving.is_empty() && self.redrive_queue.is_empty()) {
            return Ok(RangeAck::OneByOne);
        }
        let start = self
            .inflight
            .binary_search_by_key(&first, |e| e.0)
            .map_err(|_| NotInFlight(first))?;
        // Offsets in flight strictly increase, so matching both ends and the length
        // means every offset in between is there.
        if self.inflight.get(start + count - 1).map(|e| e.0) != Some(last) {
            return Err(NotInFlight(last));
        }
        let span = self.inflight.range(start..start + count);
        if let Some(&(settled, _)) = span.clone().find(|e| e.1) {
            return Err(NotInFlight(settled));
        }
        for e in self.inflight.range_mut(start..start + count) {
            e.1 = true;
        }
        let prefix = self.advance_prefix();
        Ok(RangeAck::Settled { count, prefix })
    }

    /// The group was reset: what was in flight and unsettled becomes stale, and normal
    /// delivery starts over (at any offset). Returns how many events are stale now.
    pub(crate) fn reset(&mut self) -> usize {
        let unsettled = self.inflight.drain(..).filter(|e| !e.1).map(|e| e.0);
        self.stale.extend(unsettled);
        self.stale.len()
    }

    /// Replaces the redrive queue with the group's pending redrives, less those being
    /// redriven already.
    pub(crate) fn queue_redrives(&mut self, marked: impl IntoIterator<Item = u64>) {
        let redriving = &self.redriving;
        self.redrive_queue = marked
            .into_iter()
            .filter(|o| !redriving.contains(o))
            .collect();
    }

    /// Takes the lowest queued redrive below `next` that the agent does not hold in
    /// flight or stale, if the window has room. Anything at or after `next` is about to
    /// be delivered normally anyway, which settles its redrive (see
    /// [`Window::unqueue_redrive`]).
    pub(crate) fn take_redrive(&mut self, next: u64) -> Option<u64> {
        if self.free() == 0 {
            return None;
        }
        let pick = self.redrive_queue.range(..next).copied().find(|o| {
            self.inflight.binary_search_by_key(o, |e| e.0).is_err() && !self.stale.contains(o)
        })?;
        self.redrive_queue.remove(&pick);
        Some(pick)
    }

    /// A redrive taken with [`Window::take_redrive`] was sent.
    pub(crate) fn redrive_sent(&mut self, offset: u64) {
        self.redriving.push(offset);
    }

    /// Removes `offset` from the redrive queue; true if it was queued (then its normal
    /// delivery settles the redrive too, so it is not sent twice).
    pub(crate) fn unqueue_redrive(&mut self, offset: u64) -> bool {
        self.redrive_queue.remove(&offset)
    }

    /// Whether `offset` is in flight and not yet settled.
    fn pending(&self, offset: u64) -> bool {
        self.inflight
            .binary_search_by_key(&offset, |e| e.0)
            .ok()
            .and_then(|i| self.inflight.get(i))
            .is_some_and(|e| !e.1)
    }

    /// Drops the settled prefix of the in-flight events; its last offset, if any.
    fn advance_prefix(&mut self) -> Option<u64> {
        let mut prefix = None;
        while let Some(&(o, true)) = self.inflight.front() {
            prefix = Some(o);
            self.inflight.pop_front();
        }
        prefix
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A window of `size` with `offsets` sent.
    fn sent(size: usize, offsets: impl IntoIterator<Item = u64>) -> Window {
        let mut w = Window::new(size);
        for o in offsets {
            w.sent(o);
        }
        w
    }

    /// Claims and settles `offset` like an ack of a pending event.
    fn ack(w: &mut Window, offset: u64) -> Result<Option<u64>, NotInFlight> {
        match w.claim(offset) {
            Claim::Pending => w.settle(offset),
            other => panic!("offset {offset} is {other:?}, not pending"),
        }
    }

    #[test]
    fn the_window_counts_what_is_outstanding() {
        let mut w = Window::new(0);
        assert_eq!((w.size(), w.free()), (1, 1), "a window is at least one");
        w.sent(1);
        assert_eq!((w.outstanding(), w.free()), (1, 0));
        let w = sent(4, [5, 6, 7]);
        assert_eq!((w.outstanding(), w.free()), (3, 1));
    }

    #[test]
    fn acks_in_order_move_the_prefix_one_by_one() {
        let mut w = sent(1, [1]);
        assert_eq!(ack(&mut w, 1), Ok(Some(1)));
        assert_eq!(w.free(), 1);
        w.sent(2);
        assert_eq!(ack(&mut w, 2), Ok(Some(2)));
        assert_eq!(w.outstanding(), 0);
    }

    #[test]
    fn out_of_order_acks_move_the_prefix_over_contiguous_acks_only() {
        let mut w = sent(8, 1..=5);
        assert_eq!(ack(&mut w, 3), Ok(None));
        assert_eq!(ack(&mut w, 2), Ok(None));
        assert_eq!(ack(&mut w, 5), Ok(None));
        // Acked but not covered by the prefix: still outstanding.
        assert_eq!(w.outstanding(), 5);
        assert_eq!(ack(&mut w, 1), Ok(Some(3)), "the prefix stops at the gap");
        assert_eq!(w.outstanding(), 2);
        assert_eq!(ack(&mut w, 4), Ok(Some(5)));
        assert_eq!((w.outstanding(), w.free()), (0, 8));
    }

    #[test]
    fn repeated_and_unknown_acks_are_not_in_flight() {
        let mut w = sent(4, [1, 2]);
        assert_eq!(ack(&mut w, 2), Ok(None));
        assert_eq!(w.claim(2), Claim::Unknown, "acked already, behind a gap");
        assert_eq!(w.settle(2), Err(NotInFlight(2)));
        assert_eq!(ack(&mut w, 1), Ok(Some(2)));
        assert_eq!(w.claim(1), Claim::Unknown, "acked already, in the prefix");
        assert_eq!(w.claim(3), Claim::Unknown, "never sent");
        assert_eq!(w.claim(0), Claim::Unknown);
        assert_eq!(w.outstanding(), 0);
    }

    #[test]
    fn a_nack_settles_like_an_ack() {
        // The window does not tell acks from nacks: both settle (the dead letter is the
        // subscription's business).
        let mut w = sent(2, [1, 2]);
        assert_eq!(w.claim(1), Claim::Pending);
        assert_eq!(w.settle(1), Ok(Some(1)));
        assert_eq!(ack(&mut w, 2), Ok(Some(2)));
    }

    #[test]
    fn a_valid_range_settles_at_once() {
        let mut w = sent(8, 1..=6);
        assert_eq!(
            w.ack_range(1, 3),
            Ok(RangeAck::Settled {
                count: 3,
                prefix: Some(3)
            })
        );
        assert_eq!(
            w.ack_range(5, 6),
            Ok(RangeAck::Settled {
                count: 2,
                prefix: None
            }),
            "behind the unacked 4"
        );
        assert_eq!(w.outstanding(), 3);
        assert_eq!(
            w.ack_range(4, 4),
            Ok(RangeAck::Settled {
                count: 1,
                prefix: Some(6)
            })
        );
        assert_eq!(w.outstanding(), 0);
    }

    #[test]
    fn invalid_ranges_name_an_offset_not_in_flight() {
        let mut w = sent(8, 1..=4);
        assert_eq!(w.ack_range(3, 2), Err(NotInFlight(3)), "first > last");
        assert_eq!(
            w.ack_range(1, 5),
            Err(NotInFlight(1)),
            "longer than outstanding"
        );
        assert_eq!(
            w.ack_range(2, 5),
            Err(NotInFlight(5)),
            "beyond what was sent"
        );
        assert_eq!(
            w.ack_range(0, 3),
            Err(NotInFlight(0)),
            "before what was sent"
        );
        assert_eq!(w.ack_range(0, u64::MAX), Err(NotInFlight(0)), "overflows");
        assert_eq!(w.ack_range(1, u64::MAX), Err(NotInFlight(1)));
        assert_eq!(w.ack_range(u64::MAX, u64::MAX), Err(NotInFlight(u64::MAX)));
        // Refusals change nothing.
        assert_eq!(w.outstanding(), 4);
        assert_eq!(ack(&mut w, 3), Ok(None));
        assert_eq!(
            w.ack_range(2, 4),
            Err(NotInFlight(3)),
            "3 was acked already"
        );
        assert_eq!(
            w.claim(2),
            Claim::Pending,
            "a refused range settles nothing"
        );
        // Repeated: a range acked twice.
        assert_eq!(
            w.ack_range(1, 2),
            Ok(RangeAck::Settled {
                count: 2,
                prefix: Some(3)
            })
        );
        assert_eq!(w.ack_range(1, 2), Err(NotInFlight(1)));
    }

    #[test]
    fn a_reset_makes_the_unsettled_events_stale() {
        let mut w = sent(4, 10..=13);
        assert_eq!(ack(&mut w, 12), Ok(None));
        assert_eq!(w.reset(), 3);
        assert_eq!((w.outstanding(), w.free()), (3, 1));
        // Delivery starts over, lower than before.
        w.sent(5);
        assert_eq!(w.free(), 0);
        assert_eq!(w.claim(11), Claim::Stale);
        assert_eq!(w.claim(11), Claim::Unknown, "credit returns once");
        assert_eq!(
            w.claim(12),
            Claim::Unknown,
            "it was settled before the reset"
        );
        // With stale events in play, a range is settled offset by offset.
        assert_eq!(w.ack_range(10, 10), Ok(RangeAck::OneByOne));
        assert_eq!(w.claim(10), Claim::Stale);
        assert_eq!(w.claim(13), Claim::Stale);
        assert_eq!(
            w.ack_range(5, 5),
            Ok(RangeAck::Settled {
                count: 1,
                prefix: Some(5)
            })
        );
        assert_eq!(w.outstanding(), 0);
    }

    #[test]
    fn redrives_are_taken_below_next_and_settled_apart() {
        let mut w = sent(3, [7]);
        w.queue_redrives([2, 4, 7, 9]);
        assert_eq!(w.take_redrive(9), Some(2));
        w.redrive_sent(2);
        assert_eq!(w.take_redrive(9), Some(4));
        w.redrive_sent(4);
        assert_eq!(w.free(), 0);
        assert_eq!(w.take_redrive(9), None, "the window is full");
        // A range while redrives are in play goes one by one.
        assert_eq!(w.ack_range(7, 7), Ok(RangeAck::OneByOne));
        assert_eq!(w.claim(4), Claim::Redriven);
        assert_eq!(w.claim(4), Claim::Unknown);
        // 7 is in flight normally: not redriven; 9 is not below next.
        assert_eq!(w.take_redrive(9), None);
        assert!(
            w.unqueue_redrive(7),
            "its normal delivery settles the redrive"
        );
        assert!(!w.unqueue_redrive(7));
        assert_eq!(w.take_redrive(10), Some(9));
        // Reloading keeps out what is being redriven.
        w.queue_redrives([2, 3]);
        assert_eq!(w.claim(2), Claim::Redriven);
        assert!(w.unqueue_redrive(3));
        assert!(!w.unqueue_redrive(2));
    }

    #[test]
    fn stale_events_are_not_redriven() {
        let mut w = sent(4, [3]);
        w.reset();
        w.queue_redrives([3]);
        assert_eq!(w.take_redrive(10), None, "the agent holds 3 already");
        assert_eq!(w.claim(3), Claim::Stale);
        assert_eq!(w.take_redrive(10), Some(3));
    }
}
