//! The durable head of every channel, in memory, with a `watch` per channel so that
//! subscriptions wake when it moves instead of polling.
//!
//! Only the committer publishes, and only after the flush that made the offsets
//! durable: that ordering is guarantee 3 (readers see only durable events).

use std::collections::HashMap;
use std::sync::RwLock;

use tokio::sync::watch;

use crate::storage::types::StorageStats;

/// State shared by the committer and every reader.
pub(crate) struct Shared {
    /// Durable head per channel; receivers wake when it moves.
    heads: RwLock<HashMap<String, watch::Sender<u64>>>,
    /// Counters for metrics.
    pub stats: StorageStats,
}

impl Shared {
    /// Starts with the heads found on disk.
    pub fn new(heads: HashMap<String, u64>) -> Shared {
        let senders = heads
            .into_iter()
            .map(|(c, h)| (c, watch::Sender::new(h)))
            .collect();
        Shared {
            heads: RwLock::new(senders),
            stats: StorageStats::default(),
        }
    }

    /// Moves a channel's head; receivers wake only when it changed.
    pub fn publish_head(&self, channel: &str, head: u64) {
        if let Ok(heads) = self.heads.read() {
            if let Some(tx) = heads.get(channel) {
                if *tx.borrow() != head {
                    tx.send_replace(head);
                }
                return;
            }
        }
        if let Ok(mut heads) = self.heads.write() {
            heads
                .entry(channel.to_string())
                .or_insert_with(|| watch::Sender::new(0))
                .send_replace(head);
        }
    }

    /// The last durable offset of a channel (0 when it has none).
    pub fn head(&self, channel: &str) -> u64 {
        self.heads
            .read()
            .ok()
            .and_then(|h| h.get(channel).map(|tx| *tx.borrow()))
            .unwrap_or(0)
    }

    /// A receiver of the channel's durable head.
    pub fn watch(&self, channel: &str) -> watch::Receiver<u64> {
        if let Ok(heads) = self.heads.read() {
            if let Some(tx) = heads.get(channel) {
                return tx.subscribe();
            }
        }
        match self.heads.write() {
            Ok(mut heads) => heads
                .entry(channel.to_string())
                .or_insert_with(|| watch::Sender::new(0))
                .subscribe(),
            // A poisoned lock means a panic elsewhere; a receiver that never moves is safe.
            Err(_) => watch::Sender::new(0).subscribe(),
        }
    }

    /// Channels that have ever stored an event.
    pub fn channels(&self) -> Vec<String> {
        self.heads
            .read()
            .map(|h| {
                h.iter()
                    .filter(|(_, tx)| *tx.borrow() > 0)
                    .map(|(c, _)| c.clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}
