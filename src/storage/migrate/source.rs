//! Opening the sled log to migrate from, with the two mistakes users make named: a
//! directory that holds no log, and one a running relay still has open.

use std::path::Path;

use super::error::MigrateError;
use crate::storage::sled::SledStorage;

/// The file sled keeps its log in, inside the data directory.
const SLED_DB_FILE: &str = "db";
/// What sled's error says when another process holds the directory's lock.
const SLED_LOCK_HELD: &str = "could not acquire lock";

/// Opens the log in `dir` without creating one: a mistyped `--data-dir` must not
/// migrate an empty log that sled made on the spot.
pub fn open(dir: &Path) -> Result<SledStorage, MigrateError> {
    if !dir.join(SLED_DB_FILE).is_file() {
        return Err(MigrateError::NotALog(dir.to_path_buf()));
    }
    // sled locks its directory (flock) for as long as a process has it open, so the
    // lock also proves that no relay appends while we copy.
    SledStorage::open(dir).map_err(|e| {
        if e.detail().contains(SLED_LOCK_HELD) {
            MigrateError::Locked(dir.to_path_buf())
        } else {
            MigrateError::Source(e)
        }
    })
}
