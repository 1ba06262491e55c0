//! Consumer groups' cursors in the `{prefix}_cursors` bucket, with an in-memory cache.
//!
//! One writer task applies cursor writes in queue order, so a reserved slot orders its
//! write against later `advance_cursor` calls exactly as the embedded backend does. A
//! drained batch folds into one write per key. Each write is a compare-and-set on the
//! key's revision: on a conflict (another node wrote) it rereads and retries, and a
//! non-forced write never stores a smaller offset than the one in the bucket.
//!
//! `cursor()` answers from the cache: every key as loaded at open, this node's
//! acknowledged writes, and a KV watch on the bucket that applies other nodes' writes
//! (by revision, so the cache never goes back). So it is exact for this node's own
//! writes and behind another node's by the watch's delivery delay (milliseconds while
//! connected; while disconnected, until the client reconnects).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::kv::{Store, UpdateErrorKind};
use tokio::sync::{mpsc, oneshot};

use super::connect::fail;
use super::kv;
use super::names::{cursor_key, untoken};
use crate::storage::api::{BoxFuture, CursorSlot};
use crate::storage::error::StorageError;

/// Depth of the cursor queue; `advance_cursor` fails (the caller retries) when full.
const QUEUE_DEPTH: usize = 16 * 1024;
/// How long a cursor move nobody waits on (an ack's) waits for more moves before it is
/// written. Each write is a replicated, synced KV put: at 400 acks/s on R3 they were
/// as many synced writes as the appends themselves, on the same disks, and they
/// lengthened the appends' tail. Folding 10 ms of moves into one write per key bounds
/// that to 100 writes/s per group; an ack's cursor is never waited on, so this only
/// widens by 10 ms the acks a crash can make the agent see again (at-least-once), as
/// the embedded backend's linger does.
const CURSOR_LINGER: Duration = Duration::from_millis(10);
/// Compare-and-set attempts before a write is answered as failed.
const CAS_ATTEMPTS: usize = 16;

type Reply = oneshot::Sender<Result<(), StorageError>>;

/// One queued write, or a marker that answers once everything before it is done.
pub enum CursorOp {
    /// Set `(channel, group)` to `offset`; backwards only when `force`.
    Set {
        channel: String,
        group: String,
        offset: u64,
        force: bool,
        reply: Option<Reply>,
    },
    /// Answers when every earlier write is durable.
    Sync(Reply),
}

/// (channel, group) → (offset, KV revision).
type Cache = Arc<Mutex<HashMap<(String, String), (u64, u64)>>>;

/// The cursor cache and the queue of its writer.
pub struct Cursors {
    cache: Cache,
    tx: mpsc::Sender<CursorOp>,
    watcher: tokio::task::JoinHandle<()>,
}

impl Drop for Cursors {
    fn drop(&mut self) {
        // The watch holds a consumer on the server: stop it with the handle.
        self.watcher.abort();
    }
}

impl Cursors {
    /// Loads every cursor and starts the writer.
    pub async fn open(kv: Store) -> Result<Cursors, StorageError> {
        let cache: Cache = Arc::default();
        for key in kv::keys_under(&kv, "").await? {
            let entry = kv
                .entry(key.clone())
                .await
                .map_err(|e| fail(format!("reading cursor {key}: {e}")))?;
            if let (Some(entry), Some(name)) = (entry, split(&key)) {
                if let Some(offset) = kv::decode::<u64>(&entry.value) {
                    lock(&cache).insert(name, (offset, entry.revision));
                }
            }
        }
        let updates = kv
            .watch_all()
            .await
            .map_err(|e| fail(format!("watching {}: {e}", kv.name)))?;
        let watcher = tokio::spawn(follow(updates, cache.clone()));
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        tokio::spawn(run(kv, cache.clone(), rx));
        Ok(Cursors { cache, tx, watcher })
    }

    /// The cached cursor.
    pub fn get(&self, channel: &str, group: &str) -> Option<u64> {
        lock(&self.cache)
            .get(&(channel.to_string(), group.to_string()))
            .map(|(o, _)| *o)
    }

    /// A channel's groups, from the cache.
    pub fn groups(&self, channel: &str) -> Vec<(String, u64)> {
        let mut out: Vec<_> = lock(&self.cache)
            .iter()
            .filter(|((c, _), _)| c == channel)
            .map(|((_, g), (o, _))| (g.clone(), *o))
            .collect();
        out.sort();
        out
    }

    /// Queues a forward move without waiting.
    pub fn advance(&self, channel: &str, group: &str, offset: u64) -> Result<(), StorageError> {
        self.tx
            .try_send(set(channel, group, offset, false, None))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => fail("cursor queue full".into()),
                mpsc::error::TrySendError::Closed(_) => StorageError::Closed,
            })
    }

    /// Writes a cursor and waits until it is durable.
    pub async fn set(
        &self,
        channel: &str,
        group: &str,
        offset: u64,
        force: bool,
    ) -> Result<(), StorageError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(set(channel, group, offset, force, Some(reply)))
            .await
            .map_err(|_| StorageError::Closed)?;
        rx.await.unwrap_or(Err(StorageError::Closed))
    }

    /// Waits until every write queued before is durable.
    pub async fn sync(&self) -> Result<(), StorageError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(CursorOp::Sync(reply))
            .await
            .map_err(|_| StorageError::Closed)?;
        rx.await.unwrap_or(Err(StorageError::Closed))
    }

    /// Reserves a place in the queue.
    pub async fn reserve(&self) -> Result<Box<dyn CursorSlot>, StorageError> {
        let permit = self
            .tx
            .clone()
            .reserve_owned()
            .await
            .map_err(|_| StorageError::Closed)?;
        Ok(Box::new(Slot { permit }))
    }
}

struct Slot {
    permit: mpsc::OwnedPermit<CursorOp>,
}

impl CursorSlot for Slot {
    fn set(
        self: Box<Self>,
        channel: &str,
        group: &str,
        offset: u64,
        force: bool,
    ) -> BoxFuture<'static, Result<(), StorageError>> {
        let (reply, rx) = oneshot::channel();
        self.permit
            .send(set(channel, group, offset, force, Some(reply)));
        Box::pin(async move { rx.await.unwrap_or(Err(StorageError::Closed)) })
    }
}

fn set(channel: &str, group: &str, offset: u64, force: bool, reply: Option<Reply>) -> CursorOp {
    CursorOp::Set {
        channel: channel.to_string(),
        group: group.to_string(),
        offset,
        force,
        reply,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn split(key: &str) -> Option<(String, String)> {
    let (c, g) = key.split_once('.')?;
    Some((untoken(c)?, untoken(g)?))
}

/// Applies every cursor write seen on the bucket whose revision is newer than cached.
async fn follow(mut updates: async_nats::jetstream::kv::Watch, cache: Cache) {
    use futures_util::StreamExt;
    while let Some(update) = updates.next().await {
        let Ok(entry) = update else { continue };
        let (Some(name), Some(offset)) = (split(&entry.key), kv::decode::<u64>(&entry.value))
        else {
            continue;
        };
        let mut cache = lock(&cache);
        let newer = cache
            .get(&name)
            .is_none_or(|(_, rev)| entry.revision > *rev);
        if newer {
            cache.insert(name, (offset, entry.revision));
        }
    }
}

/// The writer: drains a batch, folds it to one write per key, answers everyone.
async fn run(kv: Store, cache: Cache, mut rx: mpsc::Receiver<CursorOp>) {
    while let Some(first) = rx.recv().await {
        let mut ops = vec![first];
        if !waited_on(&ops[0]) {
            linger(&mut rx, &mut ops).await;
        }
        while let Ok(op) = rx.try_recv() {
            ops.push(op);
        }
        let mut folded: BTreeMap<(String, String), (u64, bool)> = BTreeMap::new();
        let mut replies = Vec::new();
        for op in ops {
            match op {
                CursorOp::Set {
                    channel,
                    group,
                    offset,
                    force,
                    reply,
                } => {
                    let slot = folded.entry((channel, group));
                    fold(slot, offset, force);
                    replies.extend(reply);
                }
                CursorOp::Sync(reply) => replies.push(reply),
            }
        }
        let mut result = Ok(());
        for ((channel, group), (offset, force)) in folded {
            if let Err(e) = write(&kv, &cache, &channel, &group, offset, force).await {
                tracing::warn!(channel, group, error = %e, "cursor write failed");
                result = Err(e);
            }
        }
        for reply in replies {
            let _ = reply.send(result.clone());
        }
    }
}

/// Whether someone waits on `op` (a reserved slot's write, or a sync).
fn waited_on(op: &CursorOp) -> bool {
    match op {
        CursorOp::Set { reply, .. } => reply.is_some(),
        CursorOp::Sync(_) => true,
    }
}

/// Collects ops for up to [`CURSOR_LINGER`], or until one that someone waits on.
async fn linger(rx: &mut mpsc::Receiver<CursorOp>, ops: &mut Vec<CursorOp>) {
    let deadline = tokio::time::Instant::now() + CURSOR_LINGER;
    while let Ok(Some(op)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        let waited = waited_on(&op);
        ops.push(op);
        if waited {
            return;
        }
    }
}

/// A later op on the same key: a force replaces, a forward move takes the larger.
fn fold(
    slot: std::collections::btree_map::Entry<'_, (String, String), (u64, bool)>,
    offset: u64,
    force: bool,
) {
    use std::collections::btree_map::Entry;
    match slot {
        Entry::Vacant(v) => {
            v.insert((offset, force));
        }
        Entry::Occupied(mut o) => {
            let (cur, forced) = *o.get();
            *o.get_mut() = if force {
                (offset, true)
            } else {
                (cur.max(offset), forced)
            };
        }
    }
}

/// Compare-and-set until the bucket holds `offset` (or more, unless `force`).
async fn write(
    kv: &Store,
    cache: &Cache,
    channel: &str,
    group: &str,
    offset: u64,
    force: bool,
) -> Result<(), StorageError> {
    let name = (channel.to_string(), group.to_string());
    let key = cursor_key(channel, group);
    for _ in 0..CAS_ATTEMPTS {
        let known = lock(cache).get(&name).copied();
        if !force && known.is_some_and(|(cur, _)| cur >= offset) {
            return Ok(());
        }
        let value = kv::encode(&offset).into();
        let written = match known {
            Some((_, rev)) => kv.update(&key, value, rev).await.map_err(|e| e.kind()),
            None => kv.create(&key, value).await.map_err(|e| match e.kind() {
                async_nats::jetstream::kv::CreateErrorKind::AlreadyExists => {
                    UpdateErrorKind::WrongLastRevision
                }
                _ => UpdateErrorKind::Other,
            }),
        };
        match written {
            Ok(rev) => {
                lock(cache).insert(name, (offset, rev));
                return Ok(());
            }
            Err(UpdateErrorKind::WrongLastRevision) => reread(kv, cache, &key, &name).await?,
            Err(kind) => return Err(fail(format!("writing cursor {key}: {kind}"))),
        }
    }
    Err(fail(format!("cursor {key}: too many concurrent writers")))
}

async fn reread(
    kv: &Store,
    cache: &Cache,
    key: &str,
    name: &(String, String),
) -> Result<(), StorageError> {
    let entry = kv
        .entry(key.to_string())
        .await
        .map_err(|e| fail(format!("reading cursor {key}: {e}")))?;
    let mut cache = lock(cache);
    match entry.and_then(|e| kv::decode::<u64>(&e.value).map(|o| (o, e.revision))) {
        Some(v) => cache.insert(name.clone(), v),
        None => cache.remove(name),
    };
    Ok(())
}
