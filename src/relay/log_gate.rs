//! One log line per interval for errors that repeat per request.
//!
//! A full disk or a failed storage answers every webhook 503; logging each one would
//! turn one problem into thousands of identical ERROR lines (and fill the disk that is
//! already full). The gate lets one line through per interval and counts the rest, so
//! the next line says how many were left out.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Least time between two lines through one gate.
pub const LOG_GATE_INTERVAL: Duration = Duration::from_secs(10);

/// When the last line went out, and how many were held back since.
#[derive(Debug, Default)]
pub struct LogGate {
    state: Mutex<Option<(Instant, u64)>>,
}

impl LogGate {
    /// `Some(suppressed)` when a line may go out now (with how many were held back
    /// since the last one), `None` when this one is held back.
    pub fn pass(&self, now: Instant) -> Option<u64> {
        let Ok(mut state) = self.state.lock() else {
            return Some(0);
        };
        match &mut *state {
            Some((last, held)) if now.saturating_duration_since(*last) < LOG_GATE_INTERVAL => {
                *held += 1;
                None
            }
            other => {
                let held = other.map_or(0, |(_, h)| h);
                *other = Some((now, 0));
                Some(held)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_with_a_count_of_the_rest() {
        let g = LogGate::default();
        let t0 = Instant::now();
        assert_eq!(g.pass(t0), Some(0));
        assert_eq!(g.pass(t0 + Duration::from_secs(1)), None);
        assert_eq!(g.pass(t0 + Duration::from_secs(2)), None);
        assert_eq!(g.pass(t0 + LOG_GATE_INTERVAL), Some(2));
    }
}
