//! One writer task per channel: assigns offsets, checks delivery ids, publishes.
//!
//! The writer predicts each event's offset (the stream's next sequence), encodes the
//! record with it, and publishes with `Nats-Expected-Last-Sequence` = offset − 1, so
//! the stream stores exactly the bytes that `read_raw` hands out and the sequence IS
//! the offset; if another node wrote to the stream meanwhile, the server refuses
//! instead of storing a wrong offset, and the writer places the event again after the
//! real last sequence (see `publish`). A drained batch is published pipelined (all
//! sends, then the acks in order), which is the group commit of this backend. An
//! append is answered only from its publish ack, which JetStream sends once a quorum
//! of the stream's replicas stored it; the head moves (and watchers wake) only then.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::stream::Stream;
use futures_util::future::join_all;
use tokio::sync::{mpsc, oneshot};

use super::shared::Shared;
use super::streams;
use crate::storage::error::StorageError;
use crate::storage::types::{Appended, Dedup, NewEvent};

/// Appends one writer publishes in one pipelined batch.
const MAX_BATCH: usize = 256;
/// How often a writer whose channel had no claims looks again.
const CLAIMS_RECHECK: Duration = Duration::from_secs(5);
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

/// An event ready to publish; its offset is given (again) by each publish round.
pub(super) struct Staged {
    pub(super) reply: Option<Reply>,
    pub(super) event: NewEvent,
    pub(super) id: String,
    pub(super) dedup: Option<Dedup>,
    /// Whether the publish carries `Nats-Msg-Id` (JetStream's own deduplication).
    pub(super) msg_id: bool,
}

pub(super) struct Writer {
    pub(super) shared: Arc<Shared>,
    pub(super) channel: String,
    pub(super) stream: Stream,
    /// The last sequence known stored: the next event gets `head + 1`.
    pub(super) head: u64,
    /// Received-at of the newest event, so received-at never goes backwards.
    pub(super) last_ms: u64,
    /// Whether `_dedup` may hold claims for this channel (`hookrelay migrate` wrote
    /// them, or `publish` did for an id JetStream's window could not take): only then
    /// does an append look its delivery id up there first.
    pub(super) claims: bool,
    /// When `claims` was last read from the bucket (a migrate may run after start).
    claims_checked: Instant,
}

impl Writer {
    async fn start(shared: Arc<Shared>, channel: &str) -> Result<Writer, StorageError> {
        let mut stream = shared.ensure(channel).await?;
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
        super::follow::start(&shared, channel);
        let claims = shared.dedup.any(channel).await?;
        Ok(Writer {
            shared,
            channel: channel.to_string(),
            stream,
            head,
            last_ms,
            claims,
            claims_checked: Instant::now(),
        })
    }

    /// Dedup checks, offsets, claims, then the pipelined publish.
    async fn process(&mut self, batch: Vec<AppendOp>) {
        // Another node's appends, seen by the follower (with their received-at), move
        // the base first.
        self.rebase_quick(self.shared.heads.head(&self.channel));
        let mut staged: Vec<Staged> = Vec::new();
        // Duplicates of an event staged in this same batch: answered with its result.
        let mut in_batch: Vec<(Reply, usize)> = Vec::new();
        let mut ids: HashMap<String, (usize, u64)> = HashMap::new();
        self.recheck_claims().await;
        let found = self.originals(&batch).await;
        for (op, found) in batch.into_iter().zip(found) {
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
                match found {
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
            if let Some(d) = &op.dedup {
                ids.insert(d.id.clone(), (staged.len(), now));
            }
            staged.push(Staged {
                reply: Some(op.reply),
                msg_id: op.dedup.is_some(),
                dedup: op.dedup,
                event: op.event,
                id: crate::storage::types::new_event_id(),
            });
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

    /// Reads again, at most every [`CLAIMS_RECHECK`], whether the channel has claims.
    async fn recheck_claims(&mut self) {
        if self.claims || self.claims_checked.elapsed() < CLAIMS_RECHECK {
            return;
        }
        self.claims_checked = Instant::now();
        match self.shared.dedup.any(&self.channel).await {
            Ok(any) => self.claims = any,
            Err(e) => tracing::warn!(channel = %self.channel, error = %e, "reading claims failed"),
        }
    }

    /// For each op of `batch`, the original it duplicates according to the claims
    /// that `migrate` imported, all looked up at once; nothing is looked up when the
    /// channel has none (JetStream's `Nats-Msg-Id` window does the rest, see `dedup`).
    async fn originals(&self, batch: &[AppendOp]) -> Vec<Result<Option<Appended>, StorageError>> {
        if !self.claims {
            return batch.iter().map(|_| Ok(None)).collect();
        }
        let lookups = batch.iter().map(|op| async move {
            match &op.dedup {
                Some(d) => self.original(d, op.event.received_at_ms).await,
                None => Ok(None),
            }
        });
        join_all(lookups).await
    }

    /// The original append when `d`'s id was claimed within its window by an event
    /// that is really stored.
    async fn original(&self, d: &Dedup, now: u64) -> Result<Option<Appended>, StorageError> {
        let Some(claim) = self.shared.dedup.lookup(&self.channel, &d.id).await? else {
            return Ok(None);
        };
        if now.saturating_sub(claim.at_ms) >= d.window_ms {
            return Ok(None);
        }
        // Above what this node knows: the record tells whether it is stored.
        let head = self.head.max(self.shared.heads.head(&self.channel));
        if claim.offset > head {
            let stored = streams::record(&self.stream, claim.offset).await?;
            return Ok(stored.filter(|r| r.id == claim.id).map(|r| Appended {
                offset: r.offset,
                id: r.id,
                duplicate: true,
            }));
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
    /// `last` is stored (another node's append, or learned from a refused publish):
    /// the next offset follows it, and received-at never goes below its record's.
    pub(super) async fn rebase(&mut self, last: u64) {
        if last <= self.head {
            return;
        }
        self.head = last;
        self.shared.heads.acked(&self.channel, last);
        match streams::record(&self.stream, last).await {
            Ok(Some(r)) => self.last_ms = self.last_ms.max(r.received_at_ms),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(channel = %self.channel, error = %e, "reading the head failed")
            }
        }
    }
}
