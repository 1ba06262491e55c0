//! Reads that only `hookrelay migrate` needs, beyond the [`crate::storage::Storage`]
//! trait: every group that has any state, the delivery-id claims and the redrive marks
//! with their times. Read-only; they run on the blocking pool like the other reads.

use std::collections::BTreeSet;

use super::codec::decode_dedup;
use super::keys;
use super::read::{failed, Reader};
use super::SledStorage;
use crate::storage::error::StorageError;
use crate::storage::transfer::{DeliveryClaim, RedriveMark};

impl SledStorage {
    /// Every group of `channel` with a cursor, a dead letter or a redrive mark.
    pub async fn groups_with_state(&self, channel: &str) -> Result<Vec<String>, StorageError> {
        let channel = channel.to_string();
        self.blocking(move |r| groups_with_state(r, &channel)).await
    }

    /// The channel's remembered delivery ids (expired ones included until the relay's
    /// sweep removes them; the target expires them the same way).
    pub async fn delivery_claims(&self, channel: &str) -> Result<Vec<DeliveryClaim>, StorageError> {
        let channel = channel.to_string();
        self.blocking(move |r| delivery_claims(r, &channel)).await
    }

    /// Every channel with a learned value, in order.
    pub fn channels_with_settings(&self) -> Result<Vec<String>, StorageError> {
        self.settings.channels()
    }

    /// Every value the relay learned for `channel` (Asana's hook secret): (name, value).
    pub fn channel_settings(&self, channel: &str) -> Result<Vec<(String, Vec<u8>)>, StorageError> {
        self.settings.of_channel(channel)
    }

    /// A group's pending redrives with when each was asked, in offset order.
    pub async fn redrive_marks(
        &self,
        channel: &str,
        group: &str,
    ) -> Result<Vec<RedriveMark>, StorageError> {
        let (channel, group) = (channel.to_string(), group.to_string());
        self.blocking(move |r| redrive_marks(r, &channel, &group))
            .await
    }
}

fn groups_with_state(r: &Reader, channel: &str) -> Result<Vec<String>, StorageError> {
    let mut groups: BTreeSet<String> = r.groups(channel)?.into_iter().map(|(g, _)| g).collect();
    // Dead-letter and redrive keys: `{kind}\0{channel}\0{group}\0{8-byte offset}`.
    for kind in [keys::DEAD_LETTER, keys::REDRIVE] {
        let prefix = [&[kind, 0], channel.as_bytes(), &[0]].concat();
        for k in r.tree.scan_prefix(&prefix).keys() {
            let k = k.map_err(failed)?;
            if let Some(group) = k.get(prefix.len()..k.len().saturating_sub(9)) {
                groups.insert(String::from_utf8_lossy(group).into_owned());
            }
        }
    }
    Ok(groups.into_iter().collect())
}

fn delivery_claims(r: &Reader, channel: &str) -> Result<Vec<DeliveryClaim>, StorageError> {
    let prefix = [&[keys::DEDUP, 0], channel.as_bytes(), &[0]].concat();
    let mut out = Vec::new();
    for kv in r.tree.scan_prefix(&prefix) {
        let (k, v) = kv.map_err(failed)?;
        let Some((offset, at_ms, event_id)) = decode_dedup(&v) else {
            continue;
        };
        out.push(DeliveryClaim {
            delivery_id: String::from_utf8_lossy(&k[prefix.len()..]).into_owned(),
            offset,
            at_ms,
            event_id,
        });
    }
    Ok(out)
}

fn redrive_marks(r: &Reader, channel: &str, group: &str) -> Result<Vec<RedriveMark>, StorageError> {
    let mut out = Vec::new();
    for kv in r.tree.scan_prefix(keys::redrive_prefix(channel, group)) {
        let (k, v) = kv.map_err(failed)?;
        if let Some(offset) = keys::trailing_offset(&k) {
            let at_ms = keys::decode_u64(&v).unwrap_or(0);
            out.push(RedriveMark { offset, at_ms });
        }
    }
    Ok(out)
}
