//! The [`Storage`] trait and its cursor slot: the whole interface between the relay and
//! a storage backend (the module doc of [`crate::storage`] says what it guarantees).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use tokio::sync::{broadcast, watch};

use super::error::StorageError;
use super::lease::{Control, LeaseGrant};
use super::types::{Appended, DeadLetter, Dedup, Limits, NewEvent, Pass, StorageStats};
use crate::common::event::Record;

/// A boxed future, as the dyn-compatible methods of this module return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A reserved place for one cursor write (see [`Storage::reserve_cursor_write`]).
pub trait CursorSlot: Send {
    /// Queues the write at once, without waiting; the future resolves when it is
    /// durable. `force` allows moving the cursor backwards (a reset).
    fn set(
        self: Box<Self>,
        channel: &str,
        group: &str,
        offset: u64,
        force: bool,
    ) -> BoxFuture<'static, Result<(), StorageError>>;
}

/// The relay's durable log: events per channel, consumer groups' cursors, dead letters.
#[async_trait::async_trait]
pub trait Storage: Send + Sync + 'static {
    // --- appends ---

    /// Appends an event and returns once it is durable, or the original when `dedup`'s
    /// id was seen within its window (then nothing is appended).
    async fn append(
        &self,
        channel: &str,
        event: NewEvent,
        dedup: Option<Dedup>,
    ) -> Result<Appended, StorageError>;

    /// Waits until every write submitted before is durable.
    async fn sync(&self) -> Result<(), StorageError>;

    /// Makes everything acknowledged durable and stops accepting writes; bounded, so a
    /// wedged backend cannot keep the process from exiting.
    async fn close(&self) -> Result<(), StorageError>;

    // --- the durable head (synchronous: from memory) ---

    /// The last durable offset of a channel (0 when it has none).
    fn head(&self, channel: &str) -> u64;

    /// A receiver of the channel's durable head; it changes only once appends are durable.
    fn watch(&self, channel: &str) -> watch::Receiver<u64>;

    /// Channels that have ever stored an event.
    fn channels(&self) -> Vec<String>;

    /// The first retained offset; `head + 1` when the channel holds no events.
    fn earliest(&self, channel: &str) -> Result<u64, StorageError>;

    // --- reads ---

    /// One durable event, if retained.
    async fn get(&self, channel: &str, offset: u64) -> Result<Option<Record>, StorageError>;

    /// Up to `limit` durable events with offsets `>= from`, in order.
    async fn read(
        &self,
        channel: &str,
        from: u64,
        limit: usize,
    ) -> Result<Vec<Record>, StorageError>;

    /// Like [`Storage::read`], but each event as its stored bytes (the
    /// [`Record`] encoding, version byte first), so the stream sends exactly what is
    /// stored without decoding it; at most `max_bytes` of events, but always at least
    /// one event when one exists.
    async fn read_raw(
        &self,
        channel: &str,
        from: u64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StorageError>;

    /// The first retained offset whose event was received at or after `ms` (unix ms),
    /// or `head + 1` if none.
    async fn offset_at_time(&self, channel: &str, ms: u64) -> Result<u64, StorageError>;

    // --- consumer groups ---

    /// A group's committed cursor: the last acknowledged offset (synchronous: from memory).
    fn cursor(&self, channel: &str, group: &str) -> Result<Option<u64>, StorageError>;

    /// All groups of a channel with their cursors.
    async fn groups(&self, channel: &str) -> Result<Vec<(String, u64)>, StorageError>;

    /// Moves a group's cursor forward without waiting: the next group commit makes it
    /// durable. An error means the write queue is full or closed; the caller retries
    /// through [`Storage::reserve_cursor_write`].
    fn advance_cursor(&self, channel: &str, group: &str, offset: u64) -> Result<(), StorageError>;

    /// Sets a group's cursor durably; `force` allows moving it backwards (a reset).
    async fn set_cursor(
        &self,
        channel: &str,
        group: &str,
        offset: u64,
        force: bool,
    ) -> Result<(), StorageError>;

    /// Reserves a place for one cursor write, which [`CursorSlot::set`] then queues
    /// without waiting; so a caller can queue it under its own lock and thereby order it
    /// against other cursor writes (a reset against late acks).
    async fn reserve_cursor_write(&self) -> Result<Box<dyn CursorSlot>, StorageError>;

    // --- dead letters and redrive ---

    /// Records (or replaces) a dead letter durably.
    async fn add_dead_letter(
        &self,
        channel: &str,
        group: &str,
        entry: DeadLetter,
    ) -> Result<(), StorageError>;

    /// A group's dead letters in offset order.
    async fn dead_letters(
        &self,
        channel: &str,
        group: &str,
    ) -> Result<Vec<DeadLetter>, StorageError>;

    /// How many dead letters a group has.
    async fn dead_letter_count(&self, channel: &str, group: &str) -> Result<usize, StorageError>;

    /// One dead letter of a group, if recorded.
    async fn dead_letter(
        &self,
        channel: &str,
        group: &str,
        offset: u64,
    ) -> Result<Option<DeadLetter>, StorageError>;

    /// Marks dead letters for redelivery to their group, durably (an operator's
    /// redrive); offsets that are not dead letters are skipped. A mark lives until that
    /// delivery settles ([`Storage::finish_redrive`]).
    async fn request_redrive(
        &self,
        channel: &str,
        group: &str,
        offsets: Vec<u64>,
        at_ms: u64,
    ) -> Result<(), StorageError>;

    /// The offsets of a group's pending redrives, in order.
    async fn redrives(&self, channel: &str, group: &str) -> Result<Vec<u64>, StorageError>;

    /// A redriven delivery settled, durably: the mark goes, and the dead letter with it
    /// when `again` is `None` (acked) or is replaced by `again` (given up on again).
    async fn finish_redrive(
        &self,
        channel: &str,
        group: &str,
        offset: u64,
        again: Option<DeadLetter>,
    ) -> Result<(), StorageError>;

    // --- across relay nodes (see [`super::lease`]) ---

    /// One attempt to take the lease of (`channel`, `group`): `None` while another
    /// holder has it. A single-node backend always grants it.
    async fn try_lease(
        &self,
        channel: &str,
        group: &str,
    ) -> Result<Option<LeaseGrant>, StorageError>;

    /// Tells the other relay nodes on this storage about an operator's action (sent
    /// after the action is durable; a single-node backend has nobody to tell).
    async fn publish_control(&self, event: Control) -> Result<(), StorageError>;

    /// Operators' actions made through other relay nodes, as they arrive. A
    /// single-node backend's receiver is closed at once.
    fn control_events(&self) -> broadcast::Receiver<Control>;

    // --- per-channel settings ---

    /// A value the relay learned for `channel` at run time under `name` (Asana's
    /// `X-Hook-Secret`); `None` when none was stored.
    async fn channel_setting(
        &self,
        channel: &str,
        name: &str,
    ) -> Result<Option<Vec<u8>>, StorageError>;

    /// Stores `value` for (`channel`, `name`) durably before returning. With `replace`
    /// false the write happens only while no value is stored (atomically, so two racing
    /// writers cannot both win). Returns whether `value` was written.
    async fn put_channel_setting(
        &self,
        channel: &str,
        name: &str,
        value: Vec<u8>,
        replace: bool,
    ) -> Result<bool, StorageError>;

    // --- upkeep ---

    /// Forgets delivery ids older than their channel's window (`windows`: channel →
    /// window in ms; a channel missing from it keeps none). Returns how many went.
    async fn expire_dedup(
        &self,
        now_ms: u64,
        windows: HashMap<String, u64>,
    ) -> Result<usize, StorageError>;

    /// Deletes the events of `channel` outside `limits` at time `now_ms`, and dead
    /// letters that point at them; offsets keep counting (guarantee 2).
    async fn enforce_retention(
        &self,
        channel: &str,
        limits: Limits,
        now_ms: u64,
    ) -> Result<Pass, StorageError>;

    /// Counters for metrics.
    fn stats(&self) -> &StorageStats;

    /// Bytes the backend holds on this machine (sled: the data directory), if known.
    fn disk_bytes(&self) -> Option<u64>;

    /// Whether writes can succeed now, for readiness; `Err` says why not. It must
    /// really try (file modes mean nothing to root): sled writes, fsyncs and removes a
    /// probe file in its data directory; JetStream checks its connection. A backend
    /// that has failed (fail-stop) answers `Err` until restarted. Not cached: callers
    /// that may be called often (a scrape storm) cache the answer.
    async fn writable(&self) -> Result<(), StorageError>;
}
