//! The fsync sled leaves out.
//!
//! On Linux, sled 0.34's flush writes the log with `sync_file_range` (WAIT_BEFORE |
//! WRITE | WAIT_AFTER) and never calls `fsync`/`fdatasync` (only its timer thread
//! does, once a second, unrelated to any acknowledgement). `sync_file_range` writes
//! the pages but neither the file's metadata (its new size, when the write grew it)
//! nor the disk's volatile write cache, so an acknowledged event could be lost in a
//! power cut. After each flush the committer therefore `fdatasync`s the log file
//! itself: through any descriptor of the same inode it makes the file's data and size
//! durable and flushes the device cache. The pages are already written by then, so it
//! costs the metadata commit and the cache flush, not a second write.
//! `tests/power_cut.rs` fails without it: a power cut then loses the events
//! acknowledged since the timer's last tick.

use std::fs::File;
use std::path::Path;

/// The name of sled's log file inside its directory (`Config::db_path`).
const SLED_LOG_FILE: &str = "db";

/// sled's log file, opened read-only for `fdatasync`.
pub(super) struct LogFile(File);

impl LogFile {
    /// Opens the log file of the sled database in `dir` (sled has created it by the
    /// time the database is open).
    pub(super) fn open(dir: &Path) -> std::io::Result<LogFile> {
        File::open(dir.join(SLED_LOG_FILE)).map(LogFile)
    }

    /// Makes everything sled has written (and flushed) durable.
    pub(super) fn sync(&self) -> std::io::Result<()> {
        self.0.sync_data()
    }
}
