//! The in-flight body budget: request body bytes the relay holds at once, across all
//! requests (`max_inflight_body_bytes`).
//!
//! With `max_body_bytes` at 25 MiB, fifty concurrent large bodies would be over a GiB
//! of buffers. Each request takes its share as its body arrives — its whole
//! Content-Length at the first read, so a body that cannot fit is refused before it is
//! sent, then any bytes beyond it chunk by chunk — and gives it back when its handler
//! is done with the buffered body (the response is ready) or the request is dropped.
//! A body that does not fit gets `503 unavailable` with `Retry-After`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The budget every connection of a listener shares.
#[derive(Debug)]
pub struct BodyBudget {
    max_bytes: u64,
    used: AtomicU64,
}

impl BodyBudget {
    /// A budget of `max_bytes` of request bodies held at once.
    pub fn new(max_bytes: u64) -> BodyBudget {
        BodyBudget {
            max_bytes,
            used: AtomicU64::new(0),
        }
    }

    /// Bytes reserved now.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }

    fn try_take(&self, n: u64) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|&total| total <= self.max_bytes)
            })
            .is_ok()
    }

    fn give_back(&self, n: u64) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }
}

/// One request's share, shared by its body and its handler's future; given back when
/// both are gone.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<BodyBudget>,
    held: AtomicU64,
}

impl Reservation {
    /// An empty reservation against `budget`; it gives its bytes back when dropped.
    pub fn new(budget: Arc<BodyBudget>) -> Reservation {
        Reservation {
            budget,
            held: AtomicU64::new(0),
        }
    }

    /// Takes `n` more bytes; false (and nothing taken) when they do not fit.
    pub fn grow(&self, n: u64) -> bool {
        let ok = self.budget.try_take(n);
        if ok {
            self.held.fetch_add(n, Ordering::AcqRel);
        }
        ok
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.give_back(*self.held.get_mut());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_taken_until_full_and_given_back_on_drop() {
        let budget = Arc::new(BodyBudget::new(100));
        let a = Reservation::new(budget.clone());
        let b = Reservation::new(budget.clone());
        assert!(a.grow(60));
        assert!(!b.grow(41), "over the budget");
        assert!(b.grow(40));
        assert_eq!(budget.used(), 100);
        assert!(!a.grow(1));
        drop(a);
        assert_eq!(budget.used(), 40);
        assert!(b.grow(60));
        drop(b);
        assert_eq!(budget.used(), 0);
    }
}
