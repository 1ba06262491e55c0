//! The durable, append-only event log.
//!
//! This is the only module that knows sled exists. Its interface is small on purpose —
//! append, read a range, the durable head, a way to wait for new events, cursors and
//! dead letters — so that storage can be hardened or replaced without touching ingest,
//! streaming or replay.
//!
//! Durability rules (spec guarantees 1–3):
//! - [`EventLog::append`] answers only after the sled flush that covers the event
//!   (see [`commit`] for how flushes are shared between concurrent appends);
//! - readers never see past the *durable* head, which moves only after a flush;
//! - a channel's head is stored with each event in one atomic batch and kept when old
//!   events are deleted, so offsets stay dense and are never reused.

mod commit;
mod disk;
pub mod keys;

pub mod retention;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use bincode::{Decode, Encode};
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};

pub use crate::common::event::Record;

use commit::{Committer, Op};

/// Depth of the committer's queue; when full, appends wait (backpressure on ingest).
const QUEUE_DEPTH: usize = 16 * 1024;
/// Longest an append waits for its flush before it is answered as a storage failure.
pub const APPEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// sled page cache, in bytes. Small, because the hot data is the tail of each channel.
const CACHE_BYTES: u64 = 32 * 1024 * 1024;

/// Why the log could not do what was asked.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LogError {
    /// The storage failed; nothing was acknowledged.
    #[error("storage failure: {0}")]
    Storage(String),
    /// The log is shut down.
    #[error("the log is closed")]
    Closed,
    /// A stored record did not decode.
    #[error("{0}")]
    Corrupt(String),
}

/// An event as ingest hands it to the log (offset, id and time are assigned here).
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Bytes,
    pub peer: String,
    pub scheme: String,
    /// When the relay received the request, unix ms.
    pub received_at_ms: u64,
}

/// Dedup request: refuse a second event with this delivery id within `window_ms`.
#[derive(Debug, Clone)]
pub struct Dedup {
    pub id: String,
    pub window_ms: u64,
}

/// The result of an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub offset: u64,
    pub id: String,
    /// True when the delivery id was seen before: `offset` and `id` are the original's.
    pub duplicate: bool,
}

/// An event a consumer group gave up on.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, serde::Serialize)]
pub struct DeadLetter {
    pub offset: u64,
    pub reason: String,
    pub attempts: u32,
    /// Last HTTP status from the local service, if any answered.
    pub last_status: Option<u16>,
    pub at_ms: u64,
}

impl DeadLetter {
    fn encode(&self) -> Vec<u8> {
        bincode::encode_to_vec(self, bincode::config::standard()).unwrap_or_default()
    }

    fn decode(bytes: &[u8]) -> Option<DeadLetter> {
        bincode::decode_from_slice(bytes, bincode::config::standard())
            .ok()
            .map(|(d, _)| d)
    }
}

/// A reserved slot for one cursor write (see [`EventLog::reserve_cursor_write`]).
pub struct CursorWrite {
    permit: mpsc::OwnedPermit<Op>,
}

impl CursorWrite {
    /// Queues the write at once; the returned future resolves when it is durable.
    /// `force` allows moving the cursor backwards (a reset).
    pub fn set(
        self,
        channel: &str,
        group: &str,
        offset: u64,
        force: bool,
    ) -> impl std::future::Future<Output = Result<(), LogError>> {
        let (reply, rx) = oneshot::channel();
        self.permit.send(Op::Cursor {
            channel: channel.to_string(),
            group: group.to_string(),
            offset,
            force,
            reply: Some(reply),
        });
        async move { rx.await.map_err(|_| LogError::Closed)? }
    }
}

/// Counters the metrics endpoint reads.
#[derive(Debug, Default)]
pub struct LogStats {
    pub appended: AtomicU64,
    pub batches: AtomicU64,
    pub flush_micros: AtomicU64,
    /// A write failed; every later write is refused until a restart (see `commit`).
    pub storage_failed: std::sync::atomic::AtomicBool,
    pub failures: AtomicU64,
}

/// State shared by the committer and readers.
pub(crate) struct Shared {
    /// Durable head per channel; receivers wake when it moves.
    heads: RwLock<HashMap<String, watch::Sender<u64>>>,
    pub stats: LogStats,
}

impl Shared {
    fn publish_head(&self, channel: &str, head: u64) {
        if let Ok(heads) = self.heads.read() {
            if let Some(tx) = heads.get(channel) {
                if *tx.borrow() != head {
                    tx.send_replace(head);
                }
                return;
            }
        }
        if let Ok(mut heads) = self.heads.write() {
            heads
                .entry(channel.to_string())
                .or_insert_with(|| watch::Sender::new(0))
                .send_replace(head);
        }
    }
}

/// Handle to the log; cheap to clone.
#[derive(Clone)]
pub struct EventLog {
    tree: sled::Tree,
    tx: mpsc::Sender<Op>,
    shared: Arc<Shared>,
}

fn storage(e: sled::Error) -> LogError {
    LogError::Storage(e.to_string())
}

impl EventLog {
    /// Opens (or creates) the log in `dir` and starts its committer thread.
    pub fn open(dir: &Path) -> Result<EventLog, LogError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(CACHE_BYTES)
            .mode(sled::Mode::HighThroughput)
            // We flush explicitly after every batch; a timer flush would only add work.
            .flush_every_ms(None)
            .open()
            .map_err(storage)?;
        let tree = db.open_tree("log").map_err(storage)?;

        let mut heads = HashMap::new();
        let mut last_ms = HashMap::new();
        let mut senders = HashMap::new();
        for kv in tree.scan_prefix(keys::head_prefix()) {
            let (k, v) = kv.map_err(storage)?;
            let channel = String::from_utf8_lossy(&k[2..]).into_owned();
            let head = keys::decode_u64(&v)
                .ok_or_else(|| LogError::Corrupt(format!("head of {channel}")))?;
            if let Some(Ok((_, last))) = tree.get_lt(keys::event(&channel, u64::MAX)).transpose() {
                if let Ok(r) = Record::decode(&last) {
                    last_ms.insert(channel.clone(), r.received_at_ms);
                }
            }
            senders.insert(channel.clone(), watch::Sender::new(head));
            heads.insert(channel, head);
        }

        let shared = Arc::new(Shared {
            heads: RwLock::new(senders),
            stats: LogStats::default(),
        });
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let committer = Committer {
            db,
            tree: tree.clone(),
            shared: shared.clone(),
            heads,
            last_ms,
            disk: disk::DiskGuard::new(dir),
        };
        std::thread::Builder::new()
            .name("log-committer".into())
            .spawn(move || committer.run(rx))
            .map_err(|e| LogError::Storage(format!("cannot start the committer: {e}")))?;
        Ok(EventLog { tree, tx, shared })
    }

    async fn submit<T>(
        &self,
        op: Op,
        rx: oneshot::Receiver<Result<T, LogError>>,
    ) -> Result<T, LogError> {
        self.tx.send(op).await.map_err(|_| LogError::Closed)?;
        rx.await.map_err(|_| LogError::Closed)?
    }

    /// Appends an event and returns once it is durable (or a duplicate was found).
    pub async fn append(
        &self,
        channel: &str,
        event: NewEvent,
        dedup: Option<Dedup>,
    ) -> Result<Appended, LogError> {
        if self.shared.stats.storage_failed.load(Ordering::Acquire) {
            return Err(LogError::Storage(commit::STORAGE_FAILED.to_string()));
        }
        let (reply, rx) = oneshot::channel();
        let id = format!(
            "evt_{}",
            uuid::Builder::from_random_bytes(rand::random())
                .into_uuid()
                .simple()
        );
        let op = Op::Append {
            channel: channel.to_string(),
            id,
            event,
            dedup,
            reply,
        };
        // A storage that stopped answering must not hold providers' requests open
        // forever; a late commit only means an unacknowledged event was stored.
        tokio::time::timeout(APPEND_TIMEOUT, self.submit(op, rx))
            .await
            .unwrap_or_else(|_| {
                Err(LogError::Storage(format!(
                    "the log did not answer within {} s",
                    APPEND_TIMEOUT.as_secs()
                )))
            })
    }

    /// Waits until everything submitted before is durable.
    pub async fn sync(&self) -> Result<(), LogError> {
        let (reply, rx) = oneshot::channel();
        self.submit(Op::Sync(reply), rx).await
    }

    /// The last durable offset of a channel (0 when it has none).
    pub fn head(&self, channel: &str) -> u64 {
        self.shared
            .heads
            .read()
            .ok()
            .and_then(|h| h.get(channel).map(|tx| *tx.borrow()))
            .unwrap_or(0)
    }

    /// A receiver of the channel's durable head; it changes only after a flush.
    pub fn watch(&self, channel: &str) -> watch::Receiver<u64> {
        if let Ok(heads) = self.shared.heads.read() {
            if let Some(tx) = heads.get(channel) {
                return tx.subscribe();
            }
        }
        match self.shared.heads.write() {
            Ok(mut heads) => heads
                .entry(channel.to_string())
                .or_insert_with(|| watch::Sender::new(0))
                .subscribe(),
            // A poisoned lock means a panic elsewhere; a receiver that never moves is safe.
            Err(_) => watch::Sender::new(0).subscribe(),
        }
    }

    /// Channels that have ever stored an event.
    pub fn channels(&self) -> Vec<String> {
        self.shared
            .heads
            .read()
            .map(|h| {
                h.iter()
                    .filter(|(_, tx)| *tx.borrow() > 0)
                    .map(|(c, _)| c.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The first retained offset; `head + 1` when the channel holds no events.
    pub fn earliest(&self, channel: &str) -> Result<u64, LogError> {
        let head = self.head(channel);
        match self
            .tree
            .scan_prefix(keys::event_prefix(channel))
            .keys()
            .next()
        {
            Some(k) => {
                let k = k.map_err(storage)?;
                Ok(keys::trailing_offset(&k).unwrap_or(head + 1).min(head + 1))
            }
            None => Ok(head + 1),
        }
    }

    /// One durable event, if retained.
    pub fn get(&self, channel: &str, offset: u64) -> Result<Option<Record>, LogError> {
        if offset == 0 || offset > self.head(channel) {
            return Ok(None);
        }
        match self
            .tree
            .get(keys::event(channel, offset))
            .map_err(storage)?
        {
            Some(v) => Record::decode(&v)
                .map(Some)
                .map_err(|e| LogError::Corrupt(e.to_string())),
            None => Ok(None),
        }
    }

    /// Up to `limit` durable events with offsets `>= from`, in order.
    pub fn read(&self, channel: &str, from: u64, limit: usize) -> Result<Vec<Record>, LogError> {
        let head = self.head(channel);
        let from = from.max(1);
        if from > head || limit == 0 {
            return Ok(Vec::new());
        }
        let range = keys::event(channel, from)..=keys::event(channel, head);
        let mut out = Vec::with_capacity(limit.min(1024));
        for kv in self.tree.range(range).values().take(limit) {
            let v = kv.map_err(storage)?;
            out.push(Record::decode(&v).map_err(|e| LogError::Corrupt(e.to_string()))?);
        }
        Ok(out)
    }

    /// Up to `limit` durable events with offsets `>= from`, in order, as their stored
    /// bytes (the [`Record`] encoding, version byte first) without decoding them: the
    /// stream sends exactly what is on disk, so it never pays for a decode/re-encode.
    pub fn read_raw(
        &self,
        channel: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, LogError> {
        let head = self.head(channel);
        let from = from.max(1);
        if from > head || limit == 0 {
            return Ok(Vec::new());
        }
        let range = keys::event(channel, from)..=keys::event(channel, head);
        let mut out = Vec::with_capacity(limit.min(1024));
        for kv in self.tree.range(range).take(limit) {
            let (k, v) = kv.map_err(storage)?;
            let offset = keys::trailing_offset(&k).ok_or_else(|| {
                LogError::Corrupt(format!("event key without offset in {channel}"))
            })?;
            out.push((offset, v.to_vec()));
        }
        Ok(out)
    }

    /// The first retained offset whose event was received at or after `ms` (unix ms),
    /// or `head + 1` if none. Received-at is non-decreasing, so this is a binary search
    /// over offsets: O(log n) reads, never a scan of the channel.
    pub fn offset_at_time(&self, channel: &str, ms: u64) -> Result<u64, LogError> {
        let (mut lo, mut hi) = (self.earliest(channel)?, self.head(channel) + 1);
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

    /// A consumer group's committed cursor: the last acknowledged offset.
    pub fn cursor(&self, channel: &str, group: &str) -> Result<Option<u64>, LogError> {
        Ok(self
            .tree
            .get(keys::cursor(channel, group))
            .map_err(storage)?
            .and_then(|v| keys::decode_u64(&v)))
    }

    /// All groups of a channel with their cursors.
    pub fn groups(&self, channel: &str) -> Result<Vec<(String, u64)>, LogError> {
        let prefix = keys::cursor_prefix(channel);
        let mut out = Vec::new();
        for kv in self.tree.scan_prefix(&prefix) {
            let (k, v) = kv.map_err(storage)?;
            let group = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            out.push((group, keys::decode_u64(&v).unwrap_or(0)));
        }
        Ok(out)
    }

    /// Moves a group's cursor forward without waiting for the flush; the next batch
    /// makes it durable. Used for acks, where at most the in-flight window is
    /// redelivered after a crash.
    pub fn advance_cursor(&self, channel: &str, group: &str, offset: u64) -> Result<(), LogError> {
        self.tx
            .try_send(Op::Cursor {
                channel: channel.to_string(),
                group: group.to_string(),
                offset,
                force: false,
                reply: None,
            })
            .map_err(|_| LogError::Closed)
    }

    /// Sets a group's cursor durably; `force` allows moving it backwards (a reset).
    pub async fn set_cursor(
        &self,
        channel: &str,
        group: &str,
        offset: u64,
        force: bool,
    ) -> Result<(), LogError> {
        let (reply, rx) = oneshot::channel();
        let op = Op::Cursor {
            channel: channel.to_string(),
            group: group.to_string(),
            offset,
            force,
            reply: Some(reply),
        };
        self.submit(op, rx).await
    }

    /// Records a dead letter durably.
    pub async fn add_dead_letter(
        &self,
        channel: &str,
        group: &str,
        entry: DeadLetter,
    ) -> Result<(), LogError> {
        let (reply, rx) = oneshot::channel();
        let op = Op::DeadLetter {
            channel: channel.to_string(),
            group: group.to_string(),
            entry,
            reply: Some(reply),
        };
        self.submit(op, rx).await
    }

    /// Removes a dead letter (after a redriven delivery was acked).
    pub async fn remove_dead_letter(
        &self,
        channel: &str,
        group: &str,
        offset: u64,
    ) -> Result<(), LogError> {
        self.tx
            .send(Op::RemoveDeadLetter {
                channel: channel.to_string(),
                group: group.to_string(),
                offset,
            })
            .await
            .map_err(|_| LogError::Closed)
    }

    /// A group's dead letters in offset order.
    pub fn dead_letters(&self, channel: &str, group: &str) -> Result<Vec<DeadLetter>, LogError> {
        let mut out = Vec::new();
        for v in self
            .tree
            .scan_prefix(keys::dead_letter_prefix(channel, group))
            .values()
        {
            if let Some(d) = DeadLetter::decode(&v.map_err(storage)?) {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// How many dead letters a group has (keys only, nothing decoded).
    pub fn dead_letter_count(&self, channel: &str, group: &str) -> Result<usize, LogError> {
        let mut n = 0;
        for k in self
            .tree
            .scan_prefix(keys::dead_letter_prefix(channel, group))
            .keys()
        {
            k.map_err(storage)?;
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
    ) -> Result<Option<DeadLetter>, LogError> {
        Ok(self
            .tree
            .get(keys::dead_letter(channel, group, offset))
            .map_err(storage)?
            .and_then(|v| DeadLetter::decode(&v)))
    }

    /// Marks dead letters for redelivery to their group, durably (an operator's
    /// redrive). The mark lives until that delivery settles ([`EventLog::finish_redrive`]),
    /// so a redrive survives restarts and waits for a consumer if none is connected.
    pub async fn request_redrive(
        &self,
        channel: &str,
        group: &str,
        offsets: Vec<u64>,
        at_ms: u64,
    ) -> Result<(), LogError> {
        let (reply, rx) = oneshot::channel();
        let op = Op::Redrive {
            channel: channel.to_string(),
            group: group.to_string(),
            offsets,
            at_ms,
            reply,
        };
        self.submit(op, rx).await
    }

    /// The offsets of a group's pending redrives, in order.
    pub fn redrives(&self, channel: &str, group: &str) -> Result<Vec<u64>, LogError> {
        let mut out = Vec::new();
        for k in self
            .tree
            .scan_prefix(keys::redrive_prefix(channel, group))
            .keys()
        {
            if let Some(o) = keys::trailing_offset(&k.map_err(storage)?) {
                out.push(o);
            }
        }
        Ok(out)
    }

    /// A redriven delivery settled, durably: the mark goes, and the dead letter with it
    /// when `again` is `None` (acked) or is replaced by `again` (given up on again).
    pub async fn finish_redrive(
        &self,
        channel: &str,
        group: &str,
        offset: u64,
        again: Option<DeadLetter>,
    ) -> Result<(), LogError> {
        let (reply, rx) = oneshot::channel();
        let op = Op::RedriveDone {
            channel: channel.to_string(),
            group: group.to_string(),
            offset,
            again,
            reply,
        };
        self.submit(op, rx).await
    }

    /// Reserves a place in the committer's queue for one cursor write. The write itself
    /// ([`CursorWrite::set`]) is then queued without waiting, so a caller can queue it
    /// under its own lock and thereby order it against other cursor writes (a group
    /// reset against late acks).
    pub async fn reserve_cursor_write(&self) -> Result<CursorWrite, LogError> {
        self.tx
            .clone()
            .reserve_owned()
            .await
            .map(|permit| CursorWrite { permit })
            .map_err(|_| LogError::Closed)
    }

    /// Deletes dedup entries older than their window (`window_ms` per channel).
    /// Deletion is compare-and-swap, so an id re-recorded meanwhile is kept.
    pub fn expire_dedup(
        &self,
        now_ms: u64,
        window_ms: &dyn Fn(&str) -> Option<u64>,
    ) -> Result<usize, LogError> {
        let mut removed = 0;
        for kv in self.tree.scan_prefix(keys::dedup_prefix()) {
            let (k, v) = kv.map_err(storage)?;
            let channel = k[2..]
                .split(|&b| b == 0)
                .next()
                .map(|c| String::from_utf8_lossy(c).into_owned());
            let Some(channel) = channel else { continue };
            let Some((_, at_ms, _)) = commit::decode_dedup(&v) else {
                continue;
            };
            let window = window_ms(&channel).unwrap_or(0);
            if now_ms.saturating_sub(at_ms) >= window
                && self
                    .tree
                    .compare_and_swap(&k, Some(&v), None as Option<&[u8]>)
                    .map_err(storage)?
                    .is_ok()
            {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Write counters for metrics.
    pub fn stats(&self) -> &LogStats {
        &self.shared.stats
    }

    /// Flushes everything queued; after this, acknowledged writes are on disk. Bounded
    /// like an append, so that a wedged storage cannot keep the process from exiting.
    pub async fn close(&self) -> Result<(), LogError> {
        tokio::time::timeout(APPEND_TIMEOUT, self.sync())
            .await
            .unwrap_or_else(|_| {
                Err(LogError::Storage(format!(
                    "the final flush did not finish within {} s",
                    APPEND_TIMEOUT.as_secs()
                )))
            })
    }
}

#[cfg(test)]
mod tests;
