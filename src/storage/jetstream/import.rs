//! The JetStream side of `hookrelay migrate`: create a channel's stream at a chosen
//! first sequence and publish stored records at their own offsets.
//!
//! A log moved from another backend keeps its offsets even when retention trimmed its
//! front (first retained offset N > 1): the stream is created with JetStream's
//! `first_seq` = N (stream config, nats-server 2.10+; the backend needs 2.12, see
//! [`super::MIN_SERVER_VERSION`]). An empty stream created so reports
//! `last_seq` = N − 1, so the first record is published, like every append, with
//! `Nats-Expected-Last-Sequence` = offset − 1 and lands at sequence N: the server
//! refuses rather than store a record under another offset. A channel whose every
//! event was trimmed gets an empty stream whose `last_seq` is its head, so the next
//! append after the move gets head + 1. The published bytes are the source's stored
//! record bytes, unchanged: ids, received-at and body are byte-identical.

use std::sync::atomic::Ordering;

use async_nats::jetstream::stream::{Config, StorageType};
use async_nats::HeaderMap;
use futures_util::future::join_all;

use super::connect::fail;
use super::dedup::Claim;
use super::handle::JetStreamStorage;
use super::streams;
use crate::common::event::Record;
use crate::storage::error::StorageError;
use crate::storage::transfer::{DeliveryClaim, RedriveMark};

/// KV writes (delivery-id claims) sent together.
const CLAIM_CHUNK: usize = 256;

/// What a channel's stream holds now: `last == first - 1` when it is empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamSpan {
    /// The first retained sequence (offset).
    pub first: u64,
    /// The last sequence ever stored (the head).
    pub last: u64,
}

impl JetStreamStorage {
    /// The channel's stream as the server reports it now; `None` when it has none.
    pub async fn stream_span(&self, channel: &str) -> Result<Option<StreamSpan>, StorageError> {
        let (js, names) = (&self.shared.js, &self.shared.names);
        let Some(mut stream) = streams::existing(js, names, channel).await? else {
            return Ok(None);
        };
        let info = stream
            .info()
            .await
            .map_err(|e| fail(format!("stream info of {channel}: {e}")))?;
        Ok(Some(StreamSpan {
            first: info.state.first_sequence,
            last: info.state.last_sequence,
        }))
    }

    /// The id of the event stored at `offset`, `None` when nothing is stored there.
    pub async fn stored_id(
        &self,
        channel: &str,
        offset: u64,
    ) -> Result<Option<String>, StorageError> {
        let (js, names) = (&self.shared.js, &self.shared.names);
        let Some(stream) = streams::existing(js, names, channel).await? else {
            return Ok(None);
        };
        Ok(streams::record(&stream, offset).await?.map(|r| r.id))
    }

    /// Makes the channel's stream give its first message sequence `first`: creates it,
    /// or, when a relay started on this prefix already created it and nothing was ever
    /// stored in it, moves its first sequence there (a purge below `first`). The
    /// relay's later create-or-update keeps that.
    pub async fn create_stream_at(&self, channel: &str, first: u64) -> Result<(), StorageError> {
        let (js, names) = (&self.shared.js, &self.shared.names);
        if let Some(stream) = streams::existing(js, names, channel).await? {
            let last = stream
                .get_info()
                .await
                .map_err(|e| fail(format!("stream info of {channel}: {e}")))?
                .state
                .last_sequence;
            if last > 0 {
                return Err(fail(format!("stream of {channel} already holds events")));
            }
            // A relay appending meanwhile would make the purge remove an acknowledged
            // event: refuse loudly (migrate is run with the relays stopped).
            if first > 1 && streams::purge_below(&stream, first).await? > 0 {
                return Err(fail(format!(
                    "stream of {channel} received events while migrating: stop the relays"
                )));
            }
            super::firsts::raise(&self.shared.firsts, channel, first).await?;
            self.shared.remember(channel, stream);
            self.shared.heads.load(channel, first - 1, first);
            return Ok(());
        }
        let names = &self.shared.names;
        let config = Config {
            name: names.stream(channel),
            subjects: vec![names.subject(channel)],
            storage: StorageType::File,
            num_replicas: self.shared.replicas,
            first_sequence: Some(first.max(1)),
            ..Default::default()
        };
        let name = config.name.clone();
        let stream = self.shared.js.create_stream(config).await.map_err(|e| {
            fail(format!(
                "cannot create stream {name} starting at offset {first}: {e}"
            ))
        })?;
        self.shared.remember(channel, stream);
        self.shared
            .heads
            .load(channel, first.saturating_sub(1), first.max(1));
        Ok(())
    }

    /// Publishes `records` (offset, stored bytes), which must be consecutive and follow
    /// the stream's last sequence, pipelined: every publish, then the acks in order.
    /// Each carries `Nats-Expected-Last-Sequence` = offset − 1, and each record's own
    /// offset must be the one it is published at.
    pub async fn import_records(
        &self,
        channel: &str,
        records: Vec<(u64, Vec<u8>)>,
    ) -> Result<(), StorageError> {
        let subject = self.shared.names.subject(channel);
        let mut sent = Vec::with_capacity(records.len());
        for (offset, bytes) in records {
            check_record(channel, offset, &bytes)?;
            let mut headers = HeaderMap::new();
            let expected = offset.saturating_sub(1).to_string();
            headers.insert("Nats-Expected-Last-Sequence", expected.as_str());
            let published = self
                .shared
                .js
                .publish_with_headers(subject.clone(), headers, bytes.into())
                .await
                .map_err(|e| fail(format!("publishing offset {offset} of {channel}: {e}")))?;
            sent.push((offset, published));
        }
        for (offset, ack) in sent {
            let ack = ack
                .await
                .map_err(|e| fail(format!("offset {offset} of {channel} not stored: {e}")))?;
            if ack.sequence != offset {
                return Err(fail(format!(
                    "offset {offset} of {channel} was stored at {}",
                    ack.sequence
                )));
            }
            self.shared.heads.acked(channel, offset);
            self.shared.stats.appended.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Writes delivery-id claims as the source remembered them, so a redelivery of an
    /// event received before the move is still answered as a duplicate after it.
    /// Claims the bucket already holds unchanged are not rewritten (a second migrate
    /// writes nothing); returns how many were written.
    pub async fn import_claims(
        &self,
        channel: &str,
        claims: &[DeliveryClaim],
    ) -> Result<usize, StorageError> {
        let mut written = 0;
        for chunk in claims.chunks(CLAIM_CHUNK) {
            let writes = chunk.iter().map(|c| self.import_claim(channel, c));
            for done in join_all(writes).await {
                written += usize::from(done?);
            }
        }
        Ok(written)
    }

    /// One claim, unless the bucket holds it already; true when written.
    async fn import_claim(&self, channel: &str, c: &DeliveryClaim) -> Result<bool, StorageError> {
        let claim = Claim {
            offset: c.offset,
            at_ms: c.at_ms,
            id: c.event_id.clone(),
        };
        let dedup = &self.shared.dedup;
        if dedup.lookup(channel, &c.delivery_id).await?.as_ref() == Some(&claim) {
            return Ok(false);
        }
        dedup.claim(channel, &c.delivery_id, &claim).await?;
        Ok(true)
    }

    /// Sets a redrive mark with its original time (the dead letter must be copied first).
    pub async fn import_redrive(
        &self,
        channel: &str,
        group: &str,
        mark: RedriveMark,
    ) -> Result<(), StorageError> {
        self.letters
            .request_redrive(channel, group, &[mark.offset], mark.at_ms)
            .await
    }
}

/// The record must decode and carry the offset it is about to be stored at.
fn check_record(channel: &str, offset: u64, bytes: &[u8]) -> Result<(), StorageError> {
    let record = Record::decode(bytes)
        .map_err(|e| StorageError::Corrupt(format!("{channel} offset {offset}: {e}")))?;
    if record.offset != offset {
        return Err(StorageError::Corrupt(format!(
            "{channel}: the record at offset {offset} says offset {}",
            record.offset
        )));
    }
    Ok(())
}
