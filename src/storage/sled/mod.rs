//! The embedded backend: one sled tree in the relay's data directory.
//!
//! This folder is the only place that names sled. Layout:
//! - [`keys`]: the key layout of the single tree (events, heads, dedup, cursors, dead
//!   letters, redrive marks);
//! - `commit`: the one writer — group commit, offsets, dedup, fail-stop; `thread`: the
//!   loop of its thread; `inline`: at a trickle, the appending task commits instead
//!   (`pace`: when);
//!   `linger`: ack cursor moves that wait for the next batch instead of flushing alone;
//! - `read`: reads, capped at the durable head; `heads`: that head, with watchers;
//! - `retention`: deleting old events; `disk`: the free-space reserve; `zero_ahead`:
//!   zeros written past the log's end while it is idle, so that commits do not grow it;
//! - `codec`: byte forms of small values; `backend`: the [`crate::storage::Storage`]
//!   impl that ties them together; `export`: the extra reads `hookrelay migrate` needs.
//!
//! Durability (spec guarantees 1–3): an append is answered only after the sled flush
//! that covers it; readers never see past the durable head, which moves only after a
//! flush; a channel's head is written with each event in one atomic batch and kept
//! when old events are deleted, so offsets stay dense and are never reused.
//!
//! sled 0.34 has open corruption reports and cannot recover from a write error
//! in-process; both are why it sits behind the trait, and why the crash tests SIGKILL
//! real relays (`tests/crash.rs`).

mod backend;
mod codec;
mod commit;
pub(crate) mod disk;
mod export;
pub(crate) mod fsync;
mod heads;
mod inline;
pub mod keys;
mod linger;
mod pace;
mod probe;
mod read;
mod retention;
mod settings;
mod thread;
mod zero_ahead;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use crate::common::event::Record;
use crate::storage::api::{BoxFuture, CursorSlot};
use crate::storage::error::StorageError;
use commit::{Committer, Op};
use heads::Shared;
use read::{failed, Reader};

pub use disk::DISK_RESERVE_MIN_BYTES;

/// Depth of the committer's queue; when full, appends wait (backpressure on ingest).
const QUEUE_DEPTH: usize = 16 * 1024;
/// Longest an append (or the final flush) waits before it is answered as a failure.
pub const APPEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// sled page cache, in bytes. Small, because the hot data is the tail of each channel.
const CACHE_BYTES: u64 = 32 * 1024 * 1024;
/// Reads that start fewer than this many events below the head run inline (see
/// `near_head`): recent enough to be in the page cache above even at large bodies.
const NEAR_HEAD_EVENTS: u64 = 64;
/// How often sled's own thread wakes to flush and clean segments (see `open_with_reserve`).
const SEGMENT_GC_INTERVAL_MS: u64 = 1000;

/// The sled backend; cheap to clone (every clone shares one committer).
#[derive(Clone)]
pub struct SledStorage {
    reader: Reader,
    tx: mpsc::Sender<Op>,
    /// The one writer, taken in turns by its thread and, while the log is idle, by an
    /// appending task (see `inline`).
    committer: Arc<Mutex<Committer>>,
    /// Acks' cursor moves, held for the committer's next batch without waking it.
    linger: Arc<linger::SharedLinger>,
    dir: PathBuf,
    /// The configured free-space reserve (appends are refused below it).
    reserve_bytes: u64,
    settings: settings::Settings,
}

impl SledStorage {
    /// Opens (or creates) the log in `dir` with the default disk reserve.
    pub fn open(dir: &Path) -> Result<SledStorage, StorageError> {
        Self::open_with_reserve(dir, DISK_RESERVE_MIN_BYTES)
    }

    /// Opens (or creates) the log in `dir` and starts its committer thread; appends are
    /// refused while the disk has less than `reserve_bytes` free (see `disk`).
    pub fn open_with_reserve(dir: &Path, reserve_bytes: u64) -> Result<SledStorage, StorageError> {
        let db = open_db(dir)?;
        let tree = db.open_tree("log").map_err(failed)?;
        let (heads, last_ms) = load_heads(&tree)?;
        let shared = Arc::new(Shared::new(heads.clone()));
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let disk = disk::DiskGuard::new(dir, reserve_bytes);
        let open_log = || {
            fsync::LogFile::open(dir).map_err(|e| {
                StorageError::Failed(format!("opening sled's log file for fdatasync: {e}"))
            })
        };
        let log_file = open_log()?;
        let settings_tree = db.open_tree(settings::TREE).map_err(failed)?;
        let settings = settings::Settings::new(settings_tree, Arc::new(open_log()?));
        let linger = Arc::new(linger::SharedLinger::default());
        let committer = Arc::new(Mutex::new(Committer::new(
            db,
            tree.clone(),
            shared.clone(),
            heads,
            last_ms,
            disk,
            log_file,
        )));
        let thread_linger = linger.clone();
        let thread_committer = committer.clone();
        std::thread::Builder::new()
            .name("log-committer".into())
            .spawn(move || thread::run(thread_committer, thread_linger, rx))
            .map_err(|e| StorageError::Failed(format!("cannot start the committer: {e}")))?;
        let zeros = zero_ahead::ZeroAhead {
            committer: Arc::downgrade(&committer),
            log_file: open_log()?,
            dir: dir.to_path_buf(),
        };
        // Only a saving at a trickle: the log works the same without it.
        if let Err(e) = zeros.spawn() {
            tracing::warn!(error = %e, "cannot start writing zeros ahead of the log");
        }
        Ok(SledStorage {
            reader: Reader { tree, shared },
            tx,
            committer,
            linger,
            dir: dir.to_path_buf(),
            reserve_bytes,
            settings,
        })
    }

    /// Sends an op and waits for its answer.
    async fn submit<T>(
        &self,
        op: Op,
        rx: oneshot::Receiver<Result<T, StorageError>>,
    ) -> Result<T, StorageError> {
        self.tx.send(op).await.map_err(|_| StorageError::Closed)?;
        rx.await.map_err(|_| StorageError::Closed)?
    }

    /// Whether a read from `from` stays among the channel's newest events, which the
    /// committer has just written and sled still holds in its page cache: such a read
    /// is a few microseconds of memory work, done on the caller's worker. A live
    /// subscription reads there for every event; sending each of those reads to the
    /// blocking pool cost two thread wake-ups per delivered batch, which at a trickle
    /// is a large part of the relay's CPU per event (issue 17's profile).
    fn near_head(&self, channel: &str, from: u64) -> bool {
        self.reader.shared.head(channel).saturating_sub(from) < NEAR_HEAD_EVENTS
    }

    /// Runs a read on the blocking pool: sled may touch the disk for older events, and
    /// that must not hold up the async workers.
    async fn blocking<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Reader) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        let reader = self.reader.clone();
        tokio::task::spawn_blocking(move || read(&reader))
            .await
            .map_err(|_| StorageError::Failed("the log read was interrupted".into()))?
    }
}

/// Opens sled in `dir` with hookrelay's settings.
fn open_db(dir: &Path) -> Result<::sled::Db, StorageError> {
    ::sled::Config::new()
        .path(dir)
        .cache_capacity(CACHE_BYTES)
        .mode(::sled::Mode::HighThroughput)
        // We flush explicitly after every batch, but sled 0.34 cleans segments (moves
        // live pages out of mostly-dead segments so they can be reused) only on its
        // timer thread (`flusher.rs` calls `attempt_gc`). With the timer off, space
        // freed by retention was never reclaimed: the soak's data dir grew ~1.4 KB per
        // event ingested whatever `max_events` said. One tick a second costs one wake-up.
        .flush_every_ms(Some(SEGMENT_GC_INTERVAL_MS))
        .open()
        .map_err(failed)
}

/// Every channel's head on disk, and the received-at of its newest event (so that
/// received-at stays non-decreasing across restarts).
type LoadedHeads = (HashMap<String, u64>, HashMap<String, u64>);

fn load_heads(tree: &::sled::Tree) -> Result<LoadedHeads, StorageError> {
    let mut heads = HashMap::new();
    let mut last_ms = HashMap::new();
    for kv in tree.scan_prefix(keys::head_prefix()) {
        let (k, v) = kv.map_err(failed)?;
        let channel = String::from_utf8_lossy(&k[2..]).into_owned();
        let head = keys::decode_u64(&v)
            .ok_or_else(|| StorageError::Corrupt(format!("head of {channel}")))?;
        if let Some(Ok((_, last))) = tree.get_lt(keys::event(&channel, u64::MAX)).transpose() {
            if let Ok(r) = Record::decode(&last) {
                last_ms.insert(channel.clone(), r.received_at_ms);
            }
        }
        heads.insert(channel, head);
    }
    Ok((heads, last_ms))
}

/// A reserved place in the committer's queue for one cursor write.
struct SledCursorSlot {
    permit: mpsc::OwnedPermit<Op>,
    linger: Arc<linger::SharedLinger>,
}

impl CursorSlot for SledCursorSlot {
    fn set(
        self: Box<Self>,
        channel: &str,
        group: &str,
        offset: u64,
        force: bool,
    ) -> BoxFuture<'static, Result<(), StorageError>> {
        if force {
            self.linger.reset_queued(channel, group);
        }
        let (reply, rx) = oneshot::channel();
        self.permit.send(Op::Cursor {
            channel: channel.to_string(),
            group: group.to_string(),
            offset,
            force,
            reply: Some(reply),
        });
        Box::pin(async move { rx.await.map_err(|_| StorageError::Closed)? })
    }
}

/// Bytes of the files under `dir`, recursively (sled keeps a few files and a `blobs/`
/// folder).
fn dir_bytes(dir: &Path) -> Option<u64> {
    let mut total = 0u64;
    for entry in std::fs::read_dir(dir).ok()? {
        let entry = entry.ok()?;
        let meta = entry.metadata().ok()?;
        total += if meta.is_dir() {
            dir_bytes(&entry.path()).unwrap_or(0)
        } else {
            meta.len()
        };
    }
    Some(total)
}

#[cfg(test)]
pub(crate) mod tests;

#[cfg(test)]
#[path = "inline_io_tests.rs"]
mod inline_io_tests;

#[cfg(test)]
#[path = "tail_split_tests.rs"]
mod tail_split_tests;

#[cfg(test)]
#[path = "zero_ahead_tests.rs"]
mod zero_ahead_tests;
