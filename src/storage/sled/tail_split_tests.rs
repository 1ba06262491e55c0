//! The vendored sled's fourth change (`vendor/sled/PATCH.md`): a leaf filled at its end
//! is split near its end, and a page is rewritten whole after 32 updates instead of 10.
//!
//! A channel's events are appended in offset order, so every append lands at the end of
//! the same leaf. Unpatched sled 0.34.7 splits that leaf in the middle every ~9 events
//! and rewrites it whole once more in between, so each event's record reached the log
//! about five times. The test appends like the committer does at a trickle (one event
//! and the channel's head per batch, one flush each) and counts the bytes the log got
//! per event. Measured with 1,300-byte records: 6,075 bytes with the crates.io sled,
//! 5,622 with the split alone, 3,739 with the threshold alone, 3,045 with both. The
//! bound sits between the last two, so that the test fails when either half is lost.

use std::sync::mpsc;
use std::time::Duration;

use super::inline_io_tests::thread_written_bytes;
use super::keys;

/// About the size of a stored 1 KiB webhook with its headers, id and times.
const RECORD_BYTES: usize = 1300;
/// Events appended before counting, so that the tree has its steady shape.
const WARM_UP_EVENTS: u64 = 64;
/// Events counted: many leaf splits' worth.
const COUNTED_EVENTS: u64 = 256;
/// The bound on log bytes per event (2.6 records): the record once, its share of the
/// splits, the head and the batch framing. See the module doc for the measured values.
const MAX_WRITTEN_PER_EVENT_BYTES: u64 = 3_400;

/// Appends `offset` to `channel` as one committed batch: the event and the head.
fn append(db: &::sled::Db, tree: &::sled::Tree, channel: &str, offset: u64) {
    let mut batch = ::sled::Batch::default();
    batch.insert(keys::event(channel, offset), vec![b'x'; RECORD_BYTES]);
    batch.insert(keys::head(channel), &offset.to_be_bytes());
    tree.apply_batch(batch).expect("apply");
    db.flush().expect("flush");
}

/// How long a test's appends may take before they count as a livelock.
const LIVELOCK_AFTER: Duration = Duration::from_secs(60);

/// Runs `test` on a thread of its own and fails if it does not end in time: a right
/// half that sled merges back is split again without end, and the appends never return.
fn without_livelock(test: impl FnOnce() + Send + 'static) {
    let (done, ended) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        test();
        let _ = done.send(());
    });
    match ended.recv_timeout(LIVELOCK_AFTER) {
        Ok(()) => worker.join().expect("the test thread"),
        // The thread panicked: re-raise its panic here.
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(panic) = worker.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!(
            "appends did not finish in {LIVELOCK_AFTER:?}: sled keeps splitting and merging \
             a leaf (vendor/sled/PATCH.md, change 4: a right half must keep 4 keys)"
        ),
    }
}

#[test]
fn a_trickle_of_appends_writes_about_two_records_per_event() {
    without_livelock(trickle_of_appends);
}

fn trickle_of_appends() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The timer thread off: only this thread writes the log (change 1 makes the
    // flush's pwrite this thread's).
    let open = || {
        ::sled::Config::new()
            .path(dir.path())
            .flush_every_ms(None)
            .open()
            .expect("sled")
    };
    let db = open();
    let tree = db.open_tree("log").expect("tree");
    for offset in 1..=WARM_UP_EVENTS {
        append(&db, &tree, "bench", offset);
    }
    let before = thread_written_bytes();
    let last = WARM_UP_EVENTS + COUNTED_EVENTS;
    for offset in WARM_UP_EVENTS + 1..=last {
        append(&db, &tree, "bench", offset);
    }
    let per_event = (thread_written_bytes() - before) / COUNTED_EVENTS;
    assert!(
        per_event < MAX_WRITTEN_PER_EVENT_BYTES,
        "{per_event} bytes written to the log per {RECORD_BYTES}-byte event: a leaf \
         filled at its end is split in the middle or rewritten every few updates \
         (is sled patched? see vendor/sled/PATCH.md, change 4)"
    );
    // Every event reads back in order after a reopen, and the head is the last one.
    drop((tree, db));
    let db = open();
    let tree = db.open_tree("log").expect("tree");
    let offsets: Vec<u64> = tree
        .scan_prefix(keys::event_prefix("bench"))
        .map(|kv| keys::trailing_offset(&kv.expect("read").0).expect("an event key"))
        .collect();
    assert_eq!(offsets, (1..=last).collect::<Vec<_>>());
    let head = tree.get(keys::head("bench")).expect("get").expect("a head");
    assert_eq!(&head[..], &last.to_be_bytes());
}

/// Splits near the end leave right halves of 4 keys, the fewest sled does not merge
/// back. Appends to two channels at once (neither at the tree's end), retention
/// removing most of them from the front, and appends after that still end in the
/// expected tree: a right half sled merged back would be split again without end.
#[test]
fn appends_interleaved_with_retention_keep_every_live_event() {
    without_livelock(appends_interleaved_with_retention);
}

fn appends_interleaved_with_retention() {
    const EVENTS: u64 = 300;
    const RETAINED: u64 = 10;
    let dir = tempfile::tempdir().expect("tempdir");
    let open = || ::sled::Config::new().path(dir.path()).open().expect("sled");
    let db = open();
    let tree = db.open_tree("log").expect("tree");
    for offset in 1..=EVENTS {
        append(&db, &tree, "a", offset);
        append(&db, &tree, "b", offset);
    }
    for offset in 1..=EVENTS - RETAINED {
        for channel in ["a", "b"] {
            tree.remove(keys::event(channel, offset)).expect("remove");
        }
    }
    for offset in EVENTS + 1..=EVENTS + RETAINED {
        append(&db, &tree, "a", offset);
        append(&db, &tree, "b", offset);
    }
    drop((tree, db));
    let db = open();
    let tree = db.open_tree("log").expect("tree");
    let live: Vec<u64> = (EVENTS - RETAINED + 1..=EVENTS + RETAINED).collect();
    for channel in ["a", "b"] {
        let offsets: Vec<u64> = tree
            .scan_prefix(keys::event_prefix(channel))
            .map(|kv| keys::trailing_offset(&kv.expect("read").0).expect("an event key"))
            .collect();
        assert_eq!(offsets, live, "channel {channel}");
    }
}
