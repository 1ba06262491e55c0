//! A writer's pipelined publish, in rounds: several relay nodes may append to one
//! stream.
//!
//! Each round places the pending events after the writer's head (offset = head + 1,
//! head + 2, …), encodes each record with its offset, then sends every publish with `Nats-Expected-Last-Sequence` = offset − 1 and reads
//! the acks in order. A publish the stream refuses for a wrong last sequence (error
//! 10071: another node appended first) was NOT stored, so it is safe to place again:
//! the next round starts after the real last sequence (from the error's text, else the
//! stream info): at once, and after a short random wait from round `EAGER_ROUNDS` on.
//! Two writers cannot both be refused for ever (each refusal means the other stored
//! something); the rounds bound how long one busy node can keep another one out.
//! A refusal does not spoil the publishes after it: each one that is acknowledged was
//! stored exactly at its own offset (its expected last sequence held), so it is
//! answered; the refused ones go to the next round. Offsets stay dense, each record
//! says the offset it is stored at, and none is reused. Any other failure (a timeout:
//! the event may or may not be stored) is answered as failed and never retried here.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use async_nats::jetstream::context::{PublishError, PublishErrorKind};
use async_nats::HeaderMap;
use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::dedup::Claim;
use super::names::RECEIVED_AT_HEADER;
use super::writer::{Staged, Writer};
use crate::common::event::RecordRef;
use crate::storage::error::StorageError;
use crate::storage::types::Appended;

/// Rounds before the refused events are answered as failed.
const MAX_ROUNDS: u32 = 32;
/// Rounds that go again at once, before the random waits start.
const EAGER_ROUNDS: u32 = 8;

/// The random wait before a later round n is up to `min(2^(n - EAGER_ROUNDS), MAX)` ms.
const JITTER_MAX_MS: u64 = 20;

/// How the stream answered one publish.
enum Outcome {
    /// Stored at its offset, with these bytes.
    Stored(Bytes),
    /// JetStream's `Nats-Msg-Id` window already holds the delivery id, at this offset.
    Duplicate(u64),
    /// Refused for a wrong last sequence; the real one when the error said it.
    Conflict(Option<u64>),
    Failed(String),
}

type Answer = Result<Appended, StorageError>;

impl Writer {
    /// Publishes `staged` in rounds and answers each; the answers, in `staged` order.
    pub(super) async fn commit(&mut self, mut staged: Vec<Staged>) -> Vec<Answer> {
        let started = Instant::now();
        let mut answers: Vec<Option<Answer>> = vec![None; staged.len()];
        let mut pending: Vec<usize> = (0..staged.len()).collect();
        if !staged.is_empty() {
            // Counted before any append is answered, so that a caller who saw its
            // answer also sees its batch in the statistics.
            self.shared.stats.record_batch(staged.len());
        }
        let mut failed = false;
        // Stored without `Nats-Msg-Id` (JetStream still held the id of an original
        // older than the relay's window): their ids get a claim instead.
        let mut unregistered: Vec<(usize, u64)> = Vec::new();
        for round in 0..MAX_ROUNDS {
            if pending.is_empty() {
                break;
            }
            if round >= EAGER_ROUNDS {
                // Early retries go at once: the real last sequence is fresh, and the
                // other node's next batch is what a wait would let in first.
                let cap = (1u64 << (round - EAGER_ROUNDS).min(6)).min(JITTER_MAX_MS);
                tokio::time::sleep(Duration::from_millis(rand::random_range(0..=cap))).await;
            }
            let outcomes = self.round(&staged, &pending).await;
            let mut retry = Vec::new();
            let mut learned = None;
            for (i, (offset, outcome)) in pending.iter().copied().zip(outcomes) {
                match outcome {
                    Outcome::Stored(bytes) => {
                        if !staged[i].msg_id {
                            unregistered.push((i, offset));
                        }
                        answers[i] = Some(Ok(self.acked(offset, &staged[i], bytes)))
                    }
                    Outcome::Duplicate(at) => match self.duplicate_of(&staged[i], at).await {
                        Ok(Some(a)) => answers[i] = Some(Ok(a)),
                        Ok(None) => {
                            staged[i].msg_id = false;
                            retry.push(i);
                        }
                        Err(e) => {
                            failed = true;
                            let e = format!("append to {} failed: {e}", self.channel);
                            answers[i] = Some(Err(StorageError::Failed(e)));
                        }
                    },
                    Outcome::Conflict(real) => {
                        learned = learned.max(real);
                        retry.push(i);
                    }
                    Outcome::Failed(e) => {
                        failed = true;
                        let e = format!("append to {} failed: {e}", self.channel);
                        answers[i] = Some(Err(StorageError::Failed(e)));
                    }
                }
            }
            if !retry.is_empty() {
                tracing::debug!(channel = %self.channel, round, refused = retry.len(), "placing again");
                match learned {
                    Some(last) => self.rebase_quick(last),
                    None => self.resync().await,
                }
            }
            pending = retry;
        }
        for i in pending {
            let e = format!("append to {}: too many concurrent writers", self.channel);
            answers[i] = Some(Err(StorageError::Failed(e)));
            failed = true;
        }
        self.claim(&staged, &unregistered).await;
        let stats = &self.shared.stats;
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        stats.flush_micros.fetch_add(micros, Ordering::Relaxed);
        if failed {
            stats.failures.fetch_add(1, Ordering::Relaxed);
            self.resync().await;
        }
        let answers: Vec<Answer> = answers
            .into_iter()
            .map(|a| a.unwrap_or(Err(StorageError::Closed)))
            .collect();
        for (s, a) in staged.iter_mut().zip(&answers) {
            if let Some(reply) = s.reply.take() {
                let _ = reply.send(a.clone());
            }
        }
        answers
    }

    /// One round: offsets after the head, every publish, then the acks.
    async fn round(&mut self, staged: &[Staged], pending: &[usize]) -> Vec<(u64, Outcome)> {
        let placed: Vec<(u64, Vec<u8>, u64)> = pending
            .iter()
            .enumerate()
            .map(|(k, &i)| {
                let offset = self.head + 1 + k as u64;
                let bytes = self.encode(&staged[i], offset);
                (offset, bytes, self.last_ms)
            })
            .collect();
        let subject = self.shared.names.subject(&self.channel);
        let mut sent = Vec::with_capacity(placed.len());
        for (&i, (offset, bytes, ms)) in pending.iter().zip(placed) {
            let bytes = Bytes::from(bytes);
            let mut headers = HeaderMap::new();
            let expected = (offset - 1).to_string();
            headers.insert("Nats-Expected-Last-Sequence", expected.as_str());
            headers.insert(RECEIVED_AT_HEADER, ms.to_string().as_str());
            if let Some(d) = staged[i].dedup.as_ref().filter(|_| staged[i].msg_id) {
                headers.insert("Nats-Msg-Id", msg_id(&d.id).as_str());
            }
            let published = self
                .shared
                .js
                .publish_with_headers(subject.clone(), headers, bytes.clone())
                .await;
            sent.push((offset, bytes, published));
        }
        let mut outcomes = Vec::with_capacity(sent.len());
        for (offset, bytes, published) in sent {
            let acked = match published {
                Ok(ack) => ack.await,
                Err(e) => Err(e),
            };
            outcomes.push((
                offset,
                match acked {
                    // A duplicate without its sequence is not an answer to trust (see
                    // `MIN_SERVER_VERSION`): refused, the provider retries.
                    Ok(ack) if ack.duplicate && ack.sequence == 0 => {
                        Outcome::Failed("a duplicate answered without its offset".to_string())
                    }
                    Ok(ack) if ack.duplicate => Outcome::Duplicate(ack.sequence),
                    Ok(ack) if ack.sequence == offset => Outcome::Stored(bytes),
                    Ok(ack) => {
                        Outcome::Failed(format!("stored at {} instead of {offset}", ack.sequence))
                    }
                    Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
                        Outcome::Conflict(real_last(&e))
                    }
                    Err(e) => Outcome::Failed(e.to_string()),
                },
            ));
        }
        outcomes
    }

    /// The record bytes of `s` at `offset`; received-at never goes below the head's.
    fn encode(&mut self, s: &Staged, offset: u64) -> Vec<u8> {
        self.last_ms = self.last_ms.max(s.event.received_at_ms);
        let e = &s.event;
        RecordRef {
            id: &s.id,
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
        .encode()
    }

    /// After a refusal: the next offset follows `last` at once. Received-at is kept
    /// at or above what this node's follower saw, without reading the record at
    /// `last` (a read per round is what would let the other node in again); the
    /// follower may not have seen `last` yet, so across nodes received-at can go back
    /// by the nodes' clock difference while they contend (not within one node).
    /// Only this writer's head moves: a refusal's number counts what the stream leader
    /// has *proposed*, which readers must not be told about before it is stored.
    pub(super) fn rebase_quick(&mut self, last: u64) {
        self.head = self.head.max(last);
        self.last_ms = self.last_ms.max(self.shared.heads.last_ms(&self.channel));
    }

    /// One event acknowledged as `bytes`: kept for live reads, then the head moves
    /// and watchers wake.
    fn acked(&mut self, offset: u64, s: &Staged, bytes: Bytes) -> Appended {
        self.shared.recent.put(&self.channel, offset, bytes);
        self.head = self.head.max(offset);
        self.shared.heads.acked(&self.channel, offset);
        self.shared.stats.appended.fetch_add(1, Ordering::Relaxed);
        Appended {
            offset,
            id: s.id.clone(),
            duplicate: false,
        }
    }

    /// JetStream found `s`'s delivery id in its window (the channel's dedup window),
    /// stored at `at`: the answer, with the original's event id, unless the original
    /// is older than the relay's own window (the two clocks differ by the time between
    /// receiving and storing), when `s` is a new event after all (`None`).
    async fn duplicate_of(
        &mut self,
        s: &Staged,
        at: u64,
    ) -> Result<Option<Appended>, StorageError> {
        let Some(d) = s.dedup.as_ref() else {
            return Ok(None);
        };
        // A failed read is a failed append (retried by the provider), never "removed".
        let original = super::streams::record(&self.stream, at).await?;
        let (id, at_ms) = match original {
            Some(r) => (r.id, r.received_at_ms),
            // Removed by retention already: its time is unknown, trust JetStream's
            // window; its id only an imported claim may still know.
            None => (self.claimed_id(&d.id, at).await, s.event.received_at_ms),
        };
        if s.event.received_at_ms.saturating_sub(at_ms) >= d.window_ms {
            return Ok(None);
        }
        Ok(Some(Appended {
            offset: at,
            id,
            duplicate: true,
        }))
    }

    /// Claims in `_dedup` for the delivery ids of `stored` (index, offset), which
    /// JetStream's window does not hold; from then on the writer looks ids up there.
    /// A failed claim weakens deduplication of that id only: the event is stored.
    async fn claim(&mut self, staged: &[Staged], stored: &[(usize, u64)]) {
        for &(i, offset) in stored {
            let Some(d) = staged[i].dedup.as_ref() else {
                continue;
            };
            let claim = Claim {
                offset,
                at_ms: staged[i].event.received_at_ms,
                id: staged[i].id.clone(),
            };
            match self.shared.dedup.claim(&self.channel, &d.id, &claim).await {
                Ok(()) => self.claims = true,
                Err(e) => {
                    tracing::warn!(channel = %self.channel, error = %e, "claiming a delivery id failed")
                }
            }
        }
    }

    /// The event id a claim records for delivery id `delivery` at `offset`; empty
    /// when no claim says.
    async fn claimed_id(&self, delivery: &str, offset: u64) -> String {
        match self.shared.dedup.lookup(&self.channel, delivery).await {
            Ok(Some(c)) if c.offset == offset => c.id,
            _ => String::new(),
        }
    }

    /// After a failure, the next offset comes from the stream itself — also downwards:
    /// a head learned from a refusal counted proposals that a leader change may have
    /// dropped, and publishing after it would be refused for good. Nothing this writer
    /// had acknowledged is above the stream's last sequence.
    pub(super) async fn resync(&mut self) {
        let info = self.stream.info().await.map(|i| i.state.last_sequence);
        match info {
            Ok(last) => {
                self.head = self.head.min(last);
                self.rebase(last).await
            }
            Err(e) => tracing::warn!(channel = %self.channel, error = %e, "stream info failed"),
        }
    }
}

/// The `Nats-Msg-Id` of delivery id `id`: a fixed-length digest, since JetStream keeps
/// every id of the window in memory and a provider's id can be long.
fn msg_id(id: &str) -> String {
    hex::encode(Sha256::digest(id))
}

/// The stream's real last sequence, from a 10071 error's text
/// ("wrong last sequence: 41 (code 400, error code 10071)").
fn real_last(e: &PublishError) -> Option<u64> {
    real_last_in(&e.to_string())
}

fn real_last_in(text: &str) -> Option<u64> {
    let (_, after) = text.rsplit_once("wrong last sequence: ")?;
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::real_last_in;

    #[test]
    fn the_real_last_sequence_is_read_from_the_servers_text() {
        let text = "wrong last sequence: wrong last sequence: 41 (code 400, error code 10071)";
        assert_eq!(real_last_in(text), Some(41));
        assert_eq!(real_last_in("wrong last sequence"), None);
        assert_eq!(real_last_in("timed out"), None);
    }
}
