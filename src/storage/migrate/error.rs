//! Why a migration stopped. Each says what to do next; none holds event contents.

use std::path::PathBuf;

use crate::storage::error::StorageError;

/// A migration that could not start or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The source directory holds no sled log (a wrong `--data-dir`).
    #[error("{} holds no hookrelay log (no sled database in it)", .0.display())]
    NotALog(PathBuf),
    /// Another process (a relay) has the source open: sled locks its directory.
    #[error(
        "the data directory {} is in use by another process: stop the relay first, \
         then run migrate again",
        .0.display()
    )]
    Locked(PathBuf),
    /// The target already holds something this log cannot continue; nothing was written.
    #[error(
        "the target does not continue this log: channel {channel}: {why}; nothing was \
         written (delete the target's streams and buckets, or use another stream_prefix)"
    )]
    Inconsistent {
        /// The channel whose target disagrees.
        channel: String,
        /// How it disagrees.
        why: String,
    },
    /// Reading the source failed.
    #[error("reading the sled log: {}", .0.detail())]
    Source(StorageError),
    /// Writing to (or reading) the target failed; run migrate again to resume.
    #[error("JetStream: {}; run migrate again to resume", .0.detail())]
    Target(StorageError),
}

impl MigrateError {
    /// A target disagreement on `channel`.
    pub fn inconsistent(channel: &str, why: String) -> MigrateError {
        MigrateError::Inconsistent {
            channel: channel.to_string(),
            why,
        }
    }
}
