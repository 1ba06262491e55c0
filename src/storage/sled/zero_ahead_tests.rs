//! Zeros ahead of the log (`zero_ahead.rs`, and change 5 of `vendor/sled/PATCH.md`):
//! once written, flushes overwrite the file instead of growing it, and the zeros never
//! touch what sled wrote, before or after a reopen.

use std::path::Path;
use std::time::{Duration, Instant};

use super::inline_io_tests::open as open_db;
use super::tests::reopen;
use super::zero_ahead::ZERO_AHEAD_SEGMENTS;
use super::SledStorage;
use crate::storage::contract::event;
use crate::storage::Storage;

/// sled's default segment size (`Config::segment_size`), which hookrelay keeps.
const SEGMENT_BYTES: u64 = 512 * 1024;

/// The length of the database's log file.
fn log_len(dir: &Path) -> u64 {
    log_size(dir).0
}

/// Calls `zero_ahead` until it has nothing left to do; checks it writes at most one
/// segment per call and returns the bytes written in all.
fn zero_fully(db: &::sled::Db, segments: u64) -> u64 {
    let mut total = 0;
    loop {
        let written = db.zero_ahead(segments).expect("zero ahead");
        assert!(written <= SEGMENT_BYTES, "{written} bytes in one call");
        if written == 0 {
            return total;
        }
        total += written;
    }
}

/// The length and the allocated 512-byte blocks of the database's log file.
fn log_size(dir: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(dir.join("db")).expect("db file");
    (meta.len(), meta.blocks())
}

/// Fails with the crates.io sled (no `zero_ahead`), and if the zeros were not whole
/// segments past the tip: then flushes would still grow the file or allocate blocks
/// in it (what makes `fdatasync` write the inode). The first segment is filled first:
/// zeros go past the tip only, so its unwritten end is a hole until sled writes it.
#[test]
fn flushes_into_zeroed_segments_neither_grow_the_file_nor_allocate() {
    const VALUE_BYTES: usize = 8 * 1024;
    // Enough values to leave the first segment (each reaches the log at least once).
    const FIRST_SEGMENT_VALUES: u64 = SEGMENT_BYTES / VALUE_BYTES as u64 + 8;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open_db(dir.path());
    let tree = db.open_tree("log").expect("tree");
    let flush = |key: u64| {
        tree.insert(key.to_be_bytes(), vec![1u8; VALUE_BYTES])
            .expect("insert");
        db.flush().expect("flush");
        zero_fully(&db, 2)
    };
    tree.insert(0u64.to_be_bytes(), vec![1u8; VALUE_BYTES])
        .expect("insert");
    db.flush().expect("flush");
    let (first, _) = log_size(dir.path());
    assert!(first < SEGMENT_BYTES, "the first flush wrote {first} bytes");
    // Zeros start at the tip, the end of the segment in use, never inside it: sled may
    // be writing there.
    assert_eq!(db.zero_ahead(2).expect("zero ahead"), SEGMENT_BYTES);
    assert_eq!(log_size(dir.path()).0, 2 * SEGMENT_BYTES);
    for key in 1..FIRST_SEGMENT_VALUES {
        flush(key);
    }
    let (len, _) = log_size(dir.path());
    assert_eq!(len % SEGMENT_BYTES, 0, "zeros end on a segment boundary");
    let mut before = log_size(dir.path());
    let mut checked = 0;
    for key in FIRST_SEGMENT_VALUES..3 * FIRST_SEGMENT_VALUES {
        let zeroed = flush(key);
        let after = log_size(dir.path());
        // A flush that was followed by new zeros may have grown the file: those grew it.
        if zeroed == 0 {
            assert_eq!(
                after, before,
                "flush {key} grew the file or allocated blocks"
            );
            checked += 1;
        }
        before = after;
    }
    assert!(
        checked > FIRST_SEGMENT_VALUES,
        "only {checked} flushes were checked"
    );
}

/// Zeros written by one thread while another inserts and flushes, over several
/// segments and two reopens with zeros past the end (as a crash right after them
/// leaves it): everything flushed reads back, so no zeros ever landed on the log.
#[test]
fn zeros_written_beside_the_writer_never_overwrite_the_log() {
    const VALUE_BYTES: usize = 8 * 1024;
    const VALUES: u64 = 3 * SEGMENT_BYTES / VALUE_BYTES as u64;
    let value = |k: u64| vec![k as u8; VALUE_BYTES];
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |db: &::sled::Db, keys: std::ops::Range<u64>| {
        let tree = db.open_tree("log").expect("tree");
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    db.zero_ahead(4).expect("zero ahead");
                    std::thread::yield_now();
                }
            });
            for k in keys {
                tree.insert(k.to_be_bytes(), value(k)).expect("insert");
                db.flush().expect("flush");
            }
            done.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        zero_fully(db, 4);
    };
    let db = open_db(dir.path());
    write(&db, 0..VALUES);
    drop(db);
    let db = open_db(dir.path());
    write(&db, VALUES..2 * VALUES);
    drop(db);
    let db = open_db(dir.path());
    let tree = db.open_tree("log").expect("tree");
    assert_eq!(tree.len() as u64, 2 * VALUES);
    for k in 0..2 * VALUES {
        let got = tree.get(k.to_be_bytes()).expect("get").expect("value");
        assert_eq!(&got[..], &value(k)[..], "key {k}");
    }
}

/// The relay's storage zeros ahead by itself while idle (its thread looks every
/// `ZERO_CHECK_INTERVAL`), and appends at a trickle then leave the file's length alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_log_is_zeroed_ahead_and_appends_then_overwrite() {
    const APPENDS: u64 = 20;
    let dir = tempfile::tempdir().expect("tempdir");
    let log = SledStorage::open(dir.path()).expect("open");
    log.append("c", event(b"first", 1), None)
        .await
        .expect("append");
    let ahead = (ZERO_AHEAD_SEGMENTS + 1) * SEGMENT_BYTES;
    let deadline = Instant::now() + Duration::from_secs(10);
    while log_len(dir.path()) < ahead {
        assert!(
            Instant::now() < deadline,
            "the log file stayed at {} bytes: no zeros were written ahead (they need \
             twice the disk reserve, 128 MiB, free)",
            log_len(dir.path())
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let len = log_len(dir.path());
    for i in 2..=APPENDS + 1 {
        log.append("c", event(&i.to_be_bytes(), i), None)
            .await
            .expect("append");
        assert_eq!(log_len(dir.path()), len, "append {i} grew the file");
    }
    log.close().await.expect("close");
    drop(log);
    let log = reopen(dir.path());
    assert_eq!(log.head("c"), APPENDS + 1);
    let events = log.read("c", 1, 100).await.expect("read");
    assert_eq!(events.len() as u64, APPENDS + 1);
}
