use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::*;

/// Opens the log again in the same process: the previous handle's committer thread
/// releases sled's file lock only when it has finished its last flush, so wait for it.
pub(crate) fn reopen(dir: &std::path::Path) -> EventLog {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match EventLog::open(dir) {
            Ok(log) => return log,
            Err(e) if std::time::Instant::now() < deadline && e.to_string().contains("lock") => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            Err(e) => panic!("reopen: {e}"),
        }
    }
}

fn event(body: &[u8], at: u64) -> NewEvent {
    NewEvent {
        method: "POST".into(),
        path: String::new(),
        query: String::new(),
        headers: vec![("content-type".into(), b"application/json".to_vec())],
        body: Bytes::copy_from_slice(body),
        peer: "127.0.0.1:1".into(),
        scheme: "none".into(),
        received_at_ms: at,
    }
}

#[tokio::test]
async fn offsets_are_dense_per_channel_and_survive_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let log = EventLog::open(dir.path()).expect("open");
        for i in 1..=3u64 {
            let a = log.append("a", event(b"x", i), None).await.expect("append");
            assert_eq!(a.offset, i);
        }
        assert_eq!(
            log.append("b", event(b"y", 1), None)
                .await
                .expect("append")
                .offset,
            1
        );
        assert_eq!(log.head("a"), 3);
        log.close().await.expect("close");
    }
    let log = reopen(dir.path());
    assert_eq!(log.head("a"), 3);
    assert_eq!(
        log.append("a", event(b"z", 9), None)
            .await
            .expect("append")
            .offset,
        4
    );
    let all = log.read("a", 1, 100).expect("read");
    assert_eq!(
        all.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert_eq!(all[3].body, b"z");
    let mut channels = log.channels();
    channels.sort();
    assert_eq!(channels, vec!["a", "b"]);
}

#[tokio::test]
async fn concurrent_appends_share_flushes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EventLog::open(dir.path()).expect("open");
    let mut tasks = Vec::new();
    for i in 0..2000u64 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            log.append("c", event(&i.to_be_bytes(), i), None).await
        }));
    }
    let mut offsets = Vec::new();
    for t in tasks {
        offsets.push(t.await.expect("join").expect("append").offset);
    }
    offsets.sort();
    assert_eq!(offsets, (1..=2000).collect::<Vec<_>>());
    let batches = log.stats().batches.load(Ordering::Relaxed);
    assert!(
        batches < 2000,
        "group commit must batch: {batches} flushes for 2000 events"
    );
}

#[tokio::test]
async fn dedup_returns_the_original_within_the_window_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EventLog::open(dir.path()).expect("open");
    let d = |id: &str| {
        Some(Dedup {
            id: id.into(),
            window_ms: 1000,
        })
    };
    let first = log
        .append("c", event(b"1", 10_000), d("x"))
        .await
        .expect("append");
    let again = log
        .append("c", event(b"2", 10_500), d("x"))
        .await
        .expect("append");
    assert!(again.duplicate);
    assert_eq!((again.offset, &again.id), (first.offset, &first.id));
    assert_eq!(log.head("c"), 1);
    // Same id in another channel is not a duplicate.
    assert!(
        !log.append("other", event(b"3", 10_500), d("x"))
            .await
            .expect("append")
            .duplicate
    );
    // Past the window the id is new again.
    let late = log
        .append("c", event(b"4", 11_000), d("x"))
        .await
        .expect("append");
    assert!(!late.duplicate);
    assert_eq!(late.offset, 2);
    // Expiry removes old entries, keeps fresh ones.
    assert_eq!(
        log.expire_dedup(11_500, &|_| Some(1000)).expect("expire"),
        1
    );
    assert_eq!(
        log.expire_dedup(13_000, &|_| Some(1000)).expect("expire"),
        1
    );
}

#[tokio::test]
async fn duplicates_within_one_batch_are_caught() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EventLog::open(dir.path()).expect("open");
    let mut tasks = Vec::new();
    for i in 0..50u64 {
        let log = log.clone();
        let d = Some(Dedup {
            id: "same".into(),
            window_ms: 60_000,
        });
        tasks.push(tokio::spawn(async move {
            log.append("c", event(b"x", 1000 + i), d).await
        }));
    }
    let mut fresh = 0;
    for t in tasks {
        if !t.await.expect("join").expect("append").duplicate {
            fresh += 1;
        }
    }
    assert_eq!(fresh, 1);
    assert_eq!(log.head("c"), 1);
}

#[tokio::test]
async fn watch_wakes_on_durable_head() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EventLog::open(dir.path()).expect("open");
    let mut rx = log.watch("c");
    assert_eq!(*rx.borrow(), 0);
    let l2 = log.clone();
    tokio::spawn(async move { l2.append("c", event(b"x", 1), None).await });
    rx.changed().await.expect("changed");
    assert_eq!(*rx.borrow_and_update(), 1);
    assert_eq!(log.get("c", 1).expect("get").expect("some").body, b"x");
}

#[tokio::test]
async fn cursors_move_forward_unless_forced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EventLog::open(dir.path()).expect("open");
    assert_eq!(log.cursor("c", "g").expect("cursor"), None);
    log.set_cursor("c", "g", 5, false).await.expect("set");
    log.set_cursor("c", "g", 3, false).await.expect("set");
    assert_eq!(log.cursor("c", "g").expect("cursor"), Some(5));
    log.advance_cursor("c", "g", 7).expect("advance");
    log.sync().await.expect("sync");
    assert_eq!(log.cursor("c", "g").expect("cursor"), Some(7));
    log.set_cursor("c", "g", 2, true).await.expect("reset");
    assert_eq!(log.groups("c").expect("groups"), vec![("g".to_string(), 2)]);
}

#[tokio::test]
async fn time_search_finds_first_event_at_or_after() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EventLog::open(dir.path()).expect("open");
    for t in [100, 200, 200, 300, 400] {
        log.append("c", event(b"x", t), None).await.expect("append");
    }
    assert_eq!(log.offset_at_time("c", 0).expect("t"), 1);
    assert_eq!(log.offset_at_time("c", 200).expect("t"), 2);
    assert_eq!(log.offset_at_time("c", 201).expect("t"), 4);
    assert_eq!(log.offset_at_time("c", 401).expect("t"), 6);
}

#[tokio::test]
async fn dead_letters_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EventLog::open(dir.path()).expect("open");
    let dl = DeadLetter {
        offset: 4,
        reason: "http 400".into(),
        attempts: 1,
        last_status: Some(400),
        at_ms: 5,
    };
    log.add_dead_letter("c", "g", dl.clone())
        .await
        .expect("add");
    assert_eq!(log.dead_letters("c", "g").expect("list"), vec![dl]);
    log.remove_dead_letter("c", "g", 4).await.expect("remove");
    log.sync().await.expect("sync");
    assert!(log.dead_letters("c", "g").expect("list").is_empty());
}

#[tokio::test]
async fn redrive_marks_follow_their_dead_letters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EventLog::open(dir.path()).expect("open");
    let dl = |offset, attempts| DeadLetter {
        offset,
        reason: "http 400".into(),
        attempts,
        last_status: Some(400),
        at_ms: 5,
    };
    log.add_dead_letter("c", "g", dl(4, 1)).await.expect("add");
    log.add_dead_letter("c", "g", dl(6, 1)).await.expect("add");
    // 9 is no dead letter, and another group's letters are not touched.
    log.request_redrive("c", "g", vec![4, 6, 9], 7)
        .await
        .expect("redrive");
    assert_eq!(log.redrives("c", "g").expect("marks"), vec![4, 6]);
    assert!(log.redrives("c", "other").expect("marks").is_empty());

    // Given up on again: the dead letter is replaced and the mark goes.
    log.finish_redrive("c", "g", 4, Some(dl(4, 2)))
        .await
        .expect("again");
    assert_eq!(log.dead_letter("c", "g", 4).expect("get"), Some(dl(4, 2)));
    // Acked: both go.
    log.finish_redrive("c", "g", 6, None).await.expect("acked");
    assert_eq!(log.dead_letter("c", "g", 6).expect("get"), None);
    assert!(log.redrives("c", "g").expect("marks").is_empty());
    assert_eq!(log.dead_letters("c", "g").expect("list"), vec![dl(4, 2)]);
}

#[tokio::test]
async fn reserved_cursor_writes_keep_their_queue_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EventLog::open(dir.path()).expect("open");
    log.set_cursor("c", "g", 10, false).await.expect("cursor");
    // A reset reserved before a late forward move is applied first; the forward move
    // still wins because it comes later (the caller orders them under its lock).
    let reset = log.reserve_cursor_write().await.expect("reserve");
    let done = reset.set("c", "g", 3, true);
    log.advance_cursor("c", "g", 5).expect("advance");
    done.await.expect("reset");
    log.sync().await.expect("sync");
    assert_eq!(log.cursor("c", "g").expect("cursor"), Some(5));
    // Without force a cursor never moves back.
    let slot = log.reserve_cursor_write().await.expect("reserve");
    slot.set("c", "g", 1, false).await.expect("set");
    assert_eq!(log.cursor("c", "g").expect("cursor"), Some(5));
}
