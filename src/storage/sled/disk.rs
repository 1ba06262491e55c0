//! Free-space guard: refuse appends while the disk is nearly full, before sled runs
//! out of space.
//!
//! sled 0.34 does not survive ENOSPC in-process: the failed write latches an error (or,
//! for a large value, leaves a log buffer claimed forever), and since sled splits
//! B-tree nodes lazily *during reads*, even reads of the newest events start failing.
//! So the log keeps a reserve: an append is refused with a storage error (ingest: 503)
//! when the filesystem holding the data directory would be left with less than
//! [`DISK_RESERVE_MIN_BYTES`] — or room for [`LEAF_REWRITE_RECORDS`] of the largest
//! records seen, whichever is more, since a node split rewrites a whole leaf. Reads,
//! cursor moves and duplicates keep working, and appends resume by themselves once
//! space is freed. A real write error still stops all writes (see `commit`).

use std::path::{Path, PathBuf};

/// Free space, in bytes, that appends never eat into, unless `[server]
/// disk_reserve_bytes` says otherwise.
pub const DISK_RESERVE_MIN_BYTES: u64 = 64 * 1024 * 1024;
/// How many of the largest records the reserve must hold at least: sled leaves split
/// beyond 16 entries and a split rewrites the leaf, values included.
pub const LEAF_REWRITE_RECORDS: u64 = 24;
/// sled writes each record more than once (log, blob, page rewrites); new records are
/// counted this many times against the free space.
const WRITE_AMPLIFICATION: u64 = 3;

/// Tracks the reserve for one data directory.
pub(crate) struct DiskGuard {
    dir: PathBuf,
    /// The configured reserve (the floor of [`DiskGuard::reserve`]).
    min_reserve: u64,
    largest_record: u64,
    /// Whether the last check refused, so that only changes are logged.
    refusing: bool,
}

impl DiskGuard {
    pub fn new(dir: &Path, min_reserve: u64) -> DiskGuard {
        DiskGuard {
            dir: dir.to_path_buf(),
            min_reserve,
            largest_record: 0,
            refusing: false,
        }
    }

    /// `Err(reason)` when appending records of `total` bytes (the largest `largest`)
    /// would cut into the reserve. Where free space cannot be read, appends go ahead.
    pub fn check(&mut self, total: u64, largest: u64) -> Result<(), String> {
        self.largest_record = self.largest_record.max(largest);
        let Some(free) = free_bytes(&self.dir) else {
            return Ok(());
        };
        let reserve = self.reserve();
        let needed = total.saturating_mul(WRITE_AMPLIFICATION);
        let fits = free >= reserve.saturating_add(needed);
        if fits == self.refusing {
            self.refusing = !fits;
            if fits {
                tracing::info!(
                    free_bytes = free,
                    "the disk has room again: accepting appends"
                );
            } else {
                tracing::error!(
                    free_bytes = free,
                    reserve_bytes = reserve,
                    dir = %self.dir.display(),
                    "the disk holding the log is nearly full: refusing appends (503) until space is freed"
                );
            }
        }
        if fits {
            Ok(())
        } else {
            Err(format!(
                "the disk holding the log is full: {} MiB free, {} MiB kept in reserve",
                free / (1024 * 1024),
                reserve / (1024 * 1024)
            ))
        }
    }

    fn reserve(&self) -> u64 {
        self.min_reserve
            .max(self.largest_record.saturating_mul(LEAF_REWRITE_RECORDS))
    }
}

/// Bytes available to the process on the filesystem holding `dir` (`statvfs`, through
/// rustix's safe wrapper: the crate has no `unsafe`).
#[cfg(unix)]
pub fn free_bytes(dir: &Path) -> Option<u64> {
    let st = rustix::fs::statvfs(dir).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

#[cfg(not(unix))]
pub fn free_bytes(_dir: &Path) -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_space_is_readable_and_the_reserve_grows_with_records() {
        let dir = tempfile::tempdir().expect("tmp");
        assert!(free_bytes(dir.path()).is_some_and(|b| b > 0));
        let mut g = DiskGuard::new(dir.path(), DISK_RESERVE_MIN_BYTES);
        assert_eq!(g.reserve(), DISK_RESERVE_MIN_BYTES);
        let huge = 1u64 << 40;
        assert!(
            g.check(huge, 1).is_err(),
            "a petabyte-sized batch must not fit"
        );
        assert_eq!(g.reserve(), DISK_RESERVE_MIN_BYTES);
        let _ = g.check(1, 16 * 1024 * 1024);
        assert_eq!(g.reserve(), 16 * 1024 * 1024 * LEAF_REWRITE_RECORDS);
        assert!(free_bytes(&dir.path().join("missing")).is_none());
    }
}
