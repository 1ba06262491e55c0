//! The vendored sled's first two changes (`vendor/sled/PATCH.md`; the third is checked by
//! `space_freed_by_retention_is_written_again` in `tests.rs`).
//!
//! 1. Its log writes run on the thread that asks for them, not on sled's I/O thread
//!    pool. Unpatched sled 0.34.7 hands every buffer write to that pool and wakes all
//!    its idle threads for each; at a webhook trickle that was most of the relay's CPU
//!    per event. Both checks of the first test fail with the crates.io sled: the pool's
//!    threads are named `sled-io-N`, and the caller's own write counter stays put
//!    because another thread did the `pwrite`.
//! 2. A flush leaves the device write to the committer's `fdatasync`: no
//!    `sync_file_range`, which waits for the device. The second test fails with the
//!    crates.io sled when the directory is on a block device: each flush then sleeps
//!    until its write completes.

use std::path::Path;

/// Bytes the calling thread handed to write-type syscalls so far (`wchar` of
/// `/proc/thread-self/io`).
pub(super) fn thread_written_bytes() -> u64 {
    let io = std::fs::read_to_string("/proc/thread-self/io").expect("/proc/thread-self/io");
    io.lines()
        .find_map(|l| l.strip_prefix("wchar:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("a wchar line")
}

/// Names of this process's threads that belong to sled's I/O pool.
fn sled_pool_threads() -> Vec<String> {
    let tasks = std::fs::read_dir("/proc/self/task").expect("/proc/self/task");
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_string())
        .filter(|name| name.starts_with("sled-io"))
        .collect()
}

pub(super) fn open(dir: &Path) -> ::sled::Db {
    // The timer thread off: only this test's thread may write.
    ::sled::Config::new()
        .path(dir)
        .flush_every_ms(None)
        .open()
        .expect("sled")
}

/// A new database in a temporary directory, and its `log` tree.
fn open_fresh() -> (tempfile::TempDir, ::sled::Db, ::sled::Tree) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(dir.path());
    let tree = db.open_tree("log").expect("tree");
    (dir, db, tree)
}

#[test]
fn a_flush_writes_the_log_on_the_calling_thread_without_a_pool() {
    const VALUE_BYTES: usize = 1024;
    let (dir, db, tree) = open_fresh();
    for round in 0..3u8 {
        let mut batch = ::sled::Batch::default();
        batch.insert(&[round][..], vec![round; VALUE_BYTES]);
        let before = thread_written_bytes();
        tree.apply_batch(batch).expect("apply");
        db.flush().expect("flush");
        let written = thread_written_bytes() - before;
        assert!(
            written >= VALUE_BYTES as u64,
            "round {round}: this thread wrote {written} bytes for a {VALUE_BYTES}-byte value: \
             the log write ran on another thread (is sled patched? see vendor/sled/PATCH.md)"
        );
    }
    assert_eq!(
        sled_pool_threads(),
        Vec::<String>::new(),
        "sled started its I/O pool"
    );
    drop((tree, db));
    // And what was flushed reads back after a reopen.
    let db = open(dir.path());
    let tree = db.open_tree("log").expect("tree");
    for round in 0..3u8 {
        let value = tree.get([round]).expect("get").expect("flushed value");
        assert_eq!(&value[..], &vec![round; VALUE_BYTES][..]);
    }
}

/// Times the calling thread gave up the CPU of its own accord (`voluntary_ctxt_switches`
/// of `/proc/thread-self/status`): a thread waiting for a device write sleeps.
fn thread_voluntary_switches() -> u64 {
    let status =
        std::fs::read_to_string("/proc/thread-self/status").expect("/proc/thread-self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("a voluntary_ctxt_switches line")
}

#[test]
fn a_flush_does_not_wait_for_the_device() {
    const FLUSHES: u64 = 20;
    let (dir, db, tree) = open_fresh();
    let before = thread_voluntary_switches();
    for round in 0..FLUSHES {
        tree.insert(round.to_be_bytes(), vec![1u8; 1024])
            .expect("insert");
        db.flush().expect("flush");
    }
    let slept = thread_voluntary_switches() - before;
    // A pwrite into the page cache rarely sleeps; sync_file_range(WAIT_AFTER) on a
    // block device sleeps once per flush at least.
    assert!(
        slept < FLUSHES / 2,
        "{slept} sleeps in {FLUSHES} flushes: sled's flush waited for the device \
         (is sled patched? see vendor/sled/PATCH.md, change 2)"
    );
    // What the fdatasync then makes durable reads back after a reopen.
    std::fs::File::open(dir.path().join("db"))
        .and_then(|f| f.sync_data())
        .expect("fdatasync");
    drop((tree, db));
    let db = open(dir.path());
    let tree = db.open_tree("log").expect("tree");
    assert_eq!(tree.len(), FLUSHES as usize);
}
