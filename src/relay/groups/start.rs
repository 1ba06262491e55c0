//! Where a subscription starts.
//!
//! The rule users rely on (spec: "restarting an agent with the same command never skips
//! or repeats events"): a group with a committed cursor resumes at cursor + 1 whatever
//! the requested start says; only a group without one uses the start. An explicit
//! offset must still exist — older than the earliest retained event is
//! `offset_compacted`, beyond head + 1 is `offset_out_of_range` — and both refusals
//! name the available range so the user can pick again. A time resolves to the first
//! event received at or after it (a binary search over received-at).

use crate::common::protocol::Refusal;
use crate::common::protocol::{codes, Start};
use crate::storage::{Storage, StorageError};

/// A storage failure as a refusal; the message stays generic (details go to the log).
pub(crate) fn internal(e: StorageError) -> Refusal {
    tracing::error!(error = %e, "stream: log read failed");
    Refusal::new(
        codes::INTERNAL,
        "the relay could not read its log; retry later",
    )
}

/// `next`, moved forward past events that retention removed.
pub(crate) fn retained(log: &dyn Storage, channel: &str, next: u64) -> u64 {
    match log.earliest(channel) {
        Ok(earliest) => next.max(earliest),
        Err(_) => next,
    }
}

/// A requested start, ready for [`resolve`]: a time start carries the offset its
/// search found. The search reads the log, so it runs before a join, which resolves
/// its start under the hub's lock, where nothing may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Wanted {
    pub start: Start,
    /// For [`Start::Time`]: the first offset received at or after that time.
    pub time_offset: Option<u64>,
}

impl From<Start> for Wanted {
    fn from(start: Start) -> Wanted {
        Wanted {
            start,
            time_offset: None,
        }
    }
}

/// Looks up a time start's offset (other starts need no lookup).
pub(crate) async fn wanted(
    log: &dyn Storage,
    channel: &str,
    start: Start,
) -> Result<Wanted, Refusal> {
    let time_offset = match start {
        Start::Time(ms) => Some(log.offset_at_time(channel, ms).await.map_err(internal)?),
        _ => None,
    };
    Ok(Wanted { start, time_offset })
}

/// The first offset to deliver for a subscription with committed cursor `cursor`.
pub(crate) fn resolve(
    log: &dyn Storage,
    channel: &str,
    wanted: impl Into<Wanted>,
    cursor: Option<u64>,
) -> Result<u64, Refusal> {
    let Wanted { start, time_offset } = wanted.into();
    let head = log.head(channel);
    let earliest = log.earliest(channel).map_err(internal)?;
    if let Some(c) = cursor {
        return Ok(c.saturating_add(1).max(earliest));
    }
    match start {
        Start::Committed | Start::Earliest => Ok(earliest),
        Start::Latest => Ok(head + 1),
        Start::Offset(n) if n < earliest => Err(Refusal::new(
            codes::OFFSET_COMPACTED,
            format!(
                "offset {n} is no longer retained; available offsets are {earliest}..={head} \
                 (earliest {earliest}, latest {head})"
            ),
        )),
        Start::Offset(n) if n > head + 1 => Err(Refusal::new(
            codes::OFFSET_OUT_OF_RANGE,
            format!(
                "offset {n} is beyond the next offset {}; available offsets are \
                 {earliest}..={head} (earliest {earliest}, latest {head})",
                head + 1
            ),
        )),
        Start::Offset(n) => Ok(n),
        // Always within earliest..=head + 1: no refusal, an empty range at worst.
        // Retention may have moved on since the search: never before the earliest.
        Start::Time(_) => Ok(time_offset.unwrap_or(head + 1).clamp(earliest, head + 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::NewEvent;

    fn event() -> NewEvent {
        NewEvent {
            method: "POST".into(),
            path: String::new(),
            query: String::new(),
            headers: vec![],
            body: bytes::Bytes::from_static(b"{}"),
            peer: "127.0.0.1:1".into(),
            scheme: "none".into(),
            received_at_ms: 1,
        }
    }

    #[tokio::test]
    async fn cursor_wins_and_offsets_are_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = crate::storage::open(dir.path(), 0).expect("open");
        for _ in 0..3 {
            log.append("c", event(), None).await.expect("append");
        }
        assert_eq!(resolve(log.as_ref(), "c", Start::Latest, Some(1)), Ok(2));
        assert_eq!(resolve(log.as_ref(), "c", Start::Offset(3), Some(0)), Ok(1));
        assert_eq!(resolve(log.as_ref(), "c", Start::Committed, None), Ok(1));
        assert_eq!(resolve(log.as_ref(), "c", Start::Earliest, None), Ok(1));
        assert_eq!(resolve(log.as_ref(), "c", Start::Latest, None), Ok(4));
        assert_eq!(resolve(log.as_ref(), "c", Start::Offset(4), None), Ok(4));
        let far = resolve(log.as_ref(), "c", Start::Offset(5), None).expect_err("beyond head + 1");
        assert_eq!(far.code, codes::OFFSET_OUT_OF_RANGE);
        assert!(
            far.message.contains("earliest 1, latest 3"),
            "{}",
            far.message
        );
        let old = resolve(log.as_ref(), "c", Start::Offset(0), None).expect_err("before earliest");
        assert_eq!(old.code, codes::OFFSET_COMPACTED);
        // Times: the events above were received at 1 ms; later times mean "after".
        for (ms, want) in [(0, 1), (1, 1), (2, 4)] {
            let w = wanted(log.as_ref(), "c", Start::Time(ms))
                .await
                .expect("search");
            assert_eq!(resolve(log.as_ref(), "c", w, None), Ok(want), "{ms}");
        }
        // An empty channel: earliest is head + 1, and Latest and Earliest agree.
        assert_eq!(resolve(log.as_ref(), "empty", Start::Earliest, None), Ok(1));
        assert_eq!(resolve(log.as_ref(), "empty", Start::Latest, None), Ok(1));
    }
}
