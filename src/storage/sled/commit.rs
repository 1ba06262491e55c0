//! The committer: the one thread that writes to the log.
//!
//! Every write (an append, a cursor move, a dead letter) is an [`Op`] on a queue. The
//! committer takes everything queued — up to [`MAX_BATCH_OPS`] — applies it as one
//! atomic sled batch, flushes once, and only then answers each op and publishes the new
//! durable heads. While one flush runs, the next batch queues up, so the cost of an
//! fsync (~270 µs here) is shared by every request that arrived meanwhile: group commit.
//! One writer also makes offset assignment and dedup checks race-free without locks.
//!
//! A failed write is final until a restart (fail-stop). sled 0.34 cannot recover from a
//! write error in-process: it latches the error for every later flush, and a failed
//! large-value (blob) write leaves its log buffer claimed forever, so a later flush —
//! once the disk has room again — would block for good. So after the first failure the
//! committer answers every write with [`LogError::Storage`] (ingest: 503) without
//! touching sled; reads go on as far as sled allows (it splits nodes lazily during
//! reads, and such a split can fail too). A restart re-opens sled, which recovers
//! exactly the flushed batches. A nearly full disk — the usual cause — is refused
//! earlier and without failing, so that it never comes to that (see [`super::disk`]).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use super::{keys, Appended, DeadLetter, LogError, NewEvent, Shared};
use crate::common::event::RecordRef;

/// Most ops folded into one batch and one flush; bounds the latency of the batch.
pub const MAX_BATCH_OPS: usize = 4096;

/// Bytes a record takes beyond its body and headers (ids, names, key, dedup entry).
const RECORD_OVERHEAD_BYTES: usize = 256;

/// What every write hears once the storage has failed (see the module doc).
pub const STORAGE_FAILED: &str =
    "an earlier write to the log failed; writes are refused until the relay is restarted";

/// One write request to the committer.
pub(crate) enum Op {
    /// Append an event unless its delivery id was seen within the window.
    Append {
        channel: String,
        id: String,
        event: NewEvent,
        dedup: Option<super::Dedup>,
        reply: oneshot::Sender<Result<Appended, LogError>>,
    },
    /// Move a group's cursor; forward only unless `force` (an explicit reset).
    Cursor {
        channel: String,
        group: String,
        offset: u64,
        force: bool,
        reply: Option<oneshot::Sender<Result<(), LogError>>>,
    },
    /// Record or replace a dead letter.
    DeadLetter {
        channel: String,
        group: String,
        entry: DeadLetter,
        reply: Option<oneshot::Sender<Result<(), LogError>>>,
    },
    /// Remove a dead letter (redriven and acked).
    RemoveDeadLetter {
        channel: String,
        group: String,
        offset: u64,
    },
    /// Answer once everything queued before it is durable.
    Sync(oneshot::Sender<Result<(), LogError>>),
    /// Mark dead letters for redelivery (an operator's redrive); offsets that are not
    /// dead letters (any more) are skipped, so a mark never outlives its dead letter.
    Redrive {
        channel: String,
        group: String,
        offsets: Vec<u64>,
        at_ms: u64,
        reply: oneshot::Sender<Result<(), LogError>>,
    },
    /// A redriven delivery settled: its mark goes, and in the same batch its dead
    /// letter too (acked) or is replaced by `again` (given up on once more).
    RedriveDone {
        channel: String,
        group: String,
        offset: u64,
        again: Option<DeadLetter>,
        reply: oneshot::Sender<Result<(), LogError>>,
    },
}

enum Reply {
    Append(oneshot::Sender<Result<Appended, LogError>>, Appended),
    Unit(oneshot::Sender<Result<(), LogError>>),
}

pub(crate) struct Committer {
    pub db: sled::Db,
    pub tree: sled::Tree,
    pub shared: Arc<Shared>,
    /// Last assigned offset per channel (may be ahead of the durable head mid-batch).
    pub heads: HashMap<String, u64>,
    /// Last received-at per channel, to keep received-at non-decreasing.
    pub last_ms: HashMap<String, u64>,
    /// Refuses appends while the disk is nearly full.
    pub disk: super::disk::DiskGuard,
}

impl Committer {
    pub fn run(mut self, mut rx: mpsc::Receiver<Op>) {
        let mut ops = Vec::with_capacity(MAX_BATCH_OPS);
        while let Some(first) = rx.blocking_recv() {
            ops.push(first);
            while ops.len() < MAX_BATCH_OPS {
                match rx.try_recv() {
                    Ok(op) => ops.push(op),
                    Err(_) => break,
                }
            }
            self.commit(&mut ops);
        }
        // Every sender is gone: a last flush so nothing applied stays only in memory.
        // Not after a failure: sled could block on the write that failed.
        if self.failed() {
            return;
        }
        if let Err(e) = self.db.flush() {
            tracing::error!(error = %e, "final log flush failed");
        }
    }

    /// Whether the appends of `ops` fit on the disk (see [`super::disk`]); duplicates
    /// are still answered when they do not, since those write nothing.
    fn check_disk(&mut self, ops: &[Op]) -> Result<(), String> {
        let (mut total, mut largest) = (0u64, 0u64);
        for op in ops {
            if let Op::Append { event, .. } = op {
                let size = (event.body.len()
                    + event
                        .headers
                        .iter()
                        .map(|(n, v)| n.len() + v.len())
                        .sum::<usize>()
                    + RECORD_OVERHEAD_BYTES) as u64;
                total += size;
                largest = largest.max(size);
            }
        }
        if total == 0 {
            return Ok(());
        }
        self.disk.check(total, largest)
    }

    fn failed(&self) -> bool {
        self.shared.stats.storage_failed.load(Ordering::Acquire)
    }

    /// Answers every op with the storage failure, writing nothing.
    fn refuse(ops: &mut Vec<Op>) {
        let err = || LogError::Storage(STORAGE_FAILED.to_string());
        for op in ops.drain(..) {
            match op {
                Op::Append { reply, .. } => {
                    let _ = reply.send(Err(err()));
                }
                Op::Cursor {
                    reply: Some(reply), ..
                }
                | Op::DeadLetter {
                    reply: Some(reply), ..
                } => {
                    let _ = reply.send(Err(err()));
                }
                Op::Sync(reply) | Op::Redrive { reply, .. } | Op::RedriveDone { reply, .. } => {
                    let _ = reply.send(Err(err()));
                }
                // Ops without a reply are dropped; a dropped reply reads as `Closed`.
                _ => {}
            }
        }
    }

    fn commit(&mut self, ops: &mut Vec<Op>) {
        if self.failed() {
            Self::refuse(ops);
            return;
        }
        let heads_before = self.heads.clone();
        let mut batch = sled::Batch::default();
        let mut replies = Vec::with_capacity(ops.len());
        let mut touched: Vec<String> = Vec::new();
        // Writes of this batch that later ops of the same batch must see.
        let mut staged: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
        let mut appended = 0u64;
        let disk_full = self.check_disk(ops).err();
        // A storage error met while building the batch; the batch is then not written.
        let mut failure: Option<LogError> = None;

        for op in ops.drain(..) {
            match op {
                Op::Append {
                    channel,
                    id,
                    event,
                    dedup,
                    reply,
                } => {
                    let now = event.received_at_ms;
                    if let Some(d) = &dedup {
                        let key = keys::dedup(&channel, &d.id);
                        match self.lookup(&staged, &key) {
                            Ok(Some(seen)) => {
                                if let Some((offset, at_ms, orig_id)) = decode_dedup(&seen) {
                                    if now.saturating_sub(at_ms) < d.window_ms {
                                        let dup = Appended {
                                            offset,
                                            id: orig_id,
                                            duplicate: true,
                                        };
                                        replies.push(Reply::Append(reply, dup));
                                        continue;
                                    }
                                }
                            }
                            Ok(None) => {}
                            Err(e) => {
                                // A failed read inside the committer may have left sled
                                // half-written (reads can write): fail the whole batch.
                                failure.get_or_insert(e);
                                let none = Appended {
                                    offset: 0,
                                    id: String::new(),
                                    duplicate: false,
                                };
                                replies.push(Reply::Append(reply, none));
                                continue;
                            }
                        }
                    }
                    if let Some(why) = &disk_full {
                        let _ = reply.send(Err(LogError::Storage(why.clone())));
                        continue;
                    }
                    let head = self.heads.entry(channel.clone()).or_insert(0);
                    *head += 1;
                    let offset = *head;
                    let last = self.last_ms.entry(channel.clone()).or_insert(0);
                    *last = (*last).max(now);
                    let record = RecordRef {
                        id: &id,
                        channel: &channel,
                        offset,
                        received_at_ms: *last,
                        method: &event.method,
                        path: &event.path,
                        query: &event.query,
                        headers: &event.headers,
                        body: &event.body,
                        peer: &event.peer,
                        scheme: &event.scheme,
                    };
                    batch.insert(keys::event(&channel, offset), record.encode());
                    batch.insert(keys::head(&channel), &keys::encode_u64(offset));
                    if let Some(d) = dedup {
                        let key = keys::dedup(&channel, &d.id);
                        let value = encode_dedup(offset, now, &id);
                        staged.insert(key.clone(), value.clone());
                        batch.insert(key, value);
                    }
                    if !touched.contains(&channel) {
                        touched.push(channel);
                    }
                    appended += 1;
                    replies.push(Reply::Append(
                        reply,
                        Appended {
                            offset,
                            id,
                            duplicate: false,
                        },
                    ));
                }
                Op::Cursor {
                    channel,
                    group,
                    offset,
                    force,
                    reply,
                } => {
                    let key = keys::cursor(&channel, &group);
                    let current = match self.lookup(&staged, &key) {
                        Ok(v) => v.as_deref().and_then(keys::decode_u64),
                        Err(e) => {
                            failure.get_or_insert(e);
                            if let Some(r) = reply {
                                replies.push(Reply::Unit(r));
                            }
                            continue;
                        }
                    };
                    if force || current.is_none_or(|c| offset > c) {
                        let value = keys::encode_u64(offset).to_vec();
                        staged.insert(key.clone(), value.clone());
                        batch.insert(key, value);
                    }
                    if let Some(r) = reply {
                        replies.push(Reply::Unit(r));
                    }
                }
                Op::DeadLetter {
                    channel,
                    group,
                    entry,
                    reply,
                } => {
                    batch.insert(
                        keys::dead_letter(&channel, &group, entry.offset),
                        entry.encode(),
                    );
                    if let Some(r) = reply {
                        replies.push(Reply::Unit(r));
                    }
                }
                Op::RemoveDeadLetter {
                    channel,
                    group,
                    offset,
                } => batch.remove(keys::dead_letter(&channel, &group, offset)),
                Op::Sync(r) => replies.push(Reply::Unit(r)),
                Op::Redrive {
                    channel,
                    group,
                    offsets,
                    at_ms,
                    reply,
                } => {
                    for offset in offsets {
                        match self.lookup(&staged, &keys::dead_letter(&channel, &group, offset)) {
                            Ok(Some(_)) => batch.insert(
                                keys::redrive(&channel, &group, offset),
                                &keys::encode_u64(at_ms),
                            ),
                            Ok(None) => {}
                            Err(e) => {
                                failure.get_or_insert(e);
                            }
                        }
                    }
                    replies.push(Reply::Unit(reply));
                }
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
                        Some(entry) => batch.insert(key, entry.encode()),
                        None => batch.remove(key),
                    }
                    replies.push(Reply::Unit(reply));
                }
            }
        }

        let started = Instant::now();
        let result = match failure {
            Some(LogError::Storage(m)) => Err(m),
            Some(other) => Err(other.to_string()),
            None => self
                .tree
                .apply_batch(batch)
                .and_then(|()| self.db.flush().map(|_| ()))
                .map_err(|e| e.to_string()),
        };
        if result.is_err() {
            // Nothing of the batch is acknowledged or published: its offsets were never
            // seen by anyone (and no later batch is written, see the module doc).
            self.heads = heads_before;
        }
        let stats = &self.shared.stats;
        stats.batches.fetch_add(1, Ordering::Relaxed);
        stats
            .flush_micros
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);

        match result {
            Ok(()) => {
                stats.appended.fetch_add(appended, Ordering::Relaxed);
                // Publish every head, not only the touched ones; unchanged heads cost
                // nothing (`publish_head` sends only when a head moved).
                for (channel, head) in &self.heads {
                    self.shared.publish_head(channel, *head);
                }
                for r in replies {
                    match r {
                        Reply::Append(tx, a) => {
                            let _ = tx.send(Ok(a));
                        }
                        Reply::Unit(tx) => {
                            let _ = tx.send(Ok(()));
                        }
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "log write failed: this batch is answered 503 and every later write is refused until the relay is restarted");
                stats.failures.fetch_add(1, Ordering::Relaxed);
                stats.storage_failed.store(true, Ordering::Release);
                for r in replies {
                    match r {
                        Reply::Append(tx, _) => {
                            let _ = tx.send(Err(LogError::Storage(e.clone())));
                        }
                        Reply::Unit(tx) => {
                            let _ = tx.send(Err(LogError::Storage(e.clone())));
                        }
                    }
                }
            }
        }
    }

    fn lookup(
        &self,
        staged: &HashMap<Vec<u8>, Vec<u8>>,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, LogError> {
        if let Some(v) = staged.get(key) {
            return Ok(Some(v.clone()));
        }
        self.tree
            .get(key)
            .map(|v| v.map(|v| v.to_vec()))
            .map_err(|e| LogError::Storage(e.to_string()))
    }
}

/// Dedup entry: offset, first-seen unix ms, original event id.
pub(crate) fn encode_dedup(offset: u64, at_ms: u64, id: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(16 + id.len());
    v.extend_from_slice(&offset.to_be_bytes());
    v.extend_from_slice(&at_ms.to_be_bytes());
    v.extend_from_slice(id.as_bytes());
    v
}

pub(crate) fn decode_dedup(v: &[u8]) -> Option<(u64, u64, String)> {
    let offset = keys::decode_u64(v)?;
    let at = keys::decode_u64(v.get(8..)?)?;
    let id = String::from_utf8(v.get(16..)?.to_vec()).ok()?;
    Some((offset, at, id))
}
