//! Retention: deleting a channel's oldest events so the data directory stops growing.
//!
//! Only events, and dead letters that point at deleted events, are removed; a
//! channel's head key stays, so offsets keep counting up and are never reused
//! (guarantee 2). Deletions are not flushed on their own: if a crash loses some, the
//! next pass deletes them again. They never race the committer, because they touch
//! only offsets below the head, which the committer never writes again.
//!
//! The clock is a parameter (`now_ms`) so that tests can move time without sleeping.

use std::collections::HashMap;

use super::codec::decode_dedup;
use super::keys;
use super::read::{failed, Reader};
use crate::storage::error::StorageError;
use crate::storage::types::{Limits, Pass};

/// Most keys removed in one sled batch, so a large first pass does not build one huge batch.
const DELETE_CHUNK: usize = 10_000;

impl Reader {
    /// Deletes the events of `channel` that fall outside `limits` at time `now_ms`.
    pub fn enforce_retention(
        &self,
        channel: &str,
        limits: Limits,
        now_ms: u64,
    ) -> Result<Pass, StorageError> {
        let head = self.shared.head(channel);
        let earliest = self.earliest(channel)?;
        // Everything below `keep_from` goes.
        let mut keep_from = earliest;
        if let Some(max) = limits.max_events {
            keep_from = keep_from.max((head + 1).saturating_sub(max));
        }
        if let Some(age) = limits.max_age_ms {
            keep_from = keep_from.max(self.offset_at_time(channel, now_ms.saturating_sub(age))?);
        }
        if let Some(max_bytes) = limits.max_bytes {
            keep_from =
                keep_from.max(self.first_within_bytes(channel, keep_from, head, max_bytes)?);
        }
        let keep_from = keep_from.min(head + 1);
        let deleted = self.delete_below(channel, earliest, keep_from)?;
        self.drop_orphan_dead_letters(channel, keep_from)?;
        Ok(Pass {
            events: deleted,
            earliest: keep_from,
        })
    }

    /// The smallest offset such that events `offset..=head` take at most `max_bytes`.
    fn first_within_bytes(
        &self,
        channel: &str,
        from: u64,
        head: u64,
        max_bytes: u64,
    ) -> Result<u64, StorageError> {
        if from > head {
            return Ok(from);
        }
        // Walk from the newest event back until the budget is spent.
        let mut total = 0u64;
        let range = keys::event(channel, from)..=keys::event(channel, head);
        for kv in self.tree.range(range).rev() {
            let (k, v) = kv.map_err(|e| StorageError::Failed(e.to_string()))?;
            total += (k.len() + v.len()) as u64;
            if total > max_bytes {
                return Ok(keys::trailing_offset(&k).map(|o| o + 1).unwrap_or(from));
            }
        }
        Ok(from)
    }

    fn delete_below(
        &self,
        channel: &str,
        from: u64,
        to_exclusive: u64,
    ) -> Result<u64, StorageError> {
        let mut deleted = 0u64;
        let mut start = from;
        while start < to_exclusive {
            let end = to_exclusive.min(start.saturating_add(DELETE_CHUNK as u64));
            let mut batch = ::sled::Batch::default();
            let mut n = 0u64;
            for k in self
                .tree
                .range(keys::event(channel, start)..keys::event(channel, end))
                .keys()
            {
                batch.remove(k.map_err(|e| StorageError::Failed(e.to_string()))?);
                n += 1;
            }
            self.tree
                .apply_batch(batch)
                .map_err(|e| StorageError::Failed(e.to_string()))?;
            deleted += n;
            start = end;
        }
        Ok(deleted)
    }

    /// Dead letters whose event no longer exists cannot be redriven; drop them, and
    /// their pending redrive marks with them.
    fn drop_orphan_dead_letters(&self, channel: &str, earliest: u64) -> Result<(), StorageError> {
        let mut batch = ::sled::Batch::default();
        for kind in [keys::DEAD_LETTER, keys::REDRIVE] {
            let mut prefix = vec![kind, 0];
            prefix.extend_from_slice(channel.as_bytes());
            prefix.push(0);
            for k in self.tree.scan_prefix(&prefix).keys() {
                let k = k.map_err(|e| StorageError::Failed(e.to_string()))?;
                if keys::trailing_offset(&k).is_some_and(|o| o < earliest) {
                    batch.remove(k);
                }
            }
        }
        self.tree
            .apply_batch(batch)
            .map_err(|e| StorageError::Failed(e.to_string()))
    }

    /// Deletes dedup entries older than their channel's window (`windows`: channel →
    /// ms; channels missing from it keep none). Deletion is compare-and-swap, so an id
    /// re-recorded meanwhile is kept.
    pub fn expire_dedup(
        &self,
        now_ms: u64,
        windows: &HashMap<String, u64>,
    ) -> Result<usize, StorageError> {
        let mut removed = 0;
        for kv in self.tree.scan_prefix(keys::dedup_prefix()) {
            let (k, v) = kv.map_err(failed)?;
            let channel = k[2..]
                .split(|&b| b == 0)
                .next()
                .map(|c| String::from_utf8_lossy(c).into_owned());
            let Some(channel) = channel else { continue };
            let Some((_, at_ms, _)) = decode_dedup(&v) else {
                continue;
            };
            let window = windows.get(&channel).copied().unwrap_or(0);
            if now_ms.saturating_sub(at_ms) >= window
                && self
                    .tree
                    .compare_and_swap(&k, Some(&v), None as Option<&[u8]>)
                    .map_err(failed)?
                    .is_ok()
            {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::super::SledStorage;
    use super::*;
    use crate::storage::{DeadLetter, NewEvent, Storage};

    fn event(at: u64, size: usize) -> NewEvent {
        NewEvent {
            method: "POST".into(),
            path: String::new(),
            query: String::new(),
            headers: vec![],
            body: Bytes::from(vec![b'x'; size]),
            peer: String::new(),
            scheme: "none".into(),
            received_at_ms: at,
        }
    }

    #[tokio::test]
    async fn by_bytes_and_orphan_dead_letters() {
        let dir = tempfile::tempdir().expect("tmp");
        let log = SledStorage::open(dir.path()).expect("open");
        for i in 1..=10 {
            log.append("c", event(i * 1000, 100), None)
                .await
                .expect("append");
        }
        let one = log
            .reader
            .tree
            .get(keys::event("c", 1))
            .expect("get")
            .expect("some")
            .len() as u64
            + keys::event("c", 1).len() as u64;
        let dl = DeadLetter {
            offset: 2,
            reason: "r".into(),
            attempts: 1,
            last_status: None,
            at_ms: 0,
        };
        log.add_dead_letter("c", "g", dl).await.expect("dl");
        log.request_redrive("c", "g", vec![2], 0)
            .await
            .expect("redrive");
        assert_eq!(log.redrives("c", "g").await.expect("marks"), vec![2]);
        let limits = Limits {
            max_bytes: Some(one * 4),
            ..Limits::default()
        };
        let pass = log.enforce_retention("c", limits, 0).await.expect("pass");
        assert_eq!(pass.earliest, 7);
        assert_eq!(
            log.stats()
                .retention_removed
                .load(std::sync::atomic::Ordering::Relaxed),
            6
        );
        assert!(log.dead_letters("c", "g").await.expect("list").is_empty());
        assert!(log.redrives("c", "g").await.expect("marks").is_empty());
    }
}
