//! [`Storage`] for [`JetStreamStorage`]: appends go to the channel's writer, reads go
//! to the stream (capped at the acknowledged head), groups to the KV buckets.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{broadcast, oneshot, watch};

use super::handle::JetStreamStorage;
use super::retention;
use super::streams;
use crate::common::event::Record;
use crate::storage::api::{CursorSlot, Storage};
use crate::storage::error::StorageError;
use crate::storage::lease::{Control, LeaseGrant};
use crate::storage::types::{Appended, DeadLetter, Dedup, Limits, NewEvent, Pass, StorageStats};

/// Longest `close` waits for queued cursor writes.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(30);

impl JetStreamStorage {
    /// Retained offsets in `from..`, at most `limit`, capped at the head: (first, last).
    fn span(&self, channel: &str, from: u64, limit: usize) -> Option<(u64, u64)> {
        let start = from.max(self.shared.heads.earliest(channel)).max(1);
        let end = self
            .shared
            .heads
            .head(channel)
            .min(start.saturating_add(limit as u64).saturating_sub(1));
        (limit > 0 && start <= end).then_some((start, end))
    }

    async fn raw(
        &self,
        channel: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, bytes::Bytes)>, StorageError> {
        let Some((start, end)) = self.span(channel, from, limit) else {
            return Ok(Vec::new());
        };
        // This node's newest appends come from memory; the stream gives the rest.
        let cached = self.shared.recent.slice(channel, start, end);
        let (Some(&(lo, _)), Some(&(hi, _))) = (cached.first(), cached.last()) else {
            return self.stored(channel, start, end).await;
        };
        let mut out = if start < lo {
            self.stored(channel, start, lo - 1).await?
        } else {
            Vec::new()
        };
        out.extend(cached);
        if hi < end {
            out.extend(self.stored(channel, hi + 1, end).await?);
        }
        Ok(out)
    }

    /// What the stream stores at `start..=end` (retained offsets only).
    async fn stored(
        &self,
        channel: &str,
        start: u64,
        end: u64,
    ) -> Result<Vec<(u64, bytes::Bytes)>, StorageError> {
        match self.shared.stream(channel).await? {
            Some(stream) => streams::read(&stream, start, end).await,
            None => Ok(Vec::new()),
        }
    }
}

#[async_trait::async_trait]
impl Storage for JetStreamStorage {
    async fn append(
        &self,
        channel: &str,
        event: NewEvent,
        dedup: Option<Dedup>,
    ) -> Result<Appended, StorageError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(StorageError::Closed);
        }
        let (reply, rx) = oneshot::channel();
        let op = super::writer::AppendOp {
            event,
            dedup,
            reply,
        };
        self.writer(channel)
            .send(op)
            .await
            .map_err(|_| StorageError::Closed)?;
        rx.await.map_err(|_| StorageError::Closed)?
    }

    async fn sync(&self) -> Result<(), StorageError> {
        // Appends answer only once acknowledged; cursor moves are what may be queued.
        self.cursors.sync().await
    }

    async fn close(&self) -> Result<(), StorageError> {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.stop_followers();
        let synced = tokio::time::timeout(CLOSE_TIMEOUT, self.sync())
            .await
            .unwrap_or_else(|_| Err(StorageError::Failed("closing timed out".into())));
        let _ = self.client.flush().await;
        synced
    }

    fn head(&self, channel: &str) -> u64 {
        self.follow(channel);
        self.shared.heads.head(channel)
    }

    fn watch(&self, channel: &str) -> watch::Receiver<u64> {
        self.follow(channel);
        self.shared.heads.watch(channel)
    }

    fn channels(&self) -> Vec<String> {
        self.shared.heads.channels()
    }

    fn earliest(&self, channel: &str) -> Result<u64, StorageError> {
        self.follow(channel);
        Ok(self.shared.heads.earliest(channel))
    }

    async fn get(&self, channel: &str, offset: u64) -> Result<Option<Record>, StorageError> {
        Ok(self
            .read(channel, offset, 1)
            .await?
            .into_iter()
            .find(|r| r.offset == offset))
    }

    async fn read(
        &self,
        channel: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<Record>, StorageError> {
        self.raw(channel, from, limit)
            .await?
            .iter()
            .map(|(o, b)| {
                Record::decode(b).map_err(|e| StorageError::Corrupt(format!("offset {o}: {e}")))
            })
            .collect()
    }

    async fn read_raw(
        &self,
        channel: &str,
        from: u64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StorageError> {
        let mut out = Vec::new();
        let mut total = 0usize;
        for (offset, bytes) in self.raw(channel, from, limit).await? {
            total = total.saturating_add(bytes.len());
            if total > max_bytes && !out.is_empty() {
                break;
            }
            out.push((offset, bytes.to_vec()));
        }
        Ok(out)
    }

    async fn offset_at_time(&self, channel: &str, ms: u64) -> Result<u64, StorageError> {
        retention::offset_at_time(&self.shared, channel, ms).await
    }

    fn cursor(&self, channel: &str, group: &str) -> Result<Option<u64>, StorageError> {
        Ok(self.cursors.get(channel, group))
    }

    async fn groups(&self, channel: &str) -> Result<Vec<(String, u64)>, StorageError> {
        self.cursors.sync().await?;
        Ok(self.cursors.groups(channel))
    }

    fn advance_cursor(&self, channel: &str, group: &str, offset: u64) -> Result<(), StorageError> {
        self.cursors.advance(channel, group, offset)
    }

    async fn set_cursor(
        &self,
        channel: &str,
        group: &str,
        offset: u64,
        force: bool,
    ) -> Result<(), StorageError> {
        self.cursors.set(channel, group, offset, force).await
    }

    async fn reserve_cursor_write(&self) -> Result<Box<dyn CursorSlot>, StorageError> {
        self.cursors.reserve().await
    }

    async fn add_dead_letter(
        &self,
        channel: &str,
        group: &str,
        entry: DeadLetter,
    ) -> Result<(), StorageError> {
        self.letters.add(channel, group, &entry).await
    }

    async fn dead_letters(
        &self,
        channel: &str,
        group: &str,
    ) -> Result<Vec<DeadLetter>, StorageError> {
        self.letters.list(channel, group).await
    }

    async fn dead_letter_count(&self, channel: &str, group: &str) -> Result<usize, StorageError> {
        Ok(self.letters.list(channel, group).await?.len())
    }

    async fn dead_letter(
        &self,
        channel: &str,
        group: &str,
        offset: u64,
    ) -> Result<Option<DeadLetter>, StorageError> {
        self.letters.get(channel, group, offset).await
    }

    async fn request_redrive(
        &self,
        channel: &str,
        group: &str,
        offsets: Vec<u64>,
        at_ms: u64,
    ) -> Result<(), StorageError> {
        self.letters
            .request_redrive(channel, group, &offsets, at_ms)
            .await
    }

    async fn redrives(&self, channel: &str, group: &str) -> Result<Vec<u64>, StorageError> {
        self.letters.redrives(channel, group).await
    }

    async fn finish_redrive(
        &self,
        channel: &str,
        group: &str,
        offset: u64,
        again: Option<DeadLetter>,
    ) -> Result<(), StorageError> {
        self.letters
            .finish_redrive(channel, group, offset, again.as_ref())
            .await
    }

    async fn channel_setting(
        &self,
        channel: &str,
        name: &str,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        self.settings.get(channel, name).await
    }

    async fn put_channel_setting(
        &self,
        channel: &str,
        name: &str,
        value: Vec<u8>,
        replace: bool,
    ) -> Result<bool, StorageError> {
        self.settings.put(channel, name, value, replace).await
    }

    async fn expire_dedup(
        &self,
        now_ms: u64,
        windows: HashMap<String, u64>,
    ) -> Result<usize, StorageError> {
        self.shared.dedup.expire(now_ms, &windows).await
    }

    async fn enforce_retention(
        &self,
        channel: &str,
        limits: Limits,
        now_ms: u64,
    ) -> Result<Pass, StorageError> {
        let pass = retention::enforce(&self.shared, channel, limits, now_ms).await?;
        self.letters.drop_below(channel, pass.earliest).await?;
        Ok(pass)
    }

    fn stats(&self) -> &StorageStats {
        &self.shared.stats
    }

    fn disk_bytes(&self) -> Option<u64> {
        // The data lives on the NATS servers, not on this machine.
        None
    }

    async fn try_lease(
        &self,
        channel: &str,
        group: &str,
    ) -> Result<Option<LeaseGrant>, StorageError> {
        self.leases.try_take(channel, group).await
    }

    async fn publish_control(&self, event: Control) -> Result<(), StorageError> {
        self.control.publish(event).await
    }

    fn control_events(&self) -> broadcast::Receiver<Control> {
        self.control.subscribe()
    }

    async fn writable(&self) -> Result<(), StorageError> {
        // The servers' disks are theirs to watch; here a write can succeed when this
        // backend is open, has not failed, and the client is connected.
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(StorageError::Closed);
        }
        if self.shared.stats.storage_failed.load(Ordering::Acquire) {
            return Err(StorageError::Failed("a write to JetStream failed".into()));
        }
        match self.client.connection_state() {
            async_nats::connection::State::Connected => Ok(()),
            state => Err(StorageError::Failed(format!(
                "not connected to NATS ({state})"
            ))),
        }
    }
}
