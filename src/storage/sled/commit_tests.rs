//! The committer on its own: ops are staged and committed synchronously against a
//! sled tree in a temporary directory, without a queue or a runtime.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::*;
use crate::storage::sled::keys;

struct Fixture {
    _dir: tempfile::TempDir,
    committer: Committer,
    shared: Arc<Shared>,
    tree: ::sled::Tree,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = ::sled::Config::new().path(dir.path()).open().expect("sled");
    let tree = db.open_tree("log").expect("tree");
    let shared = Arc::new(Shared::new(HashMap::new()));
    let committer = Committer::new(
        db,
        tree.clone(),
        shared.clone(),
        HashMap::new(),
        HashMap::new(),
        crate::storage::sled::disk::DiskGuard::new(dir.path(), 0),
        crate::storage::sled::fsync::LogFile::open(dir.path()).expect("sled log file"),
    );
    Fixture {
        _dir: dir,
        committer,
        shared,
        tree,
    }
}

fn event(at: u64) -> NewEvent {
    NewEvent {
        method: "POST".into(),
        path: String::new(),
        query: String::new(),
        headers: vec![],
        body: Bytes::from_static(b"{}"),
        peer: "127.0.0.1:1".into(),
        scheme: "none".into(),
        received_at_ms: at,
    }
}

type AppendRx = oneshot::Receiver<Result<Appended, StorageError>>;

fn append(channel: &str, at: u64, dedup: Option<&str>) -> (Op, AppendRx) {
    let (reply, rx) = oneshot::channel();
    let op = Op::Append {
        channel: channel.into(),
        id: format!("evt_{at}"),
        event: event(at),
        dedup: dedup.map(|id| Dedup {
            id: id.into(),
            window_ms: 60_000,
        }),
        reply,
    };
    (op, rx)
}

fn cursor(offset: u64, force: bool) -> Op {
    Op::Cursor {
        channel: "c".into(),
        group: "g".into(),
        offset,
        force,
        reply: None,
    }
}

fn answer(mut rx: AppendRx) -> Result<Appended, StorageError> {
    rx.try_recv().expect("answered")
}

#[test]
fn one_batch_assigns_dense_offsets_and_publishes_after_the_flush() {
    let mut f = fixture();
    let rx = f.shared.watch("c");
    let (a, ra) = append("c", 10, None);
    let (b, rb) = append("c", 5, None);
    let (c, rc) = append("d", 7, None);
    f.committer.commit(vec![], &mut vec![a, b, c]);
    assert_eq!(answer(ra).expect("ok").offset, 1);
    let second = answer(rb).expect("ok");
    assert_eq!(second.offset, 2);
    assert_eq!(answer(rc).expect("ok").offset, 1);
    assert_eq!(*rx.borrow(), 2, "the head is published once durable");
    assert_eq!(f.shared.stats.batches.load(Ordering::Relaxed), 1);
    // received-at never goes backwards within a channel.
    let stored = f.tree.get(keys::event("c", 2)).expect("get").expect("some");
    let record = crate::common::event::Record::decode(&stored).expect("decodes");
    assert_eq!(record.received_at_ms, 10);
}

#[test]
fn a_duplicate_in_the_same_batch_gets_the_first_offset() {
    let mut f = fixture();
    let (a, ra) = append("c", 1, Some("x"));
    let (b, rb) = append("c", 2, Some("x"));
    f.committer.commit(vec![], &mut vec![a, b]);
    let (first, again) = (answer(ra).expect("ok"), answer(rb).expect("ok"));
    assert!(!first.duplicate && again.duplicate);
    assert_eq!((again.offset, &again.id), (first.offset, &first.id));
    assert_eq!(f.shared.head("c"), 1);
}

#[test]
fn cursors_move_forward_within_a_batch_unless_forced() {
    let mut f = fixture();
    f.committer
        .commit(vec![], &mut vec![cursor(5, false), cursor(3, false)]);
    let read = |t: &::sled::Tree| {
        keys::decode_u64(&t.get(keys::cursor("c", "g")).expect("get").expect("some"))
    };
    assert_eq!(read(&f.tree), Some(5));
    f.committer
        .commit(vec![], &mut vec![cursor(2, true), cursor(4, false)]);
    assert_eq!(
        read(&f.tree),
        Some(4),
        "a forced reset, then a forward move"
    );
}

#[test]
fn a_redrive_sees_a_dead_letter_staged_earlier_in_its_batch() {
    let mut f = fixture();
    let letter = DeadLetter {
        offset: 3,
        reason: "http 400".into(),
        attempts: 1,
        last_status: Some(400),
        at_ms: 0,
    };
    let (reply, mut rx) = oneshot::channel();
    let ops = vec![
        Op::DeadLetter {
            channel: "c".into(),
            group: "g".into(),
            entry: letter,
            reply: None,
        },
        Op::Redrive {
            channel: "c".into(),
            group: "g".into(),
            offsets: vec![3, 4],
            at_ms: 9,
            reply,
        },
    ];
    f.committer.commit(vec![], &mut ops.into_iter().collect());
    assert_eq!(rx.try_recv().expect("answered"), Ok(()));
    assert!(f
        .tree
        .get(keys::redrive("c", "g", 3))
        .expect("get")
        .is_some());
    assert!(f
        .tree
        .get(keys::redrive("c", "g", 4))
        .expect("get")
        .is_none());
}

#[test]
fn after_a_failure_every_write_is_refused_without_touching_sled() {
    let mut f = fixture();
    f.shared.stats.storage_failed.store(true, Ordering::Release);
    let (a, ra) = append("c", 1, None);
    let (reply, mut rs) = oneshot::channel();
    f.committer.commit(vec![], &mut vec![a, Op::Sync(reply)]);
    let refused = StorageError::Failed(STORAGE_FAILED.to_string());
    assert_eq!(answer(ra), Err(refused.clone()));
    assert_eq!(rs.try_recv().expect("answered"), Err(refused));
    assert_eq!(f.shared.head("c"), 0);
    assert!(f.tree.get(keys::event("c", 1)).expect("get").is_none());
}

/// A committer whose channels `a` and `b` hold one event each.
fn fixture_with_heads_a_and_b() -> Fixture {
    let mut f = fixture();
    let (a, ra) = append("a", 1, None);
    let (b, rb) = append("b", 1, None);
    f.committer.commit(vec![], &mut vec![a, b]);
    assert!(answer(ra).is_ok() && answer(rb).is_ok());
    f
}

#[test]
fn a_batch_records_the_heads_it_moves_and_a_roll_back_restores_only_those() {
    let mut f = fixture_with_heads_a_and_b();
    let mut batch = Batch::default();
    assert_eq!(f.committer.assign("a", 2, &mut batch), (2, 2));
    assert_eq!(f.committer.assign("a", 3, &mut batch), (3, 3));
    assert_eq!(f.committer.assign("new", 3, &mut batch), (1, 3));
    let moved: HashMap<String, Option<u64>> =
        [("a".to_string(), Some(1)), ("new".to_string(), None)].into();
    assert_eq!(
        batch.moved, moved,
        "each channel once, with its head before the batch"
    );
    f.committer.roll_back_heads(&mut batch);
    let heads: HashMap<String, u64> = [("a".to_string(), 1), ("b".to_string(), 1)].into();
    assert_eq!(f.committer.heads, heads);
    // The next batch of one channel publishes that channel's head.
    let rx = f.shared.watch("a");
    let (c, rc) = append("a", 4, None);
    f.committer.commit(vec![], &mut vec![c]);
    assert_eq!(answer(rc).expect("ok").offset, 2);
    assert_eq!(*rx.borrow(), 2);
    assert_eq!(f.shared.head("b"), 1);
}

#[test]
fn a_failed_write_answers_its_appends_with_an_error_and_puts_back_only_their_heads() {
    let mut f = fixture_with_heads_a_and_b();
    // `fdatasync` of /dev/null fails (EINVAL): the next batch's write fails after sled
    // has applied it.
    let null = std::fs::File::open("/dev/null").expect("/dev/null");
    f.committer.log_file = crate::storage::sled::fsync::LogFile::from_file(null);
    let watch_a = f.shared.watch("a");
    let (a2, ra2) = append("a", 2, None);
    let (new, rnew) = append("new", 2, None);
    f.committer.commit(vec![], &mut vec![a2, new]);
    assert!(matches!(answer(ra2), Err(StorageError::Failed(_))));
    assert!(matches!(answer(rnew), Err(StorageError::Failed(_))));
    let heads: HashMap<String, u64> = [("a".to_string(), 1), ("b".to_string(), 1)].into();
    assert_eq!(
        f.committer.heads, heads,
        "the failed batch's heads are put back"
    );
    assert_eq!(
        *watch_a.borrow(),
        1,
        "nothing of the failed batch is published"
    );
    assert_eq!(f.shared.head("new"), 0);
    assert!(f.shared.stats.storage_failed.load(Ordering::Acquire));
}
