//! Delivery ids: JetStream's own deduplication, plus the claims `migrate` imports.
//!
//! Every append with a delivery id is published with `Nats-Msg-Id` (a digest of the
//! id), and each channel's stream has its duplicate window set to the channel's
//! `dedup_window_secs` (`streams::ensure`). JetStream then answers a second publish of
//! the id within the window with the first one's sequence, atomically, whichever node
//! sends it: the writer answers that as the duplicate, with the original's offset and
//! event id (`publish`).
//!
//! An earlier design also wrote a claim to the `{prefix}_dedup` bucket before each
//! publish. That was a second replicated, synced write on every append's path: it
//! halved R1 ingest and added an R3 commit to each event's latency. JetStream's window
//! counts from when the server stored the message, the relay's from received-at: the
//! two differ by the append's own latency, and the writer still checks the relay's
//! window on a duplicate answer.
//!
//! What the window cannot know is what was deduplicated before the move from sled:
//! `hookrelay migrate` writes those delivery ids as claims (offset, received-at, event
//! id) in `{prefix}_dedup`. A channel's writer looks its appends' ids up there, all of
//! a batch at once, only when the channel has any claim ([`DedupStore::any`]);
//! `expire_dedup` deletes claims whose window has passed.
//!
//! Limits, said plainly: the server holds every id of the window in memory (about
//! 100 bytes each: a 24 h window at 10 events/s is some 90 MB per replica), and after
//! a server restart it rebuilds the window from the stored messages, so the ids of
//! events that retention already removed are forgotten early.

use std::collections::HashMap;

use async_nats::jetstream::kv::Store;
use bincode::{Decode, Encode};

use super::kv;
use super::names::{dedup_key, untoken};
use crate::storage::error::StorageError;

/// What a claim records: where the original went.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Claim {
    /// The original's offset.
    pub offset: u64,
    /// The original's received-at, unix ms: the window counts from it.
    pub at_ms: u64,
    /// The original's event id.
    pub id: String,
}

/// The dedup bucket.
pub struct DedupStore {
    kv: Store,
}

impl DedupStore {
    /// Wraps the opened bucket.
    pub fn new(kv: Store) -> DedupStore {
        DedupStore { kv }
    }

    /// The claim on `id` in `channel`, if any.
    pub async fn lookup(&self, channel: &str, id: &str) -> Result<Option<Claim>, StorageError> {
        let bytes = kv::get(&self.kv, &dedup_key(channel, id)).await?;
        Ok(bytes.and_then(|b| kv::decode(&b)))
    }

    /// Whether the bucket holds any key of `channel` (a claim, or a deleted one).
    pub async fn any(&self, channel: &str) -> Result<bool, StorageError> {
        let subject = format!("{}{}.>", self.kv.prefix, super::names::token(channel));
        match self
            .kv
            .stream
            .get_first_raw_message_by_subject(subject, 1)
            .await
        {
            Ok(_) => Ok(true),
            Err(e)
                if e.kind()
                    == async_nats::jetstream::stream::LastRawMessageErrorKind::NoMessageFound =>
            {
                Ok(false)
            }
            Err(e) => Err(super::connect::fail(format!(
                "reading {}: {e}",
                self.kv.name
            ))),
        }
    }

    /// Records a claim durably.
    pub async fn claim(&self, channel: &str, id: &str, claim: &Claim) -> Result<(), StorageError> {
        kv::put(&self.kv, &dedup_key(channel, id), kv::encode(claim)).await
    }

    /// Deletes claims older than their channel's window; a claim rewritten meanwhile
    /// (a newer revision) is kept.
    pub async fn expire(
        &self,
        now_ms: u64,
        windows: &HashMap<String, u64>,
    ) -> Result<usize, StorageError> {
        let mut removed = 0;
        for key in kv::keys_under(&self.kv, "").await? {
            let Some(entry) = self
                .kv
                .entry(key.clone())
                .await
                .map_err(|e| super::connect::fail(format!("reading {key}: {e}")))?
            else {
                continue;
            };
            if entry.operation != async_nats::jetstream::kv::Operation::Put {
                continue;
            }
            let channel = key.split('.').next().and_then(untoken).unwrap_or_default();
            let Some(claim) = kv::decode::<Claim>(&entry.value) else {
                continue;
            };
            let window = windows.get(&channel).copied().unwrap_or(0);
            if now_ms.saturating_sub(claim.at_ms) >= window
                && self
                    .kv
                    .delete_expect_revision(&key, Some(entry.revision))
                    .await
                    .is_ok()
            {
                removed += 1;
            }
        }
        Ok(removed)
    }
}
