//! Storage: everything the relay needs from its durable log, as one trait.
//!
//! The relay appends, reads, waits on the durable head, and keeps consumer groups'
//! cursors, dead letters and redrive marks. [`Storage`] is that list and nothing more,
//! so that a second backend (a replicated one) can stand in for the embedded one
//! without touching ingest, streaming, the admin API or retention.
//!
//! Implementations: [`sled`] (embedded, one data directory) and [`jetstream`] (NATS
//! JetStream, replicated; `[storage] backend = "jetstream"`). [`contract`] is the test
//! suite every implementation must pass; it is the definition of the guarantees below
//! as far as storage is concerned.
//!
//! # What every implementation guarantees
//!
//! - **Durable before answer** (spec guarantee 1): [`Storage::append`] returns `Ok` only
//!   once the event survives a crash of this process (sled: after the flush that covers
//!   it). A failed append stored nothing that a reader can see.
//! - **Dense offsets** (guarantee 2): per channel 1, 2, 3, … with no gap and no reuse,
//!   across reopen and retention.
//! - **Readers stop at the durable head** (guarantee 3): reads and [`Storage::watch`]
//!   never show an offset before its append was answered `Ok`.
//! - **Cursors only move forward** unless a reset asks otherwise (`force`), so a late
//!   acknowledgement can never move a group back (guarantee 4).
//!
//! # Sync and async
//!
//! Methods that touch the log are `async`. A few small reads are synchronous because
//! the relay takes them under its group lock or in `Drop`: [`Storage::head`],
//! [`Storage::watch`], [`Storage::channels`], [`Storage::earliest`],
//! [`Storage::cursor`] and [`Storage::stats`]. An implementation answers them from
//! memory or a local cache that it keeps current; they must not wait on a network.

pub mod api;
pub mod contract;
pub mod error;
pub mod jetstream;
pub mod lease;
pub mod migrate;
pub mod sled;
pub mod transfer;
pub mod types;

use std::path::Path;
use std::sync::Arc;

use crate::common::config::StorageConfig;

pub use api::{BoxFuture, CursorSlot, Storage};
pub use error::StorageError;
pub use lease::{Control, Lease, LeaseGrant, LocalLease, LEASE_RETRY_MS};
pub use types::{Appended, DeadLetter, Dedup, Limits, NewEvent, Pass, StorageStats};

/// Opens the configured backend. Today that is the embedded log in `data_dir`, which
/// refuses appends (503) while its disk has less than `disk_reserve_bytes` free. This is
/// the one place outside a backend's folder that knows which backends exist, so the
/// relay and its tests never name one.
pub fn open(data_dir: &Path, disk_reserve_bytes: u64) -> Result<Arc<dyn Storage>, StorageError> {
    Ok(Arc::new(self::sled::SledStorage::open_with_reserve(
        data_dir,
        disk_reserve_bytes,
    )?))
}

/// Opens the backend `config` names: the embedded log in `data_dir` (see [`open`]), or
/// the JetStream buckets and the streams of `channels` (name, dedup window), which it
/// creates or updates
/// and whose servers it checks first (refusing to start when they cannot keep the
/// guarantees).
pub async fn open_configured(
    config: &StorageConfig,
    data_dir: &Path,
    disk_reserve_bytes: u64,
    channels: &[(String, std::time::Duration)],
) -> Result<Arc<dyn Storage>, StorageError> {
    match config {
        StorageConfig::Sled => open(data_dir, disk_reserve_bytes),
        StorageConfig::JetStream(js) => {
            let storage = jetstream::JetStreamStorage::open(js).await?;
            storage.prepare(channels).await?;
            Ok(Arc::new(storage))
        }
    }
}

/// Where the configured log lives, for messages: the data directory or the servers.
pub fn location(config: &StorageConfig, data_dir: &Path) -> String {
    match config {
        StorageConfig::Sled => data_dir.display().to_string(),
        StorageConfig::JetStream(js) => format!(
            "JetStream at {} (stream prefix {})",
            js.servers.join(", "),
            js.stream_prefix
        ),
    }
}
