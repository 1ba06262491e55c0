//! Per-channel token buckets for ingest.
//!
//! A bucket refills at `per_second` up to `burst`; a request takes one token or is
//! refused with the time until the next one, which becomes `Retry-After`.

use std::sync::Mutex;
use std::time::Instant;

use crate::common::config::RateLimit;

#[derive(Debug)]
pub struct Bucket {
    limit: RateLimit,
    state: Mutex<(f64, Instant)>,
}

impl Bucket {
    pub fn new(limit: RateLimit) -> Bucket {
        Bucket {
            limit,
            state: Mutex::new((limit.burst, Instant::now())),
        }
    }

    /// Takes a token at `now`; `Err(secs)` says how long until one is available.
    pub fn take(&self, now: Instant) -> Result<(), u64> {
        let Ok(mut state) = self.state.lock() else {
            return Ok(()); // a poisoned lock must not turn into refusing all traffic
        };
        let (tokens, last) = &mut *state;
        let elapsed = now.saturating_duration_since(*last).as_secs_f64();
        *tokens = (*tokens + elapsed * self.limit.per_second).min(self.limit.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / self.limit.per_second).ceil().max(1.0) as u64)
        }
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
}
