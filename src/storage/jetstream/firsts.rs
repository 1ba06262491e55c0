//! Each channel's first retained offset in the `{prefix}_firsts` bucket, so that a
//! purge made by one node moves `earliest` on every node, without polling.
//!
//! A purge does not reach an ordered consumer (nothing is delivered), so the node that
//! purged writes the new first offset here (a compare-and-set that only ever raises
//! it), and every node watches the bucket and raises its own in-memory first offset.
//! The watch delivers the last value of each key when it starts, and again after a
//! reconnect, so a node also learns the purges made while it was away.

use std::sync::Arc;

use async_nats::jetstream::kv::Store;
use futures_util::StreamExt;

use super::connect::fail;
use super::kv;
use super::names::{token, untoken};
use super::shared::Shared;
use crate::storage::error::StorageError;

/// Compare-and-set attempts before the write is given up (the purge itself stands).
const CAS_ATTEMPTS: usize = 16;
/// The key of the watcher in the followers' map: no channel is named so.
pub const WATCHER: &str = "";

/// Raises `channel`'s first retained offset in the bucket to `first`.
pub async fn raise(kv: &Store, channel: &str, first: u64) -> Result<(), StorageError> {
    let key = token(channel);
    for _ in 0..CAS_ATTEMPTS {
        let entry = kv
            .entry(key.clone())
            .await
            .map_err(|e| fail(format!("reading {key} from {}: {e}", kv.name)))?;
        let current = entry
            .as_ref()
            .filter(|e| e.operation == async_nats::jetstream::kv::Operation::Put)
            .and_then(|e| kv::decode::<u64>(&e.value));
        if current.is_some_and(|c| c >= first) {
            return Ok(());
        }
        let value = kv::encode(&first).into();
        let written = match entry {
            Some(e) => kv.update(&key, value, e.revision).await.is_ok(),
            None => kv.create(&key, value).await.is_ok(),
        };
        if written {
            return Ok(());
        }
    }
    Err(fail(format!(
        "first offset of {channel}: too many concurrent writers"
    )))
}

/// Starts the watch that applies every node's purges to this node's heads.
pub async fn watch(shared: &Arc<Shared>) -> Result<(), StorageError> {
    let updates = shared
        .firsts
        .watch_all()
        .await
        .map_err(|e| fail(format!("watching {}: {e}", shared.firsts.name)))?;
    let task = shared.runtime.spawn(follow(updates, shared.clone()));
    let mut followers = shared.followers.lock().unwrap_or_else(|p| p.into_inner());
    followers.insert(WATCHER.to_string(), task.abort_handle());
    Ok(())
}

async fn follow(mut updates: async_nats::jetstream::kv::Watch, shared: Arc<Shared>) {
    while let Some(update) = updates.next().await {
        let Ok(entry) = update else { continue };
        if let (Some(channel), Some(first)) = (untoken(&entry.key), kv::decode::<u64>(&entry.value))
        {
            shared.heads.set_first(&channel, first);
        }
    }
}
