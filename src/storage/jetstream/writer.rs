//! One writer task per channel: assigns offsets, checks delivery ids, publishes.
//!
//! The writer predicts each event's offset (the stream's next sequence), encodes the
//! record with it, and publishes with `Nats-Expected-Last-Sequence` = offset − 1, so
//! the stream stores exactly the bytes that `read_raw` hands out and the sequence IS
//! the offset; if anything else wrote to the stream, the server refuses instead of
//! storing a wrong offset. A drained batch is published pipelined (all sends, then the
//! acks in order), which is the group commit of this backend. An append is answered
//! only from its publish ack, which JetStream sends once a quorum of the stream's
//! replicas stored it; the head moves (and watchers wake) only then.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use async_nats::jetstream::stream::Stream;
use async_nats::HeaderMap;
use futures_util::future::join_all;
use tokio::sync::{mpsc, oneshot};

use super::dedup::Claim;
use super::shared::Shared;
use super::streams;
use crate::common::event::RecordRef;
use crate::storage::error::StorageError;
use crate::storage::types::{Appended, Dedup, NewEvent};

/// Appends one writer publishes in one pipelined batch.
const MAX_BATCH: usize = 256;
/// Depth of a channel's append queue; when full, appends wait (backpressure).
pub const QUEUE_DEPTH: usize = 4096;

type Reply = oneshot::Sender<Result<Appended, StorageError>>;

/// One append waiting for its writer.
pub struct AppendOp {
    /// The event.
    pub event: NewEvent,
    /// Its delivery id and window, if the channel deduplicates.
    pub dedup: Option<Dedup>,
    /// Where the answer goes.
    pub reply: Reply,
}

/// Starts the writer of `channel`; it ends when every sender is dropped.
pub fn spawn(shared: Arc<Shared>, channel: String) -> mpsc::Sender<AppendOp> {
    let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
    tokio::spawn(run(shared, channel, rx));
    tx
}

async fn run(shared: Arc<Shared>, channel: String, mut rx: mpsc::Receiver<AppendOp>) {
    let mut writer: Option<Writer> = None;
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        if writer.is_none() {
            match Writer::start(shared.clone(), &channel).await {
                Ok(w) => writer = Some(w),
                Err(e) => {
                    batch
                        .into_iter()
                        .for_each(|op| drop(op.reply.send(Err(e.clone()))));
                    continue;
                }
            }
        }
        if let Some(w) = writer.as_mut() {
            w.process(batch).await;
        }
    }
}

/// An event ready to publish.
struct Staged {
    reply: Reply,
    offset: u64,
    id: String,
    bytes: Vec<u8>,
    claim: Option<(String, Claim)>,
}

struct Writer {
    shared: Arc<Shared>,
    channel: String,
    stream: Stream,
    /// The last sequence known stored: the next event gets `head + 1`.
    head: u64,
    /// Received-at of the newest event, so received-at never goes backwards.
    last_ms: u64,
}

impl Writer {
    async fn start(shared: Arc<Shared>, channel: &str) -> Result<Writer, StorageError> {
        let mut stream =
            streams::ensure(&shared.js, &shared.names, channel, shared.replicas).await?;
        let state = stream
            .info()
            .await
            .map_err(|e| StorageError::Failed(format!("stream info of {channel}: {e}")))?
            .state
            .clone();
        let head = state.last_sequence;
        shared.heads.load(channel, head, state.first_sequence);
        let last_ms = match head {
            0 => 0,
            _ => streams::record(&stream, head)
                .await?
                .map_or(0, |r| r.received_at_ms),
        };
        shared.remember(channel, stream.clone());
        Ok(Writer {
            shared,
            channel: channel.to_string(),
            stream,
            head,
            last_ms,
        })
    }

    /// Dedup checks, offsets, claims, then the pipelined publish.
    async fn process(&mut self, batch: Vec<AppendOp>) {
        let mut staged: Vec<Staged> = Vec::new();
        // Duplicates of an event staged in this same batch: answered with its result.
        let mut in_batch: Vec<(Reply, usize)> = Vec::new();
        let mut ids: HashMap<String, (usize, u64)> = HashMap::new();
        for op in batch {
            let now = op.event.received_at_ms;
            if self.shared.closed.load(Ordering::Acquire) {
                let _ = op.reply.send(Err(StorageError::Closed));
                continue;
            }
            if let Some(d) = &op.dedup {
                if let Some(&(i, at)) = ids.get(&d.id) {
                    if now.saturating_sub(at) < d.window_ms {
                        in_batch.push((op.reply, i));
                        continue;
                    }
                }
                match self.original(d, now).await {
                    Ok(Some(a)) => {
                        let _ = op.reply.send(Ok(a));
                        continue;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        let _ = op.reply.send(Err(e));
                        continue;
                    }
                }
            }
            let s = self.stage(op, staged.len() as u64);
            if let Some((id, claim)) = &s.claim {
                ids.insert(id.clone(), (staged.len(), claim.at_ms));
            }
            staged.push(s);
        }
        let results = self.commit(staged).await;
        for (reply, i) in in_batch {
            let answer = results[i].clone().map(|mut a| {
                a.duplicate = true;
                a
            });
            let _ = reply.send(answer);
        }
    }

    /// Offset, id and stored bytes of a new event.
    fn stage(&mut self, op: AppendOp, before: u64) -> Staged {
        let offset = self.head + 1 + before;
        self.last_ms = self.last_ms.max(op.event.received_at_ms);
        let id = crate::storage::types::new_event_id();
        let e = &op.event;
        let bytes = RecordRef {
            id: &id,
            channel: &self.channel,
            offset,
            received_at_ms: self.last_ms,
            method: &e.method,
            path: &e.path,
            query: &e.query,
            headers: &e.headers,
            body: &e.body,
            peer: &e.peer,
            scheme: &e.scheme,
        }
        .encode();
        let claim = op.dedup.map(|d| {
            let claim = Claim {
                offset,
                at_ms: e.received_at_ms,
                id: id.clone(),
            };
            (d.id, claim)
        });
        Staged {
            reply: op.reply,
            offset,
            id,
            bytes,
            claim,
        }
    }

    /// The original append when `d`'s id was claimed within its window by an event
    /// that is really stored (a claim left by a crash before its publish is not).
    async fn original(&self, d: &Dedup, now: u64) -> Result<Option<Appended>, StorageError> {
        let Some(claim) = self.shared.dedup.lookup(&self.channel, &d.id).await? else {
            return Ok(None);
        };
        if now.saturating_sub(claim.at_ms) >= d.window_ms || claim.offset > self.head {
            return Ok(None);
        }
        let stored = if claim.offset < self.shared.heads.earliest(&self.channel) {
            // Removed by retention, so it cannot be checked: count it as the original
            // (wrong only if its publish failed and a later event got its offset).
            true
        } else {
            streams::record(&self.stream, claim.offset)
                .await?
                .is_some_and(|r| r.id == claim.id)
        };
        Ok(stored.then_some(Appended {
            offset: claim.offset,
            id: claim.id,
            duplicate: true,
        }))
    }
}

impl Writer {
    /// Claims first, then every publish, then the acks in order; answers each append.
    async fn commit(&mut self, mut staged: Vec<Staged>) -> Vec<Result<Appended, StorageError>> {
        if staged.is_empty() {
            return Vec::new();
        }
        let started = Instant::now();
        let claims = staged.iter().filter_map(|s| s.claim.as_ref());
        let claimed =
            join_all(claims.map(|(id, c)| self.shared.dedup.claim(&self.channel, id, c))).await;
        if let Some(Err(e)) = claimed.into_iter().find(|r| r.is_err()) {
            return answer_all(staged, e);
        }
        // Counted before any append is answered, so that a caller who saw its answer
        // also sees its batch in the statistics.
        self.shared.stats.record_batch(staged.len());
        let subject = self.shared.names.subject(&self.channel);
        let mut sent = Vec::with_capacity(staged.len());
        for s in &mut staged {
            let mut headers = HeaderMap::new();
            let expected = (s.offset - 1).to_string();
            headers.insert("Nats-Expected-Last-Sequence", expected.as_str());
            let payload = std::mem::take(&mut s.bytes).into();
            sent.push(
                self.shared
                    .js
                    .publish_with_headers(subject.clone(), headers, payload)
                    .await,
            );
        }
        let mut results = Vec::with_capacity(staged.len());
        let mut failed = false;
        for (s, sent) in staged.into_iter().zip(sent) {
            let acked = match sent {
                Ok(ack) => ack.await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            let result = match acked {
                Ok(ack) if ack.sequence == s.offset => Ok(self.acked(s.offset, s.id)),
                Ok(ack) => Err(format!(
                    "stored at {} instead of {}",
                    ack.sequence, s.offset
                )),
                Err(e) => Err(e),
            }
            .map_err(|e| {
                failed = true;
                StorageError::Failed(format!("append to {} failed: {e}", self.channel))
            });
            let _ = s.reply.send(result.clone());
            results.push(result);
        }
        let stats = &self.shared.stats;
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        stats.flush_micros.fetch_add(micros, Ordering::Relaxed);
        if failed {
            stats.failures.fetch_add(1, Ordering::Relaxed);
            self.resync().await;
        }
        results
    }

    /// One event acknowledged: the head moves and watchers wake.
    fn acked(&mut self, offset: u64, id: String) -> Appended {
        self.head = self.head.max(offset);
        self.shared.heads.acked(&self.channel, offset);
        self.shared.stats.appended.fetch_add(1, Ordering::Relaxed);
        Appended {
            offset,
            id,
            duplicate: false,
        }
    }

    /// After a failure, the next offset comes from the stream itself.
    async fn resync(&mut self) {
        match self.stream.info().await {
            Ok(info) => {
                let last = info.state.last_sequence;
                self.head = last;
                self.shared.heads.acked(&self.channel, last);
            }
            Err(e) => tracing::warn!(channel = %self.channel, error = %e, "stream info failed"),
        }
    }
}

fn answer_all(staged: Vec<Staged>, e: StorageError) -> Vec<Result<Appended, StorageError>> {
    staged
        .into_iter()
        .map(|s| {
            let _ = s.reply.send(Err(e.clone()));
            Err(e.clone())
        })
        .collect()
}
