//! `--max-rate`: deliveries to a local service spaced to at most N per second.
//!
//! A token bucket holding one token (a pacer): each event takes the next free slot,
//! `1/N` s after the previous one, so the service never sees a burst, not even after
//! the agent was idle or comes back to a backlog. Slots are handed out when a delivery
//! starts, in offset order, so pacing never reorders events; retries of an event do not
//! take new slots (the backoff already spaces them).

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The highest `--max-rate` accepted, in events per second (above it the pacing
/// interval would be finer than the timer).
pub const MAX_RATE_PER_SEC: f64 = 1_000_000.0;

/// Checks a rate from a flag or a file.
pub fn check_rate(rate: f64) -> Result<f64, String> {
    if rate.is_finite() && rate > 0.0 && rate <= MAX_RATE_PER_SEC {
        Ok(rate)
    } else {
        Err(format!(
            "must be a number of events per second above 0 and at most {MAX_RATE_PER_SEC}"
        ))
    }
}

/// Hands out delivery slots at most `rate` per second.
#[derive(Debug)]
pub struct Pacer {
    interval: Duration,
    next: Mutex<Option<Instant>>,
}

impl Pacer {
    /// A pacer for `rate` events per second (checked by [`check_rate`]).
    pub fn new(rate: f64) -> Pacer {
        Pacer {
            interval: Duration::from_secs_f64(1.0 / rate),
            next: Mutex::new(None),
        }
    }

    /// The time the next delivery may start (now, or the next free slot), reserving it.
    pub fn reserve(&self, now: Instant) -> Instant {
        let mut next = match self.next.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let at = next.map_or(now, |n| n.max(now));
        *next = Some(at + self.interval);
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_spaced_by_the_interval_and_never_bunch_up() {
        let p = Pacer::new(50.0);
        let t0 = Instant::now();
        assert_eq!(p.reserve(t0), t0);
        assert_eq!(p.reserve(t0), t0 + Duration::from_millis(20));
        assert_eq!(p.reserve(t0), t0 + Duration::from_millis(40));
        // After an idle second there is no burst credit: one slot now, then spaced.
        let later = t0 + Duration::from_secs(1);
        assert_eq!(p.reserve(later), later);
        assert_eq!(p.reserve(later), later + Duration::from_millis(20));
    }

    #[test]
    fn rates_are_checked() {
        assert!(check_rate(0.5).is_ok() && check_rate(50.0).is_ok());
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 2e6] {
            assert!(check_rate(bad).is_err(), "{bad}");
        }
    }
}
