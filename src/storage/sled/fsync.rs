//! The fsync sled leaves out.
//!
//! sled 0.34 on Linux never calls `fsync`/`fdatasync` on a flush (only its timer thread
//! does, once a second, unrelated to any acknowledgement). Upstream, its flush ends
//! with `sync_file_range` (WAIT_BEFORE | WRITE | WAIT_AFTER), which writes the pages but
//! neither the file's metadata (its new size, when the write grew it) nor the disk's
//! volatile write cache; hookrelay's patched sled (`vendor/sled/PATCH.md`) leaves even
//! that out for the buffers a flush seals, so after sled's flush they sit in the page
//! cache. After each flush the committer therefore `fdatasync`s the log file itself:
//! through any descriptor of the same inode it writes the file's data and size and
//! flushes the device cache, in one pass for everything the batch wrote.
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

    /// Any file as the log file: tests give one whose `fdatasync` fails.
    #[cfg(test)]
    pub(super) fn from_file(file: File) -> LogFile {
        LogFile(file)
    }

    /// Makes everything sled has written (and flushed) durable.
    pub(super) fn sync(&self) -> std::io::Result<()> {
        self.0.sync_data()
    }
}
