//! Exponential backoff with full jitter.
//!
//! Every retry in the agent (a local service that answers 503, a relay that restarts)
//! waits a random time between zero and `min(cap, base * 2^attempt)`. Full jitter
//! rather than a fixed doubling: when a relay restarts, all its agents reconnect at
//! once; randomising the whole delay spreads them out instead of having them retry in
//! lock-step, and the expected wait is still half the exponential bound.

use std::time::Duration;

/// First retry bound for a delivery to the local service.
pub const DELIVERY_BASE_DELAY: Duration = Duration::from_millis(250);
/// Largest wait between two delivery attempts (without a `Retry-After`).
pub const DELIVERY_MAX_DELAY: Duration = Duration::from_secs(30);
/// First retry bound for a reconnect to the relay.
pub const RECONNECT_BASE_DELAY: Duration = Duration::from_millis(250);
/// Largest wait between two reconnect attempts.
pub const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(30);

/// The delay sequence of one retried operation.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    /// Failures so far; the next bound is `base * 2^attempt`.
    attempt: u32,
}

impl Backoff {
    /// Delays from `base`, doubling per failure, never above `cap`.
    pub fn new(base: Duration, cap: Duration) -> Backoff {
        Backoff {
            base,
            cap,
            attempt: 0,
        }
    }

    /// The upper bound of the next delay, without jitter.
    pub fn bound(&self) -> Duration {
        // 2^20 * 250 ms is far past any sensible cap; stop doubling there.
        let factor = 1u32 << self.attempt.min(20);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The next delay: uniform in `[0, bound]`; advances the sequence.
    pub fn next_delay(&mut self) -> Duration {
        let bound = self.bound();
        self.attempt = self.attempt.saturating_add(1);
        let millis = u64::try_from(bound.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::random_range(0..=millis))
    }

    /// Starts over after a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Failures counted since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_double_up_to_the_cap() {
        let mut b = Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
        let mut bounds = Vec::new();
        for _ in 0..10 {
            bounds.push(b.bound().as_millis());
            b.next_delay();
        }
        assert_eq!(
            bounds,
            vec![250, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
        for _ in 0..100 {
            b.next_delay();
        }
        assert_eq!(
            b.bound(),
            Duration::from_secs(30),
            "no overflow past the cap"
        );
    }

    #[test]
    fn delays_are_jittered_within_the_bound() {
        let mut seen_different = false;
        let mut first = None;
        for _ in 0..200 {
            let mut b = Backoff::new(Duration::from_millis(1000), Duration::from_secs(30));
            let d = b.next_delay();
            assert!(d <= Duration::from_millis(1000));
            if *first.get_or_insert(d) != d {
                seen_different = true;
            }
        }
        assert!(seen_different, "full jitter draws different delays");
    }

    #[test]
    fn reset_starts_over() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        b.next_delay();
        b.next_delay();
        assert_eq!(b.attempts(), 2);
        b.reset();
        assert_eq!(b.bound(), Duration::from_millis(100));
    }
}
