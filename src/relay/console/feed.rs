//! The live feed: `GET /v1/channels/{channel}/feed[?from=N]` as Server-Sent Events.
//!
//! Each SSE message is `event: events`, `id: <last offset>`, and `data:` a JSON array
//! of event summaries (offset, id, method, path, query, headers, size and the first
//! [`PREVIEW_BYTES`] of the body as text). It follows the channel's durable head
//! through [`crate::storage::Storage::watch`], so an event shows up as soon as its
//! 200 was sent. Without `from` it starts [`BACKLOG_EVENTS`] before the head; a browser
//! that reconnects sends `Last-Event-ID` and resumes after it. The stream ends when
//! the relay stops, so it never holds up a graceful stop.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::{mpsc, watch};
use warp::Reply;

use crate::common::event::Record;
use crate::relay::api_error::ApiError;
use crate::relay::auth::{authorize, Credentials};
use crate::relay::state::Relay;

/// Body bytes of each event sent in the feed (the detail page loads the rest).
pub const PREVIEW_BYTES: usize = 16 * 1024;
/// Events before the head a feed without `from` starts with.
pub const BACKLOG_EVENTS: u64 = 100;
/// Most events read (and sent in one message) at once.
pub const BATCH_EVENTS: usize = 100;

/// One event in the feed.
#[derive(Debug, Serialize)]
struct Summary {
    offset: u64,
    id: String,
    received_at: String,
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    size: usize,
    /// The body's first bytes as text (lossy), for the list and its filters.
    preview: String,
    /// The body is not valid UTF-8.
    binary: bool,
}

impl Summary {
    fn new(r: Record) -> Summary {
        let cut = r.body.len().min(PREVIEW_BYTES);
        Summary {
            offset: r.offset,
            received_at: crate::common::time::format_time_ms(r.received_at_ms),
            headers: r
                .headers
                .iter()
                .map(|(n, v)| (n.clone(), String::from_utf8_lossy(v).into_owned()))
                .collect(),
            size: r.body.len(),
            preview: String::from_utf8_lossy(&r.body[..cut]).into_owned(),
            binary: std::str::from_utf8(&r.body).is_err(),
            id: r.id,
            method: r.method,
            path: r.path,
            query: r.query,
        }
    }
}

struct Feed {
    relay: Arc<Relay>,
    channel: String,
    next: u64,
    head: watch::Receiver<u64>,
    ready: VecDeque<warp::sse::Event>,
}

/// SSE messages queued for one client; the reader task waits when it is full.
const QUEUE_MESSAGES: usize = 4;

/// Answers the feed request (`from`: the query's, `last_id`: `Last-Event-ID`).
pub fn open(
    relay: Arc<Relay>,
    creds: &Credentials,
    channel: &str,
    from: Option<u64>,
    last_id: Option<u64>,
) -> Result<warp::reply::Response, ApiError> {
    authorize(&relay, creds)?;
    if relay.config.channel(channel).is_none() {
        return Err(ApiError::unknown_channel(channel));
    }
    let head = relay.log.head(channel);
    let next = last_id
        .map(|n| n.saturating_add(1))
        .or(from)
        .unwrap_or_else(|| head.saturating_sub(BACKLOG_EVENTS - 1).max(1));
    let feed = Feed {
        head: relay.log.watch(channel),
        relay,
        channel: channel.to_string(),
        next,
        ready: VecDeque::new(),
    };
    // warp wants a `Sync` stream, and storage futures are not: a task reads, the
    // response drains a channel. The task ends with the client (the channel closes).
    let (tx, rx) = mpsc::channel(QUEUE_MESSAGES);
    tokio::spawn(feed.pump(tx));
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        let event = rx.recv().await?;
        Some((Ok::<_, Infallible>(event), rx))
    });
    Ok(warp::sse::reply(warp::sse::keep_alive().stream(stream)).into_response())
}

impl Feed {
    async fn pump(mut self, tx: mpsc::Sender<warp::sse::Event>) {
        loop {
            let next = tokio::select! {
                e = self.next_event() => e,
                _ = tx.closed() => return,
            };
            let Some(event) = next else { return };
            if tx.send(event).await.is_err() {
                return;
            }
        }
    }

    /// The next SSE message; `None` ends the stream (relay stopping, storage failed).
    async fn next_event(&mut self) -> Option<warp::sse::Event> {
        loop {
            if let Some(e) = self.ready.pop_front() {
                return Some(e);
            }
            self.head.borrow_and_update();
            let batch = self
                .relay
                .log
                .read(&self.channel, self.next, BATCH_EVENTS)
                .await
                .ok()?;
            if let Some(last) = batch.last() {
                self.next = last.offset.saturating_add(1);
                let id = last.offset.to_string();
                let list: Vec<Summary> = batch.into_iter().map(Summary::new).collect();
                let data = serde_json::to_string(&list).ok()?;
                let e = warp::sse::Event::default()
                    .event("events")
                    .id(id)
                    .data(data);
                self.ready.push_back(e);
                continue;
            }
            tokio::select! {
                changed = self.head.changed() => changed.ok()?,
                _ = self.relay.shutdown.wait() => return None,
            }
        }
    }
}
