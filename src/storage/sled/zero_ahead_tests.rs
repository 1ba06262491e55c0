//! Zeros ahead of the log (`zero_ahead.rs`, and change 5 of `vendor/sled/PATCH.md`):
//! once written, flushes overwrite the file instead of growing it, and the zeros never
//! touch what sled wrote, before or after a reopen.

use std::path::Path;
use std::time::{Duration, Instant};

use super::tests::reopen;
use super::zero_ahead::ZERO_AHEAD_SEGMENTS;
use super::SledStorage;
use crate::storage::contract::event;
use crate::storage::Storage;

/// sled's default segment size (`Config::segment_size`), which hookrelay keeps.
const SEGMENT_BYTES: u64 = 512 * 1024;

/// The length of the database's log file.
fn log_len(dir: &Path) -> u64 {
    std::fs::metadata(dir.join("db")).expect("db file").len()
}

/// A sled database with its timer thread off, so that only the test writes.
fn open_db(dir: &Path) -> ::sled::Db {
    ::sled::Config::new()
        .path(dir)
        .flush_every_ms(None)
        .open()
        .expect("sled")
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

/// Fails with the crates.io sled (no `zero_ahead`), and if the zeros were not whole
/// segments past the tip: then the flushes would still grow the file.
#[test]
fn flushes_into_zeroed_segments_do_not_grow_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open_db(dir.path());
    let tree = db.open_tree("log").expect("tree");
    tree.insert(0u64.to_be_bytes(), vec![1u8; 1024])
        .expect("insert");
    db.flush().expect("flush");
    assert!(zero_fully(&db, 2) > 0, "a fresh log has no zeros ahead");
    let len = log_len(dir.path());
    assert_eq!(len % SEGMENT_BYTES, 0, "zeros end on a segment boundary");
    assert!(
        len >= 3 * SEGMENT_BYTES,
        "{len} bytes: fewer than 2 segments ahead"
    );
    assert_eq!(
        db.zero_ahead(2).expect("zero ahead"),
        0,
        "nothing more is due"
    );
    for key in 1..50u64 {
        tree.insert(key.to_be_bytes(), vec![1u8; 1024])
            .expect("insert");
        db.flush().expect("flush");
        assert_eq!(log_len(dir.path()), len, "flush {key} grew the file");
    }
}

/// Zeros written between flushes over several segments, then the database closed with
/// zeros past its end (as a crash right after them leaves it): everything flushed reads
/// back, and the log goes on past the zeros across another reopen.
#[test]
fn zeros_never_overwrite_the_log_and_are_reused_after_a_reopen() {
    const VALUE_BYTES: usize = 8 * 1024;
    const VALUES: u64 = 3 * SEGMENT_BYTES / VALUE_BYTES as u64;
    let value = |k: u64| vec![k as u8; VALUE_BYTES];
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |db: &::sled::Db, keys: std::ops::Range<u64>| {
        let tree = db.open_tree("log").expect("tree");
        for k in keys {
            tree.insert(k.to_be_bytes(), value(k)).expect("insert");
            db.flush().expect("flush");
            zero_fully(db, 4);
        }
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
            "the log file stayed at {} bytes: no zeros were written ahead",
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
