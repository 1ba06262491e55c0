//! The storage contract: checks that every [`Storage`] implementation must pass.
//!
//! Each check takes a [`Harness`], which opens the backend under test over one place
//! (a fresh directory, a fresh stream prefix) and opens it again after a close, the
//! way a restarted relay would. A backend's tests call every check through
//! [`storage_contract_tests!`](crate::storage_contract_tests), one test each, so a
//! new backend is proven by exactly the same assertions as the embedded one.
//!
//! The checks panic on failure, like assertions in a test; they are ordinary code
//! (not `#[cfg(test)]`) so that integration tests of a networked backend can use them.

// Test-support code: a failed `expect` here is a failed contract check, like an assertion.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use super::api::Storage;
use super::types::{DeadLetter, Dedup, Limits, NewEvent};

/// Opens the backend under test; every call after the first reopens the same data.
#[async_trait::async_trait]
pub trait Harness: Send + Sync {
    /// Opens (or reopens) the storage. The previous handle has been closed and dropped.
    async fn open(&self) -> Arc<dyn Storage>;

    /// Whether the backend's store forgets delivery ids by itself when their window
    /// passes (JetStream's `Nats-Msg-Id` window), so `expire_dedup` removes only the
    /// claims the backend wrote for ids that window could not take.
    fn store_expires_ids(&self) -> bool {
        false
    }
}

/// Defines one `#[tokio::test]` per contract check for a harness expression.
#[macro_export]
macro_rules! storage_contract_tests {
    ($harness:expr) => {
        $crate::storage_contract_tests!(@each $harness;
            append_and_read, durable_head_wakes_watchers, offsets_stay_dense_across_reopen,
            concurrent_appends_get_distinct_dense_offsets, dedup_answers_the_original_within_the_window,
            duplicates_within_one_burst_are_caught, dedup_ids_expire, cursors_never_move_backwards,
            reserved_cursor_writes_keep_their_order, dead_letters_and_redrive,
            retention_keeps_offsets, time_search_finds_the_first_event_at_or_after,
            raw_reads_respect_the_byte_budget, writable_and_batch_sizes_observed,
            channel_settings_are_durable_and_first_write_wins);
    };
    (@each $harness:expr; $($check:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                $crate::storage::contract::$check(&$harness).await;
            }
        )*
    };
}

/// A small event received at `at_ms`, with `body`.
pub fn event(body: &[u8], at_ms: u64) -> NewEvent {
    NewEvent {
        method: "POST".into(),
        path: "/p".into(),
        query: "a=1".into(),
        headers: vec![("content-type".into(), b"application/json".to_vec())],
        body: Bytes::copy_from_slice(body),
        peer: "127.0.0.1:1".into(),
        scheme: "none".into(),
        received_at_ms: at_ms,
    }
}

fn dedup(id: &str, window_ms: u64) -> Option<Dedup> {
    Some(Dedup {
        id: id.into(),
        window_ms,
    })
}

fn letter(offset: u64, attempts: u32) -> DeadLetter {
    DeadLetter {
        offset,
        reason: "http 400".into(),
        attempts,
        last_status: Some(400),
        at_ms: 5,
    }
}

async fn fill(s: &dyn Storage, channel: &str, n: u64) {
    for i in 1..=n {
        let a = s
            .append(channel, event(&i.to_be_bytes(), i * 1000), None)
            .await
            .expect("append");
        assert_eq!(a.offset, i, "offsets are dense from 1");
    }
}

async fn offsets(s: &dyn Storage, channel: &str) -> Vec<u64> {
    let records = s.read(channel, 1, 1000).await.expect("read");
    records.iter().map(|r| r.offset).collect()
}

/// Appended events read back byte for byte, per channel, in order.
pub async fn append_and_read(h: &dyn Harness) {
    let s = h.open().await;
    fill(s.as_ref(), "a", 3).await;
    let b = s.append("b", event(b"y", 1), None).await.expect("append");
    assert_eq!((b.offset, b.duplicate), (1, false));
    assert!(b.id.starts_with("evt_"));
    let got = s.get("a", 2).await.expect("get").expect("retained");
    assert_eq!(got.body, 2u64.to_be_bytes());
    assert_eq!((got.path.as_str(), got.query.as_str()), ("/p", "a=1"));
    assert_eq!(got.headers, event(b"", 0).headers);
    assert_eq!(got.channel, "a");
    assert_eq!(offsets(s.as_ref(), "a").await, vec![1, 2, 3]);
    let raw = s.read_raw("a", 2, 10, usize::MAX).await.expect("raw");
    assert_eq!(raw.iter().map(|(o, _)| *o).collect::<Vec<_>>(), vec![2, 3]);
    let decoded = crate::common::event::Record::decode(&raw[0].1).expect("stored bytes decode");
    assert_eq!(decoded.offset, 2);
    assert!(
        s.get("a", 4).await.expect("get").is_none(),
        "nothing past the head"
    );
    assert!(s.get("a", 0).await.expect("get").is_none());
    let mut channels = s.channels();
    channels.sort();
    assert_eq!(channels, vec!["a", "b"]);
    assert_eq!(s.earliest("a").expect("earliest"), 1);
    assert_eq!(s.earliest("empty").expect("earliest"), 1);
}

/// An open backend says it is writable, and reports the size of every group commit
/// to the observer the relay installs (each appended event is in one batch).
pub async fn writable_and_batch_sizes_observed(h: &dyn Harness) {
    let s = h.open().await;
    s.writable().await.expect("a fresh backend is writable");
    let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = seen.clone();
    s.stats().batch_observer.set(Arc::new(move |n| {
        counted.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }));
    fill(s.as_ref(), "w", 3).await;
    assert!(
        seen.load(std::sync::atomic::Ordering::Relaxed) >= 3,
        "batch sizes cover the appends"
    );
    s.writable().await.expect("still writable");
}

/// The head moves, and watchers wake, once an append is durable.
pub async fn durable_head_wakes_watchers(h: &dyn Harness) {
    let s = h.open().await;
    let mut rx = s.watch("c");
    assert_eq!(*rx.borrow(), 0);
    let writer = s.clone();
    let task = tokio::spawn(async move { writer.append("c", event(b"x", 1), None).await });
    rx.changed().await.expect("the head moves");
    assert_eq!(*rx.borrow_and_update(), 1);
    assert_eq!(s.head("c"), 1);
    let appended = task.await.expect("join").expect("append");
    assert_eq!(appended.offset, 1);
    assert_eq!(s.get("c", 1).await.expect("get").expect("some").body, b"x");
}

/// Offsets continue after a reopen: dense, never reused.
pub async fn offsets_stay_dense_across_reopen(h: &dyn Harness) {
    {
        let s = h.open().await;
        fill(s.as_ref(), "a", 3).await;
        s.set_cursor("a", "g", 2, false).await.expect("cursor");
        s.close().await.expect("close");
    }
    let s = h.open().await;
    assert_eq!(s.head("a"), 3);
    assert_eq!(s.cursor("a", "g").expect("cursor"), Some(2));
    let next = s.append("a", event(b"z", 9), None).await.expect("append");
    assert_eq!(next.offset, 4);
    assert_eq!(offsets(s.as_ref(), "a").await, vec![1, 2, 3, 4]);
    assert_eq!(s.channels(), vec!["a"]);
}

/// Concurrent appends get every offset exactly once.
pub async fn concurrent_appends_get_distinct_dense_offsets(h: &dyn Harness) {
    let s = h.open().await;
    let mut tasks = Vec::new();
    for i in 0..500u64 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.append("c", event(&i.to_be_bytes(), i), None).await
        }));
    }
    let mut got = Vec::new();
    for t in tasks {
        got.push(t.await.expect("join").expect("append").offset);
    }
    got.sort();
    assert_eq!(got, (1..=500).collect::<Vec<_>>());
    assert_eq!(s.head("c"), 500);
}

/// A delivery id seen within its window answers the original and appends nothing.
pub async fn dedup_answers_the_original_within_the_window(h: &dyn Harness) {
    let s = h.open().await;
    let first = s
        .append("c", event(b"1", 10_000), dedup("x", 1000))
        .await
        .expect("append");
    let again = s
        .append("c", event(b"2", 10_500), dedup("x", 1000))
        .await
        .expect("append");
    assert!(again.duplicate);
    assert_eq!((again.offset, &again.id), (first.offset, &first.id));
    assert_eq!(s.head("c"), 1);
    let other = s
        .append("other", event(b"3", 10_500), dedup("x", 1000))
        .await
        .expect("append");
    assert!(!other.duplicate, "ids are per channel");
    let late = s
        .append("c", event(b"4", 11_000), dedup("x", 1000))
        .await
        .expect("append");
    assert!(!late.duplicate, "past the window an id is new again");
    assert_eq!(late.offset, 2);
}

/// Many appends with one id at once: exactly one is stored.
pub async fn duplicates_within_one_burst_are_caught(h: &dyn Harness) {
    let s = h.open().await;
    let mut tasks = Vec::new();
    for i in 0..50u64 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.append("c", event(b"x", 1000 + i), dedup("same", 60_000))
                .await
        }));
    }
    let mut fresh = 0;
    for t in tasks {
        if !t.await.expect("join").expect("append").duplicate {
            fresh += 1;
        }
    }
    assert_eq!(fresh, 1);
    assert_eq!(s.head("c"), 1);
}

/// Expiry forgets ids past their window and keeps the others (a backend whose store
/// forgets them by itself removes none).
pub async fn dedup_ids_expire(h: &dyn Harness) {
    let s = h.open().await;
    for (id, at) in [("old", 1_000), ("new", 10_000)] {
        s.append("c", event(b"x", at), dedup(id, 5_000))
            .await
            .expect("append");
    }
    let windows = HashMap::from([("c".to_string(), 5_000)]);
    let removed = usize::from(!h.store_expires_ids());
    assert_eq!(
        s.expire_dedup(12_000, windows.clone())
            .await
            .expect("expire"),
        removed
    );
    let again = s
        .append("c", event(b"y", 12_000), dedup("new", 5_000))
        .await
        .expect("append");
    assert!(again.duplicate, "an id within its window is kept");
    let old = s
        .append("c", event(b"z", 12_000), dedup("old", 5_000))
        .await
        .expect("append");
    assert!(!old.duplicate, "an id past its window is a new event");
    assert_eq!(old.offset, 3);
    // Both ids are now past their window. A store that forgets ids by itself holds
    // one entry of its own: the claim it wrote for "old", stored a second time while
    // its own window still held the first.
    let removed_late = if h.store_expires_ids() { 1 } else { 2 };
    assert_eq!(
        s.expire_dedup(100_000, windows).await.expect("expire"),
        removed_late
    );
    for (i, id) in ["old", "new"].into_iter().enumerate() {
        let later = s
            .append("c", event(b"w", 100_000), dedup(id, 5_000))
            .await
            .expect("append");
        assert!(!later.duplicate, "{id} expired, so this is a new event");
        assert_eq!(later.offset, 4 + i as u64);
    }
}

/// A cursor moves forward only, unless forced (a reset).
pub async fn cursors_never_move_backwards(h: &dyn Harness) {
    let s = h.open().await;
    assert_eq!(s.cursor("c", "g").expect("cursor"), None);
    s.set_cursor("c", "g", 5, false).await.expect("set");
    s.set_cursor("c", "g", 3, false).await.expect("set");
    assert_eq!(s.cursor("c", "g").expect("cursor"), Some(5));
    s.advance_cursor("c", "g", 7).expect("advance");
    s.advance_cursor("c", "g", 6).expect("advance");
    s.sync().await.expect("sync");
    assert_eq!(s.cursor("c", "g").expect("cursor"), Some(7));
    s.set_cursor("c", "g", 2, true).await.expect("reset");
    assert_eq!(
        s.groups("c").await.expect("groups"),
        vec![("g".to_string(), 2)]
    );
}

/// A reserved write is applied in reservation order, before later cursor moves.
pub async fn reserved_cursor_writes_keep_their_order(h: &dyn Harness) {
    let s = h.open().await;
    s.set_cursor("c", "g", 10, false).await.expect("cursor");
    let reset = s.reserve_cursor_write().await.expect("reserve");
    let done = reset.set("c", "g", 3, true);
    s.advance_cursor("c", "g", 5).expect("advance");
    done.await.expect("reset");
    s.sync().await.expect("sync");
    assert_eq!(s.cursor("c", "g").expect("cursor"), Some(5));
    let slot = s.reserve_cursor_write().await.expect("reserve");
    slot.set("c", "g", 1, false).await.expect("set");
    assert_eq!(s.cursor("c", "g").expect("cursor"), Some(5));
}

/// Dead letters are kept per group; redrive marks follow them and settle with them.
pub async fn dead_letters_and_redrive(h: &dyn Harness) {
    let s = h.open().await;
    s.add_dead_letter("c", "g", letter(4, 1))
        .await
        .expect("add");
    s.add_dead_letter("c", "g", letter(6, 1))
        .await
        .expect("add");
    assert_eq!(s.dead_letter_count("c", "g").await.expect("count"), 2);
    assert!(s.dead_letters("c", "other").await.expect("list").is_empty());
    s.request_redrive("c", "g", vec![4, 6, 9], 7)
        .await
        .expect("redrive");
    assert_eq!(s.redrives("c", "g").await.expect("marks"), vec![4, 6]);
    assert!(s.redrives("c", "other").await.expect("marks").is_empty());
    s.finish_redrive("c", "g", 4, Some(letter(4, 2)))
        .await
        .expect("again");
    assert_eq!(
        s.dead_letter("c", "g", 4).await.expect("get"),
        Some(letter(4, 2))
    );
    s.finish_redrive("c", "g", 6, None).await.expect("acked");
    assert_eq!(s.dead_letter("c", "g", 6).await.expect("get"), None);
    assert!(s.redrives("c", "g").await.expect("marks").is_empty());
    assert_eq!(
        s.dead_letters("c", "g").await.expect("list"),
        vec![letter(4, 2)]
    );
}

/// Retention removes the oldest events (and their dead letters); offsets keep counting,
/// also across a reopen.
pub async fn retention_keeps_offsets(h: &dyn Harness) {
    {
        let s = h.open().await;
        fill(s.as_ref(), "c", 10).await;
        s.add_dead_letter("c", "g", letter(2, 1)).await.expect("dl");
        let count = |n| Limits {
            max_events: Some(n),
            ..Limits::default()
        };
        let pass = s.enforce_retention("c", count(3), 0).await.expect("pass");
        assert_eq!((pass.events, pass.earliest), (7, 8));
        assert_eq!(s.earliest("c").expect("earliest"), 8);
        assert_eq!(offsets(s.as_ref(), "c").await, vec![8, 9, 10]);
        let raw = |from| s.read_raw("c", from, 10, usize::MAX);
        let tail: Vec<u64> = raw(7).await.expect("raw").iter().map(|r| r.0).collect();
        assert_eq!(
            tail,
            vec![8, 9, 10],
            "a read from below the earliest starts there"
        );
        assert!(s.dead_letters("c", "g").await.expect("list").is_empty());
        let age = Limits {
            max_age_ms: Some(1_500),
            ..Limits::default()
        };
        let pass = s.enforce_retention("c", age, 10_000).await.expect("pass");
        assert_eq!(pass.earliest, 9, "received 9000 and later is within 1.5 s");
        s.enforce_retention("c", count(0), 0).await.expect("pass");
        assert_eq!(s.head("c"), 10);
        assert_eq!(s.earliest("c").expect("earliest"), 11);
        s.close().await.expect("close");
    }
    let s = h.open().await;
    let next = s
        .append("c", event(b"z", 99_000), None)
        .await
        .expect("append");
    assert_eq!(next.offset, 11, "offsets are never reused");
    assert_eq!(s.earliest("c").expect("earliest"), 11);
}

/// The time search finds the first event received at or after a time.
pub async fn time_search_finds_the_first_event_at_or_after(h: &dyn Harness) {
    let s = h.open().await;
    for t in [100, 200, 200, 300, 400] {
        s.append("c", event(b"x", t), None).await.expect("append");
    }
    for (ms, want) in [(0, 1), (200, 2), (201, 4), (401, 6)] {
        assert_eq!(s.offset_at_time("c", ms).await.expect("t"), want, "{ms}");
    }
}

/// A raw read stops before its byte budget, but always returns one event.
pub async fn raw_reads_respect_the_byte_budget(h: &dyn Harness) {
    let s = h.open().await;
    for _ in 0..5 {
        s.append("c", event(&[7u8; 1000], 1), None)
            .await
            .expect("append");
    }
    let one = s.read_raw("c", 1, 10, 1).await.expect("raw");
    assert_eq!(one.len(), 1, "at least one event, whatever the budget");
    let size = one[0].1.len();
    let three = s.read_raw("c", 1, 10, size * 3).await.expect("raw");
    assert_eq!(three.len(), 3);
    let all = s.read_raw("c", 1, 10, usize::MAX).await.expect("raw");
    assert_eq!(all.len(), 5);
    // Near the head too (the sled store reads the last few offsets key by key).
    let offsets_of = |raw: Vec<(u64, Vec<u8>)>| raw.into_iter().map(|r| r.0).collect::<Vec<_>>();
    let two = s.read_raw("c", 3, 10, size * 2).await.expect("raw");
    assert_eq!(offsets_of(two), vec![3, 4]);
    let limited = s.read_raw("c", 3, 2, usize::MAX).await.expect("raw");
    assert_eq!(offsets_of(limited), vec![3, 4]);
    let tail = s.read_raw("c", 4, 10, usize::MAX).await.expect("raw");
    assert_eq!(tail, all[3..].to_vec(), "the same bytes either way");
    assert!(s
        .read_raw("c", 6, 10, usize::MAX)
        .await
        .expect("raw")
        .is_empty());
}

/// A channel setting survives a reopen; without `replace` only the first write wins,
/// with it the value is replaced; channels and names do not share values.
pub async fn channel_settings_are_durable_and_first_write_wins(h: &dyn Harness) {
    let s = h.open().await;
    assert_eq!(s.channel_setting("c", "k").await.expect("get"), None);
    let first = s.put_channel_setting("c", "k", b"one".to_vec(), false);
    assert!(first.await.expect("put"), "the first write is taken");
    let second = s.put_channel_setting("c", "k", b"two".to_vec(), false);
    assert!(
        !second.await.expect("put"),
        "a second write without replace is not"
    );
    assert!(s
        .put_channel_setting("d", "k", b"other".to_vec(), false)
        .await
        .expect("put"));
    s.close().await.expect("close");
    drop(s);
    let s = h.open().await;
    let get = |c: &'static str| s.channel_setting(c, "k");
    assert_eq!(get("c").await.expect("get"), Some(b"one".to_vec()));
    assert_eq!(get("d").await.expect("get"), Some(b"other".to_vec()));
    assert_eq!(s.channel_setting("c", "x").await.expect("get"), None);
    let replaced = s.put_channel_setting("c", "k", b"three".to_vec(), true);
    assert!(replaced.await.expect("put"));
    assert_eq!(get("c").await.expect("get"), Some(b"three".to_vec()));
}
