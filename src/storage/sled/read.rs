//! Reads of the sled tree. Every read is capped at the durable head that
//! [`super::heads::Shared`] publishes, so a reader never sees an offset that the
//! committer has written but not yet flushed (guarantee 3).
//!
//! These are synchronous sled calls; [`super::SledStorage`] runs the ones that may
//! touch the disk for a while on the blocking pool. [`Reader`] is cheap to clone and
//! `'static` for that reason.

use std::sync::Arc;

use super::codec::decode_dead_letter;
use super::heads::Shared;
use super::keys;
use crate::common::event::Record;
use crate::storage::error::StorageError;
use crate::storage::types::DeadLetter;

/// Reads that start fewer than this many offsets below the head (so they read at most
/// this many events) are done key by key (`Tree::get`) instead of with a range scan.
/// That is what a live subscriber does: at a webhook trickle it reads each event alone,
/// right after its commit. sled's range iterator clones the whole leaf node it stands
/// on (keys and values, up to 17 of each) at every step, a point read does not; the
/// scan was ~4 % of the relay's instructions per event (issue 17's callgrind profile).
const POINT_READS_MAX: u64 = 4;

/// Events as stored, with their offsets: what [`Reader::read_raw`] returns.
type RawEvents = Vec<(u64, Vec<u8>)>;

/// A handle for reads; shares the tree and the published heads with the committer.
#[derive(Clone)]
pub(crate) struct Reader {
    pub tree: sled::Tree,
    pub shared: Arc<Shared>,
}

/// sled's error as ours.
pub(crate) fn failed(e: sled::Error) -> StorageError {
    StorageError::Failed(e.to_string())
}

fn corrupt(e: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt(e.to_string())
}

impl Reader {
    /// The first retained offset; `head + 1` when the channel holds no events.
    pub fn earliest(&self, channel: &str) -> Result<u64, StorageError> {
        let head = self.shared.head(channel);
        let first = self
            .tree
            .scan_prefix(keys::event_prefix(channel))
            .keys()
            .next();
        match first {
            Some(k) => {
                let k = k.map_err(failed)?;
                Ok(keys::trailing_offset(&k).unwrap_or(head + 1).min(head + 1))
            }
            None => Ok(head + 1),
        }
    }

    /// One durable event, if retained.
    pub fn get(&self, channel: &str, offset: u64) -> Result<Option<Record>, StorageError> {
        if offset == 0 || offset > self.shared.head(channel) {
            return Ok(None);
        }
        match self
            .tree
            .get(keys::event(channel, offset))
            .map_err(failed)?
        {
            Some(v) => Record::decode(&v).map(Some).map_err(corrupt),
            None => Ok(None),
        }
    }

    /// The key range of the durable events from `from` on, or `None` when empty.
    fn durable_range(&self, channel: &str, from: u64) -> Option<std::ops::RangeInclusive<Vec<u8>>> {
        let head = self.shared.head(channel);
        let from = from.max(1);
        (from <= head).then(|| keys::event(channel, from)..=keys::event(channel, head))
    }

    /// Up to `limit` durable events with offsets `>= from`, decoded.
    pub fn read(
        &self,
        channel: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<Record>, StorageError> {
        let Some(range) = self.durable_range(channel, from).filter(|_| limit > 0) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity(limit.min(1024));
        for v in self.tree.range(range).values().take(limit) {
            out.push(Record::decode(&v.map_err(failed)?).map_err(corrupt)?);
        }
        Ok(out)
    }

    /// Up to `limit` durable events with offsets `>= from` as stored bytes, stopping
    /// before `max_bytes` is passed (the first event is always returned).
    pub fn read_raw(
        &self,
        channel: &str,
        from: u64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<RawEvents, StorageError> {
        let head = self.shared.head(channel);
        if limit > 0 && from >= 1 && from <= head && head - from < POINT_READS_MAX {
            if let Some(out) = self.read_raw_by_key(channel, from, head, limit, max_bytes)? {
                return Ok(out);
            }
        }
        let Some(range) = self.durable_range(channel, from).filter(|_| limit > 0) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity(limit.min(1024));
        let mut bytes = 0usize;
        for kv in self.tree.range(range).take(limit) {
            let (k, v) = kv.map_err(failed)?;
            let offset = keys::trailing_offset(&k).ok_or_else(|| {
                StorageError::Corrupt(format!("event key without offset in {channel}"))
            })?;
            bytes = bytes.saturating_add(v.len());
            if bytes > max_bytes && !out.is_empty() {
                break;
            }
            out.push((offset, v.to_vec()));
        }
        Ok(out)
    }

    /// [`Reader::read_raw`] of the last few offsets up to `head`, by key: `None` as soon
    /// as one is missing (retention deleted it), and the caller scans instead.
    fn read_raw_by_key(
        &self,
        channel: &str,
        from: u64,
        head: u64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Option<RawEvents>, StorageError> {
        let last = head.min(from.saturating_add(limit as u64 - 1));
        let mut out = Vec::with_capacity((last - from + 1) as usize);
        let mut bytes = 0usize;
        for offset in from..=last {
            let key = keys::event(channel, offset);
            let Some(v) = self.tree.get(key).map_err(failed)? else {
                return Ok(None);
            };
            bytes = bytes.saturating_add(v.len());
            if bytes > max_bytes && !out.is_empty() {
                break;
            }
            out.push((offset, v.to_vec()));
        }
        Ok(Some(out))
    }

    /// The first retained offset whose event was received at or after `ms`, or
    /// `head + 1`. Received-at is non-decreasing, so this is a binary search over
    /// offsets: O(log n) reads, never a scan of the channel.
    pub fn offset_at_time(&self, channel: &str, ms: u64) -> Result<u64, StorageError> {
        let (mut lo, mut hi) = (self.earliest(channel)?, self.shared.head(channel) + 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            // A hole (deleted concurrently by retention) counts as "before".
            let before = match self.get(channel, mid)? {
                Some(r) => r.received_at_ms < ms,
                None => true,
            };
            if before {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    /// A consumer group's committed cursor.
    pub fn cursor(&self, channel: &str, group: &str) -> Result<Option<u64>, StorageError> {
        Ok(self
            .tree
            .get(keys::cursor(channel, group))
            .map_err(failed)?
            .and_then(|v| keys::decode_u64(&v)))
    }

    /// All groups of a channel with their cursors.
    pub fn groups(&self, channel: &str) -> Result<Vec<(String, u64)>, StorageError> {
        let prefix = keys::cursor_prefix(channel);
        let mut out = Vec::new();
        for kv in self.tree.scan_prefix(&prefix) {
            let (k, v) = kv.map_err(failed)?;
            let group = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            out.push((group, keys::decode_u64(&v).unwrap_or(0)));
        }
        Ok(out)
    }

    /// A group's dead letters in offset order.
    pub fn dead_letters(
        &self,
        channel: &str,
        group: &str,
    ) -> Result<Vec<DeadLetter>, StorageError> {
        let mut out = Vec::new();
        for v in self
            .tree
            .scan_prefix(keys::dead_letter_prefix(channel, group))
            .values()
        {
            if let Some(d) = decode_dead_letter(&v.map_err(failed)?) {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// How many dead letters a group has (keys only, nothing decoded).
    pub fn dead_letter_count(&self, channel: &str, group: &str) -> Result<usize, StorageError> {
        let mut n = 0;
        for k in self
            .tree
            .scan_prefix(keys::dead_letter_prefix(channel, group))
            .keys()
        {
            k.map_err(failed)?;
            n += 1;
        }
        Ok(n)
    }

    /// One dead letter of a group, if recorded.
    pub fn dead_letter(
        &self,
        channel: &str,
        group: &str,
        offset: u64,
    ) -> Result<Option<DeadLetter>, StorageError> {
        Ok(self
            .tree
            .get(keys::dead_letter(channel, group, offset))
            .map_err(failed)?
            .and_then(|v| decode_dead_letter(&v)))
    }

    /// The offsets of a group's pending redrives, in order.
    pub fn redrives(&self, channel: &str, group: &str) -> Result<Vec<u64>, StorageError> {
        let mut out = Vec::new();
        for k in self
            .tree
            .scan_prefix(keys::redrive_prefix(channel, group))
            .keys()
        {
            if let Some(o) = keys::trailing_offset(&k.map_err(failed)?) {
                out.push(o);
            }
        }
        Ok(out)
    }
}
