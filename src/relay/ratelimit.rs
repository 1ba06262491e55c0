//! Token buckets for ingest: one per channel for accepted webhooks, and one per source
//! address for requests that fail verification.
//!
//! A bucket refills at `per_second` up to `burst`; a request takes one token or is
//! refused with the time until the next one, which becomes `Retry-After`.
//!
//! Why two kinds: a channel's budget is the real sender's, so only requests that
//! passed verification spend it — otherwise anyone could post unsigned requests and
//! push the provider's real webhooks into 429s. Forgeries spend a budget of their own,
//! per source address, and an address that has spent it is refused before its body
//! is even read, so a flood of forgeries stays cheap.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use crate::common::config::RateLimit;

/// Failed verifications an address may make per second, on average.
pub const FAILED_VERIFICATIONS_PER_SECOND: f64 = 1.0;
/// Failed verifications an address may make in a burst.
pub const FAILED_VERIFICATIONS_BURST: f64 = 20.0;
/// Addresses tracked at most; past this, addresses whose bucket has refilled are
/// forgotten (and, if that is not enough, all of them), so memory stays bounded.
pub const MAX_TRACKED_ADDRESSES: usize = 10_000;

/// Tokens left and when they were last counted.
#[derive(Debug, Clone, Copy)]
struct Tokens {
    left: f64,
    at: Instant,
}

impl Tokens {
    fn full(limit: RateLimit, now: Instant) -> Tokens {
        Tokens {
            left: limit.burst,
            at: now,
        }
    }

    /// Adds what accrued since the last count.
    fn refill(&mut self, limit: RateLimit, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.left = (self.left + elapsed * limit.per_second).min(limit.burst);
        self.at = now;
    }

    /// Seconds until one token is there (at least 1, for `Retry-After`).
    fn wait_secs(&self, limit: RateLimit) -> u64 {
        ((1.0 - self.left) / limit.per_second).ceil().max(1.0) as u64
    }
}

/// One channel's bucket.
#[derive(Debug)]
pub struct Bucket {
    limit: RateLimit,
    state: Mutex<Tokens>,
}

impl Bucket {
    /// A full bucket.
    pub fn new(limit: RateLimit) -> Bucket {
        Bucket {
            limit,
            state: Mutex::new(Tokens::full(limit, Instant::now())),
        }
    }

    /// Takes a token at `now`; `Err(secs)` says how long until one is available.
    pub fn take(&self, now: Instant) -> Result<(), u64> {
        let Ok(mut tokens) = self.state.lock() else {
            return Ok(()); // a poisoned lock must not turn into refusing all traffic
        };
        tokens.refill(self.limit, now);
        if tokens.left >= 1.0 {
            tokens.left -= 1.0;
            Ok(())
        } else {
            Err(tokens.wait_secs(self.limit))
        }
    }
}

/// Per-address budgets of failed verifications.
#[derive(Debug)]
pub struct FailureLimiter {
    limit: RateLimit,
    addresses: Mutex<HashMap<IpAddr, Tokens>>,
}

impl Default for FailureLimiter {
    fn default() -> FailureLimiter {
        FailureLimiter::new(RateLimit {
            per_second: FAILED_VERIFICATIONS_PER_SECOND,
            burst: FAILED_VERIFICATIONS_BURST,
        })
    }
}

impl FailureLimiter {
    /// A limiter allowing `limit` failures per address.
    pub fn new(limit: RateLimit) -> FailureLimiter {
        FailureLimiter {
            limit,
            addresses: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `ip` may still be heard; `Err(secs)` once it has spent its failures.
    /// Takes nothing: only [`FailureLimiter::charge`] spends.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), u64> {
        let Ok(mut map) = self.addresses.lock() else {
            return Ok(());
        };
        match map.get_mut(&ip) {
            Some(t) => {
                t.refill(self.limit, now);
                if t.left >= 1.0 {
                    Ok(())
                } else {
                    Err(t.wait_secs(self.limit))
                }
            }
            None => Ok(()),
        }
    }

    /// Counts one failed verification from `ip`.
    pub fn charge(&self, ip: IpAddr, now: Instant) {
        let Ok(mut map) = self.addresses.lock() else {
            return;
        };
        if map.len() >= MAX_TRACKED_ADDRESSES && !map.contains_key(&ip) {
            let limit = self.limit;
            map.retain(|_, t| {
                t.refill(limit, now);
                t.left < limit.burst
            });
            if map.len() >= MAX_TRACKED_ADDRESSES {
                map.clear();
            }
        }
        let t = map
            .entry(ip)
            .or_insert_with(|| Tokens::full(self.limit, now));
        t.refill(self.limit, now);
        t.left = (t.left - 1.0).max(0.0);
    }

    /// Addresses tracked now (for tests and metrics).
    pub fn tracked(&self) -> usize {
        self.addresses.lock().map(|m| m.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_refill() {
        let b = Bucket::new(RateLimit {
            per_second: 2.0,
            burst: 3.0,
        });
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(b.take(t0).is_ok());
        }
        assert_eq!(b.take(t0), Err(1));
        assert!(b.take(t0 + Duration::from_millis(500)).is_ok());
        assert!(b.take(t0 + Duration::from_millis(500)).is_err());
    }

    #[test]
    fn failures_are_counted_per_address_and_refill() {
        let f = FailureLimiter::new(RateLimit {
            per_second: 1.0,
            burst: 2.0,
        });
        let (bad, good): (IpAddr, IpAddr) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
        let t0 = Instant::now();
        assert!(f.check(bad, t0).is_ok());
        f.charge(bad, t0);
        assert!(f.check(bad, t0).is_ok(), "one failure left");
        f.charge(bad, t0);
        assert_eq!(f.check(bad, t0), Err(1));
        assert!(f.check(good, t0).is_ok(), "another address is not affected");
        assert!(f.check(bad, t0 + Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn tracked_addresses_stay_bounded() {
        let f = FailureLimiter::default();
        let t0 = Instant::now();
        for i in 0..(MAX_TRACKED_ADDRESSES as u32 + 50) {
            f.charge(IpAddr::from(i.to_be_bytes()), t0);
        }
        assert!(f.tracked() <= MAX_TRACKED_ADDRESSES);
    }
}
