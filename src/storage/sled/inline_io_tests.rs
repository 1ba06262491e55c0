//! The vendored sled's changes 1, 2 and 4 (`vendor/sled/PATCH.md`; the third is checked
//! by `space_freed_by_retention_is_written_again` in `tests.rs`).
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
//! 4. A new segment at the end of the log file is written whole with zeros before its
//!    first use, so that the flushes filling it do not grow the file. The third test
//!    fails with the crates.io sled; the fourth checks that a zeroed segment a crash
//!    leaves behind is reused.

use std::path::Path;

/// Bytes the calling thread handed to write-type syscalls so far (`wchar` of
/// `/proc/thread-self/io`).
fn thread_written_bytes() -> u64 {
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

fn open(dir: &Path) -> ::sled::Db {
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

/// sled's default segment size (`Config::segment_size`), which hookrelay keeps.
const SEGMENT_BYTES: u64 = 512 * 1024;

/// The length of the database's log file.
fn log_len(dir: &Path) -> u64 {
    std::fs::metadata(dir.join("db")).expect("db file").len()
}

/// Change 4: a new segment is written whole before the log uses it, so the flushes
/// that fill it do not grow the file (and their `fdatasync` need not write the inode).
/// Fails with the crates.io sled: there the file grows with each flush.
#[test]
fn flushes_into_a_new_segment_do_not_grow_the_file() {
    let (dir, db, tree) = open_fresh();
    tree.insert(0u64.to_be_bytes(), vec![1u8; 1024])
        .expect("insert");
    db.flush().expect("flush");
    let len = log_len(dir.path());
    assert!(
        len >= SEGMENT_BYTES && len % SEGMENT_BYTES == 0,
        "after the first flush the log file is {len} bytes, not whole segments \
         (is sled patched? see vendor/sled/PATCH.md, change 4)"
    );
    for key in 1..20u64 {
        tree.insert(key.to_be_bytes(), vec![1u8; 1024])
            .expect("insert");
        db.flush().expect("flush");
        assert_eq!(log_len(dir.path()), len, "flush {key} grew the file");
    }
}

/// Change 4 and a crash: a segment written with zeros and never used (the relay died
/// right after) is one recovery takes for free. What was flushed before reads back,
/// and the log goes on past it.
#[test]
fn a_zeroed_segment_left_by_a_crash_is_reused() {
    const VALUE_BYTES: usize = 8 * 1024;
    // Enough values to span a few segments.
    const VALUES: u64 = 3 * SEGMENT_BYTES / VALUE_BYTES as u64;
    let (dir, db, tree) = open_fresh();
    let value = |k: u64| vec![k as u8; VALUE_BYTES];
    for k in 0..VALUES {
        tree.insert(k.to_be_bytes(), value(k)).expect("insert");
    }
    db.flush().expect("flush");
    drop((tree, db));
    // What a crash right after a preallocation leaves: one more zero segment at the end.
    let len = log_len(dir.path());
    let file = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join("db"))
        .expect("open db");
    std::io::Write::write_all(&mut &file, &vec![0u8; SEGMENT_BYTES as usize])
        .expect("append zeros");
    drop(file);
    let db = open(dir.path());
    let tree = db.open_tree("log").expect("tree");
    for k in 0..VALUES {
        let got = tree
            .get(k.to_be_bytes())
            .expect("get")
            .expect("flushed value");
        assert_eq!(&got[..], &value(k)[..], "key {k}");
    }
    for k in VALUES..2 * VALUES {
        tree.insert(k.to_be_bytes(), value(k)).expect("insert");
    }
    db.flush().expect("flush");
    drop((tree, db));
    let db = open(dir.path());
    let tree = db.open_tree("log").expect("tree");
    assert_eq!(
        tree.len() as u64,
        2 * VALUES,
        "after a reopen past {len} bytes"
    );
    for k in 0..2 * VALUES {
        let got = tree.get(k.to_be_bytes()).expect("get").expect("value");
        assert_eq!(&got[..], &value(k)[..], "key {k}");
    }
}
