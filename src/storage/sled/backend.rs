//! [`Storage`] for [`SledStorage`]: writes go to the committer as ops and wait for
//! their flush (an append to an idle log is committed by its own task instead, see
//! `inline`); cheap reads run inline, the ones that may scan run on the blocking pool.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::commit::{Op, STORAGE_FAILED};
use super::linger::Holding;
use super::{dir_bytes, SledCursorSlot, SledStorage, APPEND_TIMEOUT};
use crate::common::event::Record;
use crate::storage::api::{CursorSlot, Storage};
use crate::storage::error::StorageError;
use crate::storage::lease::{Control, LeaseGrant, LocalLease};
use crate::storage::types::{Appended, DeadLetter, Dedup, Limits, NewEvent, Pass, StorageStats};

fn timed_out(what: &str) -> StorageError {
    StorageError::Failed(format!(
        "{what} did not finish within {} s",
        APPEND_TIMEOUT.as_secs()
    ))
}

#[async_trait::async_trait]
impl Storage for SledStorage {
    async fn append(
        &self,
        channel: &str,
        event: NewEvent,
        dedup: Option<Dedup>,
    ) -> Result<Appended, StorageError> {
        if self.stats().storage_failed.load(Ordering::Acquire) {
            return Err(StorageError::Failed(STORAGE_FAILED.to_string()));
        }
        let (reply, rx) = oneshot::channel();
        let op = Op::Append {
            channel: channel.to_string(),
            id: crate::storage::types::new_event_id(),
            event,
            dedup,
            reply,
        };
        // At a trickle the append is committed right here (see `inline`).
        let Some(op) = self.commit_inline(op) else {
            return rx.await.map_err(|_| StorageError::Closed)?;
        };
        // A storage that stopped answering must not hold providers' requests open
        // forever; a late commit only means an unacknowledged event was stored.
        tokio::time::timeout(APPEND_TIMEOUT, self.submit(op, rx))
            .await
            .unwrap_or_else(|_| Err(timed_out("the append")))
    }

    async fn sync(&self) -> Result<(), StorageError> {
        let (reply, rx) = oneshot::channel();
        self.submit(Op::Sync(reply), rx).await
    }

    async fn close(&self) -> Result<(), StorageError> {
        tokio::time::timeout(APPEND_TIMEOUT, self.sync())
            .await
            .unwrap_or_else(|_| Err(timed_out("the final flush")))
    }

    fn head(&self, channel: &str) -> u64 {
        self.reader.shared.head(channel)
    }

    fn watch(&self, channel: &str) -> watch::Receiver<u64> {
        self.reader.shared.watch(channel)
    }

    fn channels(&self) -> Vec<String> {
        self.reader.shared.channels()
    }

    fn earliest(&self, channel: &str) -> Result<u64, StorageError> {
        self.reader.earliest(channel)
    }

    async fn get(&self, channel: &str, offset: u64) -> Result<Option<Record>, StorageError> {
        self.reader.get(channel, offset)
    }

    async fn read(
        &self,
        channel: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<Record>, StorageError> {
        let channel = channel.to_string();
        self.blocking(move |r| r.read(&channel, from, limit)).await
    }

    async fn read_raw(
        &self,
        channel: &str,
        from: u64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StorageError> {
        if self.near_head(channel, from) {
            return self.reader.read_raw(channel, from, limit, max_bytes);
        }
        let channel = channel.to_string();
        self.blocking(move |r| r.read_raw(&channel, from, limit, max_bytes))
            .await
    }

    async fn offset_at_time(&self, channel: &str, ms: u64) -> Result<u64, StorageError> {
        let channel = channel.to_string();
        self.blocking(move |r| r.offset_at_time(&channel, ms)).await
    }

    fn cursor(&self, channel: &str, group: &str) -> Result<Option<u64>, StorageError> {
        self.reader.cursor(channel, group)
    }

    async fn groups(&self, channel: &str) -> Result<Vec<(String, u64)>, StorageError> {
        self.reader.groups(channel)
    }

    /// Held for the committer's next batch (see `linger`): nobody waits on it.
    fn advance_cursor(&self, channel: &str, group: &str, offset: u64) -> Result<(), StorageError> {
        let op = match self.linger.hold(channel, group, offset) {
            Holding::Held => return Ok(()),
            Holding::HeldNudge => Op::Nudge,
            Holding::Queue => Op::Cursor {
                channel: channel.to_string(),
                group: group.to_string(),
                offset,
                force: false,
                reply: None,
            },
        };
        match self.tx.try_send(op) {
            // A nudge that finds the queue full is not needed: the committer is busy and
            // takes the held move with its next batch anyway.
            Ok(()) | Err(mpsc::error::TrySendError::Full(Op::Nudge)) => Ok(()),
            // A move queued behind a reset that does not fit: the caller writes it in
            // the background once there is room (the hub's `advance_when_room`).
            Err(_) => Err(StorageError::Closed),
        }
    }

    async fn set_cursor(
        &self,
        channel: &str,
        group: &str,
        offset: u64,
        force: bool,
    ) -> Result<(), StorageError> {
        if force {
            self.linger.reset_queued(channel, group);
        }
        let (reply, rx) = oneshot::channel();
        let op = Op::Cursor {
            channel: channel.to_string(),
            group: group.to_string(),
            offset,
            force,
            reply: Some(reply),
        };
        self.submit(op, rx).await
    }

    async fn reserve_cursor_write(&self) -> Result<Box<dyn CursorSlot>, StorageError> {
        let permit = self
            .tx
            .clone()
            .reserve_owned()
            .await
            .map_err(|_| StorageError::Closed)?;
        Ok(Box::new(SledCursorSlot {
            permit,
            linger: self.linger.clone(),
        }))
    }

    async fn add_dead_letter(
        &self,
        channel: &str,
        group: &str,
        entry: DeadLetter,
    ) -> Result<(), StorageError> {
        let (reply, rx) = oneshot::channel();
        let op = Op::DeadLetter {
            channel: channel.to_string(),
            group: group.to_string(),
            entry,
            reply: Some(reply),
        };
        self.submit(op, rx).await
    }

    async fn dead_letters(
        &self,
        channel: &str,
        group: &str,
    ) -> Result<Vec<DeadLetter>, StorageError> {
        self.reader.dead_letters(channel, group)
    }

    async fn dead_letter_count(&self, channel: &str, group: &str) -> Result<usize, StorageError> {
        self.reader.dead_letter_count(channel, group)
    }

    async fn dead_letter(
        &self,
        channel: &str,
        group: &str,
        offset: u64,
    ) -> Result<Option<DeadLetter>, StorageError> {
        self.reader.dead_letter(channel, group, offset)
    }

    async fn request_redrive(
        &self,
        channel: &str,
        group: &str,
        offsets: Vec<u64>,
        at_ms: u64,
    ) -> Result<(), StorageError> {
        let (reply, rx) = oneshot::channel();
        let op = Op::Redrive {
            channel: channel.to_string(),
            group: group.to_string(),
            offsets,
            at_ms,
            reply,
        };
        self.submit(op, rx).await
    }

    async fn redrives(&self, channel: &str, group: &str) -> Result<Vec<u64>, StorageError> {
        let (channel, group) = (channel.to_string(), group.to_string());
        self.blocking(move |r| r.redrives(&channel, &group)).await
    }

    async fn finish_redrive(
        &self,
        channel: &str,
        group: &str,
        offset: u64,
        again: Option<DeadLetter>,
    ) -> Result<(), StorageError> {
        let (reply, rx) = oneshot::channel();
        let op = Op::RedriveDone {
            channel: channel.to_string(),
            group: group.to_string(),
            offset,
            again,
            reply,
        };
        self.submit(op, rx).await
    }

    async fn channel_setting(
        &self,
        channel: &str,
        name: &str,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        let (settings, channel, name) =
            (self.settings.clone(), channel.to_owned(), name.to_owned());
        tokio::task::spawn_blocking(move || settings.get(&channel, &name))
            .await
            .map_err(|_| StorageError::Failed("the settings read was interrupted".into()))?
    }

    async fn put_channel_setting(
        &self,
        channel: &str,
        name: &str,
        value: Vec<u8>,
        replace: bool,
    ) -> Result<bool, StorageError> {
        let (settings, channel, name) =
            (self.settings.clone(), channel.to_owned(), name.to_owned());
        // The flush touches the disk: off the async workers.
        tokio::task::spawn_blocking(move || settings.put(&channel, &name, &value, replace))
            .await
            .map_err(|_| StorageError::Failed("the settings write was interrupted".into()))?
    }

    async fn expire_dedup(
        &self,
        now_ms: u64,
        windows: HashMap<String, u64>,
    ) -> Result<usize, StorageError> {
        self.blocking(move |r| r.expire_dedup(now_ms, &windows))
            .await
    }

    async fn enforce_retention(
        &self,
        channel: &str,
        limits: Limits,
        now_ms: u64,
    ) -> Result<Pass, StorageError> {
        let channel = channel.to_string();
        let pass = self
            .blocking(move |r| r.enforce_retention(&channel, limits, now_ms))
            .await?;
        self.stats()
            .retention_removed
            .fetch_add(pass.events, Ordering::Relaxed);
        Ok(pass)
    }

    fn stats(&self) -> &StorageStats {
        &self.reader.shared.stats
    }

    fn disk_bytes(&self) -> Option<u64> {
        dir_bytes(&self.dir)
    }

    /// One node: the lease is always free, and the hub on this node already orders
    /// its members.
    async fn try_lease(
        &self,
        channel: &str,
        group: &str,
    ) -> Result<Option<LeaseGrant>, StorageError> {
        Ok(Some(LeaseGrant {
            lease: Box::new(LocalLease::default()),
            cursor: self.cursor(channel, group)?,
        }))
    }

    async fn publish_control(&self, _event: Control) -> Result<(), StorageError> {
        Ok(())
    }

    fn control_events(&self) -> broadcast::Receiver<Control> {
        // The sender goes at once: the receiver reports the channel closed.
        broadcast::channel(1).1
    }

    async fn writable(&self) -> Result<(), StorageError> {
        if self.stats().storage_failed.load(Ordering::Acquire) {
            return Err(StorageError::Failed(STORAGE_FAILED.to_string()));
        }
        let dir = self.dir.clone();
        let reserve = self.reserve_bytes;
        tokio::task::spawn_blocking(move || super::probe::probe(&dir, reserve))
            .await
            .map_err(|_| StorageError::Failed("the write probe was interrupted".into()))?
            .map_err(StorageError::Failed)
    }
}
