//! When the committer last wrote, and how long that took: what decides whether an
//! append is committed by its own task (see `inline`). Its own file because both the
//! committer, which records it, and `inline`, which reads it, depend on it.

use std::time::{Duration, Instant};

/// How long the log must have been without a batch for an append to be committed by
/// its own task. Under load batches follow each other with no gap; at 400 events/s
/// the gap is about 2 ms.
pub(crate) const IDLE_BEFORE_INLINE: Duration = Duration::from_millis(1);

/// The slowest last batch write (flush and `fdatasync`) at which an append may still
/// be committed inline: on a slower disk, blocking an async worker for a whole write
/// holds up its other connections for longer than the hand-over costs.
pub(crate) const SLOWEST_INLINE_WRITE: Duration = Duration::from_millis(2);

/// When the committer's last batch ended, and how long its write took.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Pace {
    /// `None` until the first batch.
    pub ended: Option<Instant>,
    pub took: Duration,
}

impl Pace {
    /// Whether an append arriving at `now` may be committed by its own task.
    pub fn allows_inline(&self, now: Instant) -> bool {
        self.idle(now) && self.took <= SLOWEST_INLINE_WRITE
    }

    /// Whether the log has been without a batch for [`IDLE_BEFORE_INLINE`] at `now`.
    pub fn idle(&self, now: Instant) -> bool {
        self.ended
            .is_none_or(|ended| now.saturating_duration_since(ended) >= IDLE_BEFORE_INLINE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_append_is_inline_only_after_an_idle_gap_and_a_fast_write() {
        let now = Instant::now();
        let fast = Duration::from_micros(300);
        assert!(Pace::default().allows_inline(now), "no batch yet");
        let just_now = Pace {
            ended: Some(now),
            took: fast,
        };
        assert!(!just_now.allows_inline(now), "under load: queue");
        assert!(just_now.allows_inline(now + IDLE_BEFORE_INLINE));
        assert!(!just_now.idle(now) && just_now.idle(now + IDLE_BEFORE_INLINE));
        let slow = Pace {
            ended: Some(now),
            took: SLOWEST_INLINE_WRITE + Duration::from_micros(1),
        };
        assert!(
            !slow.allows_inline(now + Duration::from_secs(1)),
            "slow disk"
        );
        assert!(
            slow.idle(now + Duration::from_secs(1)),
            "idle, however slow"
        );
    }
}
