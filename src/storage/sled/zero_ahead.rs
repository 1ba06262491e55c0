//! Zeros written ahead of sled's log while it is idle, so that commits overwrite the
//! file instead of growing it.
//!
//! Why: while the log grows, every commit writes past the end of sled's file, and its
//! `fdatasync` then has to write the inode as well (the new size, the new blocks): one
//! more device write and wait per commit. At a webhook trickle every event is its own
//! commit, so every event paid for it. Writing the segments the log will use next with
//! zeros beforehand makes those commits overwrite blocks the file already has
//! (docs/benchmarks.md, "Zeros ahead of the log").
//!
//! When: a thread looks every [`ZERO_CHECK_INTERVAL`] and keeps [`ZERO_AHEAD_SEGMENTS`]
//! segments (512 KiB each) of zeros past the log's tip, writing one segment at a time
//! and only while the log is idle (no batch for the idle gap of an inline commit:
//! [`super::pace`]) and the disk has room to spare. Unlike an inline commit, a slow
//! last write does not stop it: the zeros block no async worker, and an idle log on a
//! slow disk would otherwise never get them. At full speed the log is never idle, so
//! the zeros do not double what the disk writes there (a first version that zeroed each
//! new segment on the commit path cost 13 % of full-speed ingest); at most 10 MiB/s of
//! zeros are written, enough for a log growing at a few thousand events a second. The
//! thread `fdatasync`s its own zeros, so that no commit has to carry them to the
//! device: it holds the committer while it writes and syncs them, as a commit would. An
//! idle relay pays ten wake-ups a second for it.
//!
//! Where the safety lives: sled's `SegmentAccountant::zero_ahead` writes only at or
//! past the log's tip, under the lock that moves the tip (`vendor/sled/PATCH.md`,
//! change 5). A relay killed after the zeros leaves free segments at the end of the
//! file, which recovery reuses (or truncates) as it does its own zeroed segments.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use super::commit::Committer;
use super::disk;
use super::fsync::LogFile;

/// How often the thread looks whether zeros are due.
pub(crate) const ZERO_CHECK_INTERVAL: Duration = Duration::from_millis(100);
/// Whole segments past the tip kept written with zeros (512 KiB each): the log at
/// 400 events/s fills one in about a quarter of a second.
pub(crate) const ZERO_AHEAD_SEGMENTS: u64 = 2;

/// Why zeros could not be written; the thread then stops (see [`ZeroAhead::run`]).
#[derive(Debug, thiserror::Error)]
enum ZeroError {
    #[error("writing the zeros: {0}")]
    Write(#[from] ::sled::Error),
    #[error("fdatasync of the zeros: {0}")]
    Sync(#[from] std::io::Error),
}

/// The thread's view of the log.
pub(super) struct ZeroAhead {
    /// Weak: the thread must not keep the database (and its file lock) open after the
    /// storage is dropped.
    pub committer: Weak<Mutex<Committer>>,
    /// Its own descriptor of sled's log file, to `fdatasync` the zeros.
    pub log_file: LogFile,
    pub dir: PathBuf,
}

impl ZeroAhead {
    /// Starts the thread; it ends by itself once the storage is gone.
    pub(super) fn spawn(self) -> std::io::Result<()> {
        std::thread::Builder::new()
            .name("log-zero-ahead".into())
            .spawn(move || self.run())
            .map(drop)
    }

    fn run(self) {
        loop {
            std::thread::sleep(ZERO_CHECK_INTERVAL);
            let Some(committer) = self.committer.upgrade() else {
                return;
            };
            if let Err(e) = self.look(&committer) {
                // Not a failure of the log: sled's own writes never depend on these.
                tracing::warn!(error = %e, "writing zeros ahead of the log failed; not trying again until restart");
                return;
            }
        }
    }

    /// Writes the segments of zeros that are due, each only while the log is idle.
    fn look(&self, committer: &Mutex<Committer>) -> Result<(), ZeroError> {
        for _ in 0..ZERO_AHEAD_SEGMENTS {
            let Some(idle) = idle_committer(committer, &self.dir) else {
                return Ok(());
            };
            if self.write_zeros(&idle)? == 0 {
                return Ok(());
            }
        }
        Ok(())
    }

    /// One segment of zeros, if one is due, made durable. Called with the committer
    /// held, like a commit: an append meanwhile queues for the committer's thread
    /// instead of blocking its worker on sled's accountant lock, and no commit's
    /// `fdatasync` waits for the zeros' device write. Returns the bytes written.
    fn write_zeros(&self, committer: &Committer) -> Result<u64, ZeroError> {
        let Some(db) = committer.db_unless_failed() else {
            return Ok(0);
        };
        let written = db.zero_ahead(ZERO_AHEAD_SEGMENTS)?;
        if written > 0 {
            self.log_file.sync()?;
            tracing::debug!(bytes = written, "zeros written ahead of the log");
        }
        Ok(written)
    }
}

/// The committer, if zeros may be written now: the log is idle (never wait for it: a
/// busy committer means it is not) and the disk has room.
fn idle_committer<'a>(
    committer: &'a Mutex<Committer>,
    dir: &Path,
) -> Option<MutexGuard<'a, Committer>> {
    let committer = committer.try_lock().ok()?;
    let ready = committer.pace().idle(Instant::now())
        && has_room(disk::free_bytes(dir), committer.disk_reserve());
    ready.then_some(committer)
}

/// Whether `free` bytes leave room for the zeros: twice the reserve, so that they never
/// bring the refusal of appends nearer. Unknown free space: no zeros.
fn has_room(free: Option<u64>, reserve_bytes: u64) -> bool {
    free.is_some_and(|free| free >= reserve_bytes.saturating_mul(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeros_need_twice_the_reserve_free_and_a_known_free_space() {
        assert!(has_room(Some(200), 100));
        assert!(!has_room(Some(199), 100));
        assert!(!has_room(None, 100));
        assert!(!has_room(Some(u64::MAX - 1), u64::MAX));
    }
}
