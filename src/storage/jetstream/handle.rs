//! The backend's handle and its open: connect, check, create or update the buckets,
//! and load what the synchronous trait methods answer from.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::Client;
use futures_util::future::join_all;
use tokio::sync::mpsc;

use super::connect::{connect, fail};
use super::control::ControlBus;
use super::cursors::Cursors;
use super::dedup::DedupStore;
use super::heads::Heads;
use super::kv::bucket;
use super::lease::Leases;
use super::letters::Letters;
use super::names::{Names, CURSORS, DEAD_LETTERS, DEDUP, FIRSTS, REDRIVES, SETTINGS};
use super::settings::Settings;
use super::shared::Shared;
use super::streams;
use super::writer::{self, AppendOp};
use crate::common::config::{valid_stream_prefix, JetStreamConfig, MAX_REPLICAS};
use crate::storage::error::StorageError;
use crate::storage::types::StorageStats;

/// The JetStream backend; see the module doc for the design.
pub struct JetStreamStorage {
    pub(super) shared: Arc<Shared>,
    pub(super) cursors: Cursors,
    pub(super) letters: Letters,
    pub(super) settings: Settings,
    pub(super) writers: Mutex<HashMap<String, mpsc::Sender<AppendOp>>>,
    pub(super) client: Client,
    pub(super) leases: Leases,
    pub(super) control: ControlBus,
}

impl JetStreamStorage {
    /// Connects and prepares the buckets; refuses a server without JetStream, older
    /// than [`super::MIN_SERVER_VERSION`], or unable to hold `replicas` copies.
    pub async fn open(cfg: &JetStreamConfig) -> Result<JetStreamStorage, StorageError> {
        if !valid_stream_prefix(&cfg.stream_prefix) {
            return Err(fail(format!("bad stream prefix {:?}", cfg.stream_prefix)));
        }
        if !(1..=MAX_REPLICAS).contains(&cfg.replicas) {
            return Err(fail(format!("replicas must be 1..={MAX_REPLICAS}")));
        }
        let (client, js) = connect(cfg).await?;
        let names = Names::new(&cfg.stream_prefix);
        let r = cfg.replicas;
        let cursors_kv = bucket(&js, &names.bucket(CURSORS), r).await?;
        let cursors = Cursors::open(cursors_kv.clone()).await?;
        // Random per process: a restarted node is a new holder, never its old self.
        let node = format!("{:016x}", rand::random::<u64>());
        let leases = Leases::open(&js, &names, r, cursors_kv, node.clone()).await?;
        let control = ControlBus::open(client.clone(), &names, node).await?;
        let letters = Letters::new(
            bucket(&js, &names.bucket(DEAD_LETTERS), r).await?,
            bucket(&js, &names.bucket(REDRIVES), r).await?,
        );
        let settings = Settings::new(bucket(&js, &names.bucket(SETTINGS), r).await?);
        let dedup = DedupStore::new(bucket(&js, &names.bucket(DEDUP), r).await?);
        let firsts = bucket(&js, &names.bucket(FIRSTS), r).await?;
        let heads = Heads::default();
        for (channel, last, first) in streams::list(&js, &names).await? {
            heads.load(&channel, last, first);
        }
        let shared = Arc::new(Shared {
            js,
            names,
            replicas: r,
            heads,
            recent: Default::default(),
            dedup,
            firsts,
            stats: StorageStats::default(),
            closed: AtomicBool::new(false),
            streams: Mutex::default(),
            runtime: tokio::runtime::Handle::current(),
            followers: Mutex::default(),
            windows: Mutex::default(),
        });
        super::firsts::watch(&shared).await?;
        for channel in shared.heads.channels() {
            super::follow::start(&shared, &channel);
        }
        Ok(JetStreamStorage {
            shared,
            cursors,
            letters,
            settings,
            writers: Mutex::default(),
            client,
            leases,
            control,
        })
    }

    /// Creates or updates the stream of each of `channels` (name, dedup window), all
    /// at once, and follows it. Done at start, so that a cluster that cannot hold the
    /// replicas asked for stops the relay with a message, and so that no webhook waits
    /// for a stream to be created: on a cluster that has just elected its leader,
    /// creating an R3 stream was measured at about 10 s.
    pub async fn prepare(&self, channels: &[(String, Duration)]) -> Result<(), StorageError> {
        {
            let mut windows = self
                .shared
                .windows
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            windows.extend(channels.iter().cloned());
        }
        let made = join_all(channels.iter().map(|(c, _)| self.shared.ensure(c))).await;
        for ((channel, _), stream) in channels.iter().zip(made) {
            let stream = stream?;
            self.shared.remember(channel, stream);
            self.follow(channel);
        }
        Ok(())
    }

    /// Follows `channel`'s stream (every node's appends) from now on, if not yet.
    pub(super) fn follow(&self, channel: &str) {
        super::follow::start(&self.shared, channel);
    }

    /// The writer queue of `channel`, started on first use.
    pub(super) fn writer(&self, channel: &str) -> mpsc::Sender<AppendOp> {
        let mut writers = self.writers.lock().unwrap_or_else(|p| p.into_inner());
        writers
            .entry(channel.to_string())
            .or_insert_with(|| writer::spawn(self.shared.clone(), channel.to_string()))
            .clone()
    }
}

impl Drop for JetStreamStorage {
    fn drop(&mut self) {
        // Each follower holds a consumer on the server: stop them with the handle.
        self.shared.stop_followers();
    }
}
