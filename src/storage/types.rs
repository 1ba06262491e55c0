//! What goes into storage and what comes back, independent of the backend.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use bincode::{Decode, Encode};
use bytes::Bytes;

/// An event as ingest hands it to storage; the offset, id and stored time are assigned
/// by the backend when it appends.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// HTTP method as received.
    pub method: String,
    /// Path suffix after `/hooks/{channel}`, with its leading `/`, or empty.
    pub path: String,
    /// Raw query string without the `?`, or empty.
    pub query: String,
    /// Header names (lower case) and raw values, in the order received.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body's exact bytes.
    pub body: Bytes,
    /// The sender's address as the relay saw it.
    pub peer: String,
    /// The scheme that verified the event (`none` included).
    pub scheme: String,
    /// When the relay received the request, unix ms.
    pub received_at_ms: u64,
}

impl NewEvent {
    /// Bytes the event takes in memory and, roughly, on disk (body and headers).
    pub fn size_bytes(&self) -> usize {
        self.body.len()
            + self
                .headers
                .iter()
                .map(|(n, v)| n.len() + v.len())
                .sum::<usize>()
    }
}

/// Deduplication: refuse a second event with this delivery id within `window_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dedup {
    /// The provider's delivery id (or another key that identifies one request).
    pub id: String,
    /// How long an id is remembered, in milliseconds.
    pub window_ms: u64,
}

/// The result of an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// The event's offset in its channel.
    pub offset: u64,
    /// The event id (`evt_...`), stable across redeliveries.
    pub id: String,
    /// True when the delivery id was seen before: `offset` and `id` are the original's.
    pub duplicate: bool,
}

/// An event a consumer group gave up on.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, serde::Serialize)]
pub struct DeadLetter {
    /// The event's offset.
    pub offset: u64,
    /// Why delivery gave up, for a person.
    pub reason: String,
    /// Delivery attempts made.
    pub attempts: u32,
    /// Last HTTP status from the local service, if any answered.
    pub last_status: Option<u16>,
    /// When it was dead-lettered, unix ms.
    pub at_ms: u64,
}

/// Retention limits for one channel; `None` means unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Events older than this (by received-at) go.
    pub max_age_ms: Option<u64>,
    /// At most this many events are kept.
    pub max_events: Option<u64>,
    /// At most this many bytes of events are kept.
    pub max_bytes: Option<u64>,
}

/// What one retention pass removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// Events deleted.
    pub events: u64,
    /// The first retained offset after the pass.
    pub earliest: u64,
}

/// Counters every backend keeps, read by `/metrics`.
#[derive(Debug, Default)]
pub struct StorageStats {
    /// Events durably appended.
    pub appended: AtomicU64,
    /// Group commits (one flush or one acknowledged publish batch each).
    pub batches: AtomicU64,
    /// Time spent writing and flushing batches, in microseconds.
    pub flush_micros: AtomicU64,
    /// A write failed; every later write is refused until a restart (fail-stop).
    pub storage_failed: AtomicBool,
    /// Failed batches.
    pub failures: AtomicU64,
    /// Events removed by retention.
    pub retention_removed: AtomicU64,
    /// Told the size of every group commit (see [`BatchObserver`]).
    pub batch_observer: BatchObserver,
}

impl StorageStats {
    /// Counts one group commit of `size` operations and tells the observer, if any.
    pub fn record_batch(&self, size: usize) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.batch_observer.observe(size);
    }
}

/// A function a backend's writer calls with the size of each group commit.
pub type BatchSizeFn = Arc<dyn Fn(usize) + Send + Sync>;

/// Where batch sizes go: a plain callback, so that storage stays free of any metrics
/// library (the relay installs one that feeds its Prometheus histogram; storage must
/// not import the relay, and a callback keeps the bucket layout in one place, the
/// relay's metrics, instead of a second atomic bucket array here).
#[derive(Default)]
pub struct BatchObserver(OnceLock<BatchSizeFn>);

impl BatchObserver {
    /// Installs the callback; only the first call counts (one registry per process).
    pub fn set(&self, f: BatchSizeFn) {
        let _ = self.0.set(f);
    }

    fn observe(&self, size: usize) {
        if let Some(f) = self.0.get() {
            f(size);
        }
    }
}

impl std::fmt::Debug for BatchObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "BatchObserver(set)"
        } else {
            "BatchObserver(unset)"
        })
    }
}

/// A fresh event id: `evt_` and a random UUID. Every backend assigns ids this way, so an
/// id never collides across restarts, nodes or backends (and survives `migrate`).
pub fn new_event_id() -> String {
    format!(
        "evt_{}",
        uuid::Builder::from_random_bytes(rand::random())
            .into_uuid()
            .simple()
    )
}
