//! State shared by the trait impl and the per-channel writers.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;
use std::time::Duration;

use async_nats::jetstream::stream::Stream;
use async_nats::jetstream::Context;

use super::dedup::DedupStore;
use super::heads::Heads;
use super::names::Names;
use super::streams;
use crate::storage::error::StorageError;
use crate::storage::types::StorageStats;

/// Everything one opened backend holds.
pub struct Shared {
    /// The JetStream context.
    pub js: Context,
    /// The names under this relay's prefix.
    pub names: Names,
    /// Replicas of each new stream.
    pub replicas: usize,
    /// Heads, first retained offsets and watchers.
    pub heads: Heads,
    /// The newest records this node appended (see `recent`).
    pub recent: super::recent::Recent,
    /// Delivery-id claims.
    pub dedup: DedupStore,
    /// First retained offsets, as every node's retention left them (see `firsts`).
    pub firsts: async_nats::jetstream::kv::Store,
    /// Counters for metrics.
    pub stats: StorageStats,
    /// Set by `close`: later writes are refused.
    pub closed: AtomicBool,
    /// Stream handles opened so far, by channel.
    pub streams: Mutex<HashMap<String, Stream>>,
    /// The runtime the backend was opened on: followers start from synchronous calls.
    pub runtime: tokio::runtime::Handle,
    /// The follower task of each channel this node follows (see `follow`).
    pub followers: Mutex<HashMap<String, tokio::task::AbortHandle>>,
    /// Each configured channel's dedup window, which its stream's `Nats-Msg-Id` window
    /// is set to (see `dedup`); set by `prepare`.
    pub windows: Mutex<HashMap<String, Duration>>,
}

impl Shared {
    /// The channel's stream, `None` when it was never created.
    pub async fn stream(&self, channel: &str) -> Result<Option<Stream>, StorageError> {
        if let Some(s) = self.cached(channel) {
            return Ok(Some(s));
        }
        let found = streams::existing(&self.js, &self.names, channel).await?;
        if let Some(s) = &found {
            self.remember(channel, s.clone());
        }
        Ok(found)
    }

    /// Creates the channel's stream, or updates it to this node's config.
    pub async fn ensure(&self, channel: &str) -> Result<Stream, StorageError> {
        let window = {
            let windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
            windows.get(channel).copied()
        };
        let window = match window {
            Some(w) => w,
            // Not a channel configured here: an existing stream keeps its settings.
            None => match self.stream(channel).await? {
                Some(s) => return Ok(s),
                None => streams::DEFAULT_DUPLICATE_WINDOW,
            },
        };
        streams::ensure(&self.js, &self.names, channel, self.replicas, window).await
    }

    /// Keeps a stream handle for later reads.
    pub fn remember(&self, channel: &str, stream: Stream) {
        let mut map = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(channel.to_string(), stream);
    }

    /// Stops every follower (the backend is dropped or closed).
    pub fn stop_followers(&self) {
        let mut followers = self.followers.lock().unwrap_or_else(|p| p.into_inner());
        followers.drain().for_each(|(_, task)| task.abort());
    }

    fn cached(&self, channel: &str) -> Option<Stream> {
        let map = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        map.get(channel).cloned()
    }
}
