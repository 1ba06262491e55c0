//! The committer: the one writer of the log.
//!
//! Every write (an append, a cursor move, a dead letter) is an [`Op`] on a queue. The
//! committer takes everything queued — up to [`MAX_BATCH_OPS`] — stages each op into
//! one atomic sled batch ([`Batch`]), flushes once, and only then answers each op and
//! publishes the new durable heads. While one flush runs, the next batch queues up, so
//! the cost of an fsync (~270 µs here) is shared by every request that arrived
//! meanwhile: group commit. One writer also makes offset assignment and dedup checks
//! race-free without locks. Cursor moves from acks, which nobody waits on, ride along
//! with the next batch instead of forcing one of their own (see [`super::linger`]). The
//! thread's loop is in [`super::thread`].
//!
//! A failed write is final until a restart (fail-stop). sled 0.34 cannot recover from a
//! write error in-process: it latches the error for every later flush, and a failed
//! large-value (blob) write leaves its log buffer claimed forever, so a later flush —
//! once the disk has room again — would block for good. So after the first failure the
//! committer answers every write with [`StorageError::Failed`] (ingest: 503) without
//! touching sled; reads go on as far as sled allows (it splits nodes lazily during
//! reads, and such a split can fail too). A restart re-opens sled, which recovers
//! exactly the flushed batches. A nearly full disk — the usual cause — is refused
//! earlier and without failing, so that it never comes to that (see [`super::disk`]).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::oneshot;

use super::codec::{decode_dedup, encode_dead_letter, encode_dedup};
use super::disk::DiskGuard;
use super::fsync::LogFile;
use super::heads::Shared;
use super::keys;
use super::pace::Pace;
use crate::common::event::RecordRef;
use crate::storage::error::StorageError;
use crate::storage::types::{Appended, DeadLetter, Dedup, NewEvent};

/// Most ops folded into one batch and one flush; bounds the latency of the batch.
pub const MAX_BATCH_OPS: usize = 4096;

/// Bytes a record takes beyond its body and headers (ids, names, key, dedup entry).
const RECORD_OVERHEAD_BYTES: usize = 256;

/// What every write hears once the storage has failed (see the module doc).
pub const STORAGE_FAILED: &str =
    "an earlier write to the log failed; writes are refused until the relay is restarted";

/// A reply channel for ops that answer with nothing but success or failure.
type UnitReply = oneshot::Sender<Result<(), StorageError>>;

/// One write request to the committer.
pub(crate) enum Op {
    /// Append an event unless its delivery id was seen within the window.
    Append {
        channel: String,
        id: String,
        event: NewEvent,
        dedup: Option<Dedup>,
        reply: oneshot::Sender<Result<Appended, StorageError>>,
    },
    /// Move a group's cursor; forward only unless `force` (an explicit reset).
    Cursor {
        channel: String,
        group: String,
        offset: u64,
        force: bool,
        reply: Option<UnitReply>,
    },
    /// Record or replace a dead letter.
    DeadLetter {
        channel: String,
        group: String,
        entry: DeadLetter,
        reply: Option<UnitReply>,
    },
    /// Answer once everything queued before it is durable.
    Sync(UnitReply),
    /// A cursor move was held while the committer slept without a deadline (see
    /// [`super::linger::SharedLinger`]): look at the linger.
    Nudge,
    /// Mark dead letters for redelivery (an operator's redrive); offsets that are not
    /// dead letters (any more) are skipped, so a mark never outlives its dead letter.
    Redrive {
        channel: String,
        group: String,
        offsets: Vec<u64>,
        at_ms: u64,
        reply: UnitReply,
    },
    /// A redriven delivery settled: its mark goes, and in the same batch its dead
    /// letter too (acked) or is replaced by `again` (given up on once more).
    RedriveDone {
        channel: String,
        group: String,
        offset: u64,
        again: Option<DeadLetter>,
        reply: UnitReply,
    },
}

impl Op {
    /// Answers the op with `err`; ops without a reply are dropped (a dropped reply
    /// reads as `Closed` to a waiter, and nobody waits on reply-less ops).
    fn refuse(self, err: StorageError) {
        match self {
            Op::Append { reply, .. } => {
                let _ = reply.send(Err(err));
            }
            Op::Cursor {
                reply: Some(reply), ..
            }
            | Op::DeadLetter {
                reply: Some(reply), ..
            }
            | Op::Sync(reply)
            | Op::Redrive { reply, .. }
            | Op::RedriveDone { reply, .. } => {
                let _ = reply.send(Err(err));
            }
            Op::Cursor { reply: None, .. } | Op::DeadLetter { reply: None, .. } | Op::Nudge => {}
        }
    }

    /// Bytes an append adds to the disk, roughly; 0 for other ops.
    fn append_bytes(&self) -> u64 {
        match self {
            Op::Append { event, .. } => (event.size_bytes() + RECORD_OVERHEAD_BYTES) as u64,
            _ => 0,
        }
    }
}

/// An answer held back until the batch is durable.
pub(crate) enum Reply {
    Append(oneshot::Sender<Result<Appended, StorageError>>, Appended),
    Unit(UnitReply),
}

impl Reply {
    fn send(self, result: Result<(), StorageError>) {
        match (self, result) {
            (Reply::Append(tx, a), Ok(())) => {
                let _ = tx.send(Ok(a));
            }
            (Reply::Append(tx, _), Err(e)) => {
                let _ = tx.send(Err(e));
            }
            (Reply::Unit(tx), r) => {
                let _ = tx.send(r);
            }
        }
    }
}

/// Sets `map[key]` to `f` of its value and returns it; the key is allocated only when it
/// is new (this runs for every appended event).
fn update(map: &mut HashMap<String, u64>, key: &str, f: impl FnOnce(Option<u64>) -> u64) -> u64 {
    match map.get_mut(key) {
        Some(v) => {
            *v = f(Some(*v));
            *v
        }
        None => {
            let v = f(None);
            map.insert(key.to_string(), v);
            v
        }
    }
}

/// One batch being built: the sled batch, the answers it owes, and what later ops of
/// the same batch must see of earlier ones.
#[derive(Default)]
pub(crate) struct Batch {
    pub writes: ::sled::Batch,
    pub replies: Vec<Reply>,
    /// What this batch wrote, keyed like the tree, for later ops of the same batch:
    /// `None` is a removal.
    pub staged: HashMap<Vec<u8>, Option<Vec<u8>>>,
    /// Events appended by this batch.
    pub appended: u64,
    /// The channels whose head this batch moved, with their head before it (`None`: the
    /// channel had none). Only these heads are published after the flush, and only
    /// these are put back if the write fails: the work per batch follows what it
    /// wrote, not how many channels the log holds.
    pub moved: HashMap<String, Option<u64>>,
    /// A storage error met while building the batch; the batch is then not written.
    pub failure: Option<StorageError>,
    /// Why appends are refused in this batch (the disk is nearly full), if they are.
    pub disk_full: Option<String>,
}

impl Batch {
    fn insert(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.staged.insert(key.clone(), Some(value.clone()));
        self.writes.insert(key, value);
    }

    fn remove(&mut self, key: Vec<u8>) {
        self.staged.insert(key.clone(), None);
        self.writes.remove(key);
    }
}

pub(crate) struct Committer {
    db: ::sled::Db,
    tree: ::sled::Tree,
    shared: Arc<Shared>,
    /// Last assigned offset per channel (may be ahead of the durable head mid-batch).
    heads: HashMap<String, u64>,
    /// Last received-at per channel, to keep received-at non-decreasing.
    last_ms: HashMap<String, u64>,
    /// Refuses appends while the disk is nearly full.
    disk: DiskGuard,
    /// sled's log file, `fdatasync`ed after each flush (see [`super::fsync`]).
    log_file: LogFile,
    /// When the last batch ended and how long it took (see [`super::pace`]).
    pace: Pace,
}

impl Committer {
    pub fn new(
        db: ::sled::Db,
        tree: ::sled::Tree,
        shared: Arc<Shared>,
        heads: HashMap<String, u64>,
        last_ms: HashMap<String, u64>,
        disk: DiskGuard,
        log_file: LogFile,
    ) -> Committer {
        Committer {
            db,
            tree,
            shared,
            heads,
            last_ms,
            disk,
            log_file,
            pace: Pace::default(),
        }
    }

    /// When the last batch ended and how long its write took.
    pub(crate) fn pace(&self) -> Pace {
        self.pace
    }

    /// Forgets the last batch, as if the log had never written: a test takes the inline
    /// path this way whatever its disk's speed (a CI disk's first writes can take longer
    /// than `SLOWEST_INLINE_WRITE`; that gate has its own test in [`super::pace`]).
    #[cfg(test)]
    pub(crate) fn forget_pace(&mut self) {
        self.pace = Pace::default();
    }

    /// The database, unless a write has failed (then nothing may write to sled any
    /// more: see the module doc). For the zeros written ahead of the log
    /// ([`super::zero_ahead`]), which sled orders with the commits itself.
    pub(crate) fn db_unless_failed(&self) -> Option<&::sled::Db> {
        (!self.failed()).then_some(&self.db)
    }

    /// The free space appends keep in reserve now (it grows with the largest record).
    pub(crate) fn disk_reserve(&self) -> u64 {
        self.disk.reserve()
    }

    /// The last flush before the thread ends: nothing applied stays only in memory.
    /// Not after a failure: sled could block on the write that failed.
    pub(crate) fn finish(&mut self, held: Vec<(String, String, u64)>) {
        if self.failed() {
            return;
        }
        if !held.is_empty() {
            self.commit(held, &mut Vec::new());
        }
        if let Err(e) = self.db.flush() {
            tracing::error!(error = %e, "final log flush failed");
        } else if let Err(e) = self.log_file.sync() {
            tracing::error!(error = %e, "final fdatasync of the log failed");
        }
    }

    fn failed(&self) -> bool {
        self.shared.stats.storage_failed.load(Ordering::Acquire)
    }

    /// Whether the appends of `ops` fit on the disk (see [`super::disk`]); duplicates
    /// are still answered when they do not, since those write nothing.
    fn check_disk(&mut self, ops: &[Op]) -> Option<String> {
        let sizes = ops.iter().map(Op::append_bytes).filter(|&b| b > 0);
        let (total, largest) = sizes.fold((0, 0), |(t, l), b| (t + b, b.max(l)));
        if total == 0 {
            return None;
        }
        self.disk.check(total, largest).err()
    }

    /// Stages, writes and flushes one batch — the `held` cursor moves, then `ops` —
    /// then answers its ops.
    pub(crate) fn commit(&mut self, held: Vec<(String, String, u64)>, ops: &mut Vec<Op>) {
        if self.failed() {
            for op in ops.drain(..) {
                op.refuse(StorageError::Failed(STORAGE_FAILED.to_string()));
            }
            return;
        }
        let size = ops.len() + held.len();
        let mut batch = Batch {
            disk_full: self.check_disk(ops),
            ..Batch::default()
        };
        // Held cursor moves first: see `SharedLinger::reset_queued` for why.
        for (channel, group, offset) in held {
            self.stage_cursor(&channel, &group, offset, false, &mut batch, None);
        }
        for op in ops.drain(..) {
            self.stage(op, &mut batch);
        }
        let started = Instant::now();
        let result = self.write(&mut batch);
        let took = started.elapsed();
        self.pace = Pace {
            ended: Some(Instant::now()),
            took,
        };
        let stats = &self.shared.stats;
        stats.record_batch(size);
        stats
            .flush_micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        match result {
            Ok(()) => self.publish(batch),
            Err(e) => {
                // Nothing of the batch is acknowledged or published: its offsets were never
                // seen by anyone (and no later batch is written, see the module doc).
                self.roll_back_heads(&mut batch);
                self.fail(batch, e);
            }
        }
    }

    /// Adds one op's writes and answer to the batch.
    fn stage(&mut self, op: Op, batch: &mut Batch) {
        match op {
            Op::Append {
                channel,
                id,
                event,
                dedup,
                reply,
            } => self.stage_append(channel, id, event, dedup, reply, batch),
            Op::Cursor {
                channel,
                group,
                offset,
                force,
                reply,
            } => self.stage_cursor(&channel, &group, offset, force, batch, reply),
            Op::DeadLetter {
                channel,
                group,
                entry,
                reply,
            } => {
                let key = keys::dead_letter(&channel, &group, entry.offset);
                batch.insert(key, encode_dead_letter(&entry));
                batch.replies.extend(reply.map(Reply::Unit));
            }
            Op::Sync(reply) => batch.replies.push(Reply::Unit(reply)),
            Op::Nudge => {}
            Op::Redrive {
                channel,
                group,
                offsets,
                at_ms,
                reply,
            } => self.stage_redrive(&channel, &group, &offsets, at_ms, reply, batch),
            Op::RedriveDone {
                channel,
                group,
                offset,
                again,
                reply,
            } => {
                batch.remove(keys::redrive(&channel, &group, offset));
                let key = keys::dead_letter(&channel, &group, offset);
                match again {
                    Some(entry) => batch.insert(key, encode_dead_letter(&entry)),
                    None => batch.remove(key),
                }
                batch.replies.push(Reply::Unit(reply));
            }
        }
    }

    /// An append: a duplicate is answered with the original; otherwise the next offset
    /// is assigned and the event, the channel's head and the dedup entry are staged.
    fn stage_append(
        &mut self,
        channel: String,
        id: String,
        event: NewEvent,
        dedup: Option<Dedup>,
        reply: oneshot::Sender<Result<Appended, StorageError>>,
        batch: &mut Batch,
    ) {
        let now = event.received_at_ms;
        if let Some(d) = &dedup {
            match self.seen(&channel, d, now, batch) {
                Ok(Some(original)) => return batch.replies.push(Reply::Append(reply, original)),
                Ok(None) => {}
                Err(e) => {
                    // A failed read inside the committer may have left sled half-written
                    // (reads can write): fail the whole batch.
                    batch.failure.get_or_insert(e);
                    let none = Appended {
                        offset: 0,
                        id: String::new(),
                        duplicate: false,
                    };
                    return batch.replies.push(Reply::Append(reply, none));
                }
            }
        }
        if let Some(why) = &batch.disk_full {
            let _ = reply.send(Err(StorageError::Failed(why.clone())));
            return;
        }
        let appended = self.stage_event(channel, id, &event, dedup, batch);
        batch.replies.push(Reply::Append(reply, appended));
    }

    /// A new event: the next offset, the record, the channel's head and the dedup entry,
    /// all in the batch.
    fn stage_event(
        &mut self,
        channel: String,
        id: String,
        event: &NewEvent,
        dedup: Option<Dedup>,
        batch: &mut Batch,
    ) -> Appended {
        let now = event.received_at_ms;
        let (offset, received_at_ms) = self.assign(&channel, now, batch);
        let record = RecordRef {
            id: &id,
            channel: &channel,
            offset,
            received_at_ms,
            method: &event.method,
            path: &event.path,
            query: &event.query,
            headers: &event.headers,
            body: &event.body,
            peer: &event.peer,
            scheme: &event.scheme,
        };
        batch
            .writes
            .insert(keys::event(&channel, offset), record.encode());
        batch
            .writes
            .insert(keys::head(&channel), &keys::encode_u64(offset));
        if let Some(d) = dedup {
            batch.insert(keys::dedup(&channel, &d.id), encode_dedup(offset, now, &id));
        }
        batch.appended += 1;
        Appended {
            offset,
            id,
            duplicate: false,
        }
    }

    /// The original append when `d`'s id was seen within its window.
    fn seen(
        &self,
        channel: &str,
        d: &Dedup,
        now: u64,
        batch: &Batch,
    ) -> Result<Option<Appended>, StorageError> {
        let Some(seen) = self.lookup(&batch.staged, &keys::dedup(channel, &d.id))? else {
            return Ok(None);
        };
        Ok(decode_dedup(&seen)
            .filter(|(_, at_ms, _)| now.saturating_sub(*at_ms) < d.window_ms)
            .map(|(offset, _, id)| Appended {
                offset,
                id,
                duplicate: true,
            }))
    }

    /// The next offset of `channel`, and a received-at that never goes backwards.
    fn assign(&mut self, channel: &str, now: u64, batch: &mut Batch) -> (u64, u64) {
        let before = self.heads.get(channel).copied();
        if !batch.moved.contains_key(channel) {
            batch.moved.insert(channel.to_string(), before);
        }
        let head = update(&mut self.heads, channel, |h| h.unwrap_or(0) + 1);
        let last = update(&mut self.last_ms, channel, |l| {
            l.map_or(now, |l| l.max(now))
        });
        (head, last)
    }

    /// Puts back the heads a failed batch moved.
    fn roll_back_heads(&mut self, batch: &mut Batch) {
        for (channel, before) in batch.moved.drain() {
            match before {
                Some(head) => self.heads.insert(channel, head),
                None => self.heads.remove(&channel),
            };
        }
    }

    /// A cursor move: forward only, unless `force` (a reset).
    fn stage_cursor(
        &self,
        channel: &str,
        group: &str,
        offset: u64,
        force: bool,
        batch: &mut Batch,
        reply: Option<UnitReply>,
    ) {
        let key = keys::cursor(channel, group);
        match self.lookup(&batch.staged, &key) {
            Ok(current) => {
                let current = current.as_deref().and_then(keys::decode_u64);
                if force || current.is_none_or(|c| offset > c) {
                    batch.insert(key, keys::encode_u64(offset).to_vec());
                }
            }
            Err(e) => {
                batch.failure.get_or_insert(e);
            }
        }
        batch.replies.extend(reply.map(Reply::Unit));
    }

    /// Redrive marks, only for offsets that are dead letters.
    fn stage_redrive(
        &self,
        channel: &str,
        group: &str,
        offsets: &[u64],
        at_ms: u64,
        reply: UnitReply,
        batch: &mut Batch,
    ) {
        for &offset in offsets {
            match self.lookup(&batch.staged, &keys::dead_letter(channel, group, offset)) {
                Ok(Some(_)) => batch.insert(
                    keys::redrive(channel, group, offset),
                    keys::encode_u64(at_ms).to_vec(),
                ),
                Ok(None) => {}
                Err(e) => {
                    batch.failure.get_or_insert(e);
                }
            }
        }
        batch.replies.push(Reply::Unit(reply));
    }

    /// Applies the batch atomically and flushes it, unless staging already failed.
    fn write(&self, batch: &mut Batch) -> Result<(), String> {
        if let Some(f) = batch.failure.take() {
            return Err(f.detail());
        }
        let writes = std::mem::take(&mut batch.writes);
        self.tree
            .apply_batch(writes)
            .and_then(|()| self.db.flush().map(|_| ()))
            .map_err(|e| e.to_string())?;
        self.log_file
            .sync()
            .map_err(|e| format!("fdatasync of the log file: {e}"))
    }

    /// The batch is durable: publish the heads, then answer (in that order, so that an
    /// answered append is always visible to readers).
    fn publish(&self, batch: Batch) {
        self.shared
            .stats
            .appended
            .fetch_add(batch.appended, Ordering::Relaxed);
        for channel in batch.moved.keys() {
            if let Some(&head) = self.heads.get(channel) {
                self.shared.publish_head(channel, head);
            }
        }
        for r in batch.replies {
            r.send(Ok(()));
        }
    }

    /// The batch failed: fail-stop (see the module doc).
    fn fail(&self, batch: Batch, e: String) {
        tracing::error!(error = %e, "log write failed: this batch is answered 503 and every later write is refused until the relay is restarted");
        let stats = &self.shared.stats;
        stats.failures.fetch_add(1, Ordering::Relaxed);
        stats.storage_failed.store(true, Ordering::Release);
        for r in batch.replies {
            r.send(Err(StorageError::Failed(e.clone())));
        }
    }

    /// A key's value as this batch leaves it: staged first, else the tree.
    fn lookup(
        &self,
        staged: &HashMap<Vec<u8>, Option<Vec<u8>>>,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, StorageError> {
        if let Some(v) = staged.get(key) {
            return Ok(v.clone());
        }
        self.tree
            .get(key)
            .map(|v| v.map(|v| v.to_vec()))
            .map_err(|e| StorageError::Failed(e.to_string()))
    }
}

#[cfg(test)]
#[path = "commit_tests.rs"]
mod tests;
