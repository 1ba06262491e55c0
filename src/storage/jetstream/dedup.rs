//! Delivery-id claims in the `{prefix}_dedup` bucket.
//!
//! JetStream's own `Nats-Msg-Id` dedup cannot be the relay's: its window is
//! wall-clock time on the server and fixed per stream, while the relay's window is per
//! append and counts from the event's received-at (and `expire_dedup` drives expiry).
//! So the channel's writer looks the id up here (on any node: the bucket is shared)
//! and, for a new event, writes a claim (offset, received-at, event id) durably
//! *before* publishing the event. A crash in between leaves a claim whose offset holds
//! another event or nothing: a lookup therefore checks the stored event's id before
//! answering "duplicate" (reading the record even above this node's head, since
//! another node may have just stored it).
//!
//! Two nodes that look an id up at the same moment both miss; for that race the
//! publish also carries `Nats-Msg-Id` (sha256 of the id), with the stream's duplicate
//! window [`super::streams::DUPLICATE_WINDOW_SECS`]: JetStream stores only the first
//! and answers the second with its sequence, which the writer answers as the duplicate
//! (unless the relay's own window says otherwise) and puts the claim back to.

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
