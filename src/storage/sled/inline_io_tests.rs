//! The vendored sled's one change (`vendor/sled/PATCH.md`): its log writes run on the
//! thread that asks for them, not on sled's I/O thread pool. Unpatched sled 0.34.7 hands
//! every buffer write to that pool and wakes all its idle threads for each; at a
//! webhook trickle that was most of the relay's CPU per event. Both checks below fail
//! with the crates.io sled: the pool's threads are named `sled-io-N`, and the caller's
//! own write counter stays put because another thread did the `pwrite`.

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

#[test]
fn a_flush_writes_the_log_on_the_calling_thread_without_a_pool() {
    const VALUE_BYTES: usize = 1024;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open(dir.path());
    let tree = db.open_tree("log").expect("tree");
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
