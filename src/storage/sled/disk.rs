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
use std::time::{Duration, Instant};

/// Free space, in bytes, that appends never eat into, unless `[server]
/// disk_reserve_bytes` says otherwise.
pub const DISK_RESERVE_MIN_BYTES: u64 = 64 * 1024 * 1024;
/// How many of the largest records the reserve must hold at least: sled leaves split
/// beyond 16 entries and a split rewrites the leaf, values included.
pub const LEAF_REWRITE_RECORDS: u64 = 24;
/// sled writes each record more than once (log, blob, page rewrites); new records are
/// counted this many times against the free space.
const WRITE_AMPLIFICATION: u64 = 3;
/// How long a reading of the free space stands in for the next ones, minus what was
/// written since, while the disk has room for twice the reserve. At a webhook trickle
/// every event is its own batch, and a `statfs` per batch was one system call per
/// event (issue 17's syscall count); near the reserve every check reads it again.
const FREE_SPACE_READING_TTL: Duration = Duration::from_millis(100);

/// The last free-space reading, and what appends have used of it since.
struct Reading {
    free: u64,
    at: Instant,
    used: u64,
}

/// Tracks the reserve for one data directory.
pub(crate) struct DiskGuard {
    dir: PathBuf,
    /// The configured reserve (the floor of [`DiskGuard::reserve`]).
    min_reserve: u64,
    largest_record: u64,
    /// Whether the last check refused, so that only changes are logged.
    refusing: bool,
    last: Option<Reading>,
}

impl DiskGuard {
    pub fn new(dir: &Path, min_reserve: u64) -> DiskGuard {
        DiskGuard {
            dir: dir.to_path_buf(),
            min_reserve,
            largest_record: 0,
            refusing: false,
            last: None,
        }
    }

    /// `Err(reason)` when appending records of `total` bytes (the largest `largest`)
    /// would cut into the reserve. Where free space cannot be read, appends go ahead.
    pub fn check(&mut self, total: u64, largest: u64) -> Result<(), String> {
        self.largest_record = self.largest_record.max(largest);
        let reserve = self.reserve();
        let needed = total.saturating_mul(WRITE_AMPLIFICATION);
        let Some(free) = self.free(reserve.saturating_mul(2).saturating_add(needed)) else {
            return Ok(());
        };
        let fits = free >= reserve.saturating_add(needed);
        if fits {
            if let Some(r) = &mut self.last {
                r.used = r.used.saturating_add(needed);
            }
        }
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

    /// Free bytes: the last reading minus what was used since, while that reading is
    /// recent, the last check did not refuse, and at least `ample` bytes are left;
    /// otherwise a new reading.
    fn free(&mut self, ample: u64) -> Option<u64> {
        if let Some(r) = &self.last {
            let left = r.free.saturating_sub(r.used);
            if !self.refusing && r.at.elapsed() < FREE_SPACE_READING_TTL && left >= ample {
                return Some(left);
            }
        }
        let free = free_bytes(&self.dir)?;
        self.last = Some(Reading {
            free,
            at: Instant::now(),
            used: 0,
        });
        Some(free)
    }

    pub(crate) fn reserve(&self) -> u64 {
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

    #[test]
    fn a_recent_reading_counts_what_was_written_since_and_near_the_reserve_is_read_again() {
        let dir = tempfile::tempdir().expect("tmp");
        let free = free_bytes(dir.path()).expect("free space");
        let mut g = DiskGuard::new(dir.path(), 1);
        assert!(g.check(1000, 1000).is_ok());
        let first = g.last.as_ref().expect("a reading").at;
        assert!(g.check(1000, 1000).is_ok());
        let r = g.last.as_ref().expect("a reading");
        assert_eq!(r.at, first, "a recent reading with room to spare is reused");
        assert_eq!(r.used, 2000 * WRITE_AMPLIFICATION);
        // A batch that would leave less than twice the reserve reads the disk again.
        let mut near = DiskGuard::new(dir.path(), free / 2);
        assert!(near.check(1, 1).is_ok() || near.refusing);
        let first = near.last.as_ref().expect("a reading").at;
        let _ = near.check(1, 1);
        assert!(near.last.as_ref().expect("a reading").at > first);
    }
}
