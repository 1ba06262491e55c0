//! Dead letters (`{prefix}_deadletters`) and redrive marks (`{prefix}_redrives`), one
//! key per (channel, group, offset), so each change is a single acknowledged write.

use async_nats::jetstream::kv::Store;

use super::kv;
use super::names::{letter_key, token};
use crate::storage::error::StorageError;
use crate::storage::types::DeadLetter;

/// The two buckets.
pub struct Letters {
    letters: Store,
    marks: Store,
}

fn offset_of(key: &str) -> Option<u64> {
    key.rsplit('.').next()?.parse().ok()
}

fn group_prefix(channel: &str, group: &str) -> String {
    format!("{}.{}.", token(channel), token(group))
}

impl Letters {
    /// Wraps the opened buckets.
    pub fn new(letters: Store, marks: Store) -> Letters {
        Letters { letters, marks }
    }

    /// Records (or replaces) a dead letter.
    pub async fn add(
        &self,
        channel: &str,
        group: &str,
        l: &DeadLetter,
    ) -> Result<(), StorageError> {
        kv::put(
            &self.letters,
            &letter_key(channel, group, l.offset),
            kv::encode(l),
        )
        .await
    }

    /// One dead letter.
    pub async fn get(
        &self,
        channel: &str,
        group: &str,
        offset: u64,
    ) -> Result<Option<DeadLetter>, StorageError> {
        let bytes = kv::get(&self.letters, &letter_key(channel, group, offset)).await?;
        Ok(bytes.and_then(|b| kv::decode(&b)))
    }

    /// A group's dead letters in offset order.
    pub async fn list(&self, channel: &str, group: &str) -> Result<Vec<DeadLetter>, StorageError> {
        let mut out = Vec::new();
        for key in kv::keys_under(&self.letters, &group_prefix(channel, group)).await? {
            if let Some(b) = kv::get(&self.letters, &key).await? {
                out.extend(kv::decode::<DeadLetter>(&b));
            }
        }
        out.sort_by_key(|l| l.offset);
        Ok(out)
    }

    /// Marks the given offsets that are dead letters for redelivery.
    pub async fn request_redrive(
        &self,
        channel: &str,
        group: &str,
        offsets: &[u64],
        at_ms: u64,
    ) -> Result<(), StorageError> {
        for &offset in offsets {
            if self.get(channel, group, offset).await?.is_some() {
                let key = letter_key(channel, group, offset);
                kv::put(&self.marks, &key, kv::encode(&at_ms)).await?;
            }
        }
        Ok(())
    }

    /// A group's pending redrive marks, in order.
    pub async fn redrives(&self, channel: &str, group: &str) -> Result<Vec<u64>, StorageError> {
        let mut out = Vec::new();
        for key in kv::keys_under(&self.marks, &group_prefix(channel, group)).await? {
            if kv::get(&self.marks, &key).await?.is_some() {
                out.extend(offset_of(&key));
            }
        }
        out.sort();
        Ok(out)
    }

    /// A redriven delivery settled: the letter goes (or is replaced), then the mark.
    pub async fn finish_redrive(
        &self,
        channel: &str,
        group: &str,
        offset: u64,
        again: Option<&DeadLetter>,
    ) -> Result<(), StorageError> {
        let key = letter_key(channel, group, offset);
        match again {
            Some(l) => kv::put(&self.letters, &key, kv::encode(l)).await?,
            None => kv::delete(&self.letters, &key).await?,
        }
        kv::delete(&self.marks, &key).await
    }

    /// Drops the letters and marks of `channel` below `earliest` (their events are gone).
    pub async fn drop_below(&self, channel: &str, earliest: u64) -> Result<(), StorageError> {
        let prefix = format!("{}.", token(channel));
        for store in [&self.letters, &self.marks] {
            for key in kv::keys_under(store, &prefix).await? {
                if offset_of(&key).is_some_and(|o| o < earliest)
                    && kv::get(store, &key).await?.is_some()
                {
                    kv::delete(store, &key).await?;
                }
            }
        }
        Ok(())
    }
}
