//! Group leases in the `{prefix}_leases` bucket: one active member per (channel, group)
//! across every relay node on the prefix.
//!
//! # Why a KV lease and not pinned-client priority groups
//!
//! JetStream 2.11's pinned-client priority groups pin a *pull consumer* to one client.
//! Our delivery does not go through a consumer: a subscription reads the stream
//! directly by sequence (the sequence is the offset), keeps its own window and writes
//! the cursor itself. Pinning would mean a consumer per group used only as a token,
//! whose pin follows pull requests rather than our subscriptions, and a server floor of
//! 2.11. A KV key with a time to live is the token itself, and the
//! holder knows exactly when it stops being the holder.
//!
//! # The lease
//!
//! The bucket's `max_age` is [`LEASE_TTL_MS`], so every key vanishes that long after
//! its last write unless renewed. *Acquire* is `create` (fails while the key exists),
//! *renew* is `update` with the revision the holder last wrote (fails once the key
//! expired or another node created it), *release* is `delete` with that revision (so a
//! node can only delete its own lease). A node that is SIGKILLed stops renewing; its key
//! expires and a standby's next `create` (every [`crate::storage::LEASE_RETRY_MS`])
//! succeeds: takeover within about TTL + retry.
//!
//! # Stopping before anyone else can start
//!
//! The holder renews every [`RENEW_EVERY_MS`] and counts its lease as lost once no renew
//! *sent* in the last [`STOP_AFTER_MS`] was acknowledged. The server measures the TTL
//! from when it stored the write, which is after it was sent, so the key lives at least
//! `LEASE_TTL_MS - STOP_AFTER_MS` (2 s) after the holder stopped delivering: the old
//! holder is silent well before a new one can exist. (This assumes the servers' clocks
//! agree to well under that margin, as the TTL is measured by the stream leader.)

use std::time::Duration;

use async_nats::jetstream::kv::{Config, CreateErrorKind, Store, UpdateErrorKind};
use async_nats::jetstream::Context;
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use super::connect::fail;
use super::kv;
use super::names::{cursor_key, Names, LEASES};
use crate::storage::error::StorageError;
use crate::storage::lease::{Lease, LeaseGrant};

/// How long a lease lives after its holder's last renew.
pub const LEASE_TTL_MS: u64 = 4_000;
/// How often the holder renews.
pub const RENEW_EVERY_MS: u64 = 1_000;
/// How long after the last acknowledged renew (from when it was sent) the holder stops.
pub const STOP_AFTER_MS: u64 = 2_000;
/// Pause before retrying a renew that failed for a passing reason (an election).
const RENEW_RETRY_MS: u64 = 100;

/// The lease bucket and what a new holder reads.
pub struct Leases {
    kv: Store,
    cursors: Store,
    /// This node's id, stored as each lease's value (who holds it, for people).
    node: String,
}

impl Leases {
    /// Creates or updates the bucket with `replicas` copies.
    pub async fn open(
        js: &Context,
        names: &Names,
        replicas: usize,
        cursors: Store,
        node: String,
    ) -> Result<Leases, StorageError> {
        let name = names.bucket(LEASES);
        let config = Config {
            bucket: name.clone(),
            history: 1,
            max_age: Duration::from_millis(LEASE_TTL_MS),
            num_replicas: replicas,
            storage: async_nats::jetstream::stream::StorageType::File,
            ..Default::default()
        };
        let kv = js.create_or_update_key_value(config).await.map_err(|e| {
            fail(format!(
                "cannot create key-value bucket {name} with {replicas} replica(s): {e}"
            ))
        })?;
        Ok(Leases { kv, cursors, node })
    }

    /// One attempt to take the lease of (`channel`, `group`).
    pub async fn try_take(
        &self,
        channel: &str,
        group: &str,
    ) -> Result<Option<LeaseGrant>, StorageError> {
        let key = cursor_key(channel, group);
        let sent = Instant::now();
        let revision = match self.kv.create(&key, self.node.clone().into()).await {
            Ok(r) => r,
            Err(e) if e.kind() == CreateErrorKind::AlreadyExists => return Ok(None),
            Err(e) => return Err(fail(format!("taking the lease {key}: {e}"))),
        };
        let lease = NatsLease::start(
            self.kv.clone(),
            key.clone(),
            self.node.clone(),
            revision,
            sent,
        );
        // Read after taking it: whatever the last holder wrote before it stopped is in.
        let cursor = kv::get(&self.cursors, &key)
            .await?
            .and_then(|b| kv::decode::<u64>(&b));
        Ok(Some(LeaseGrant {
            lease: Box::new(lease),
            cursor,
        }))
    }
}

/// A held lease: its renewer runs until the lease is dropped (then it releases it).
struct NatsLease {
    lost: watch::Sender<bool>,
    release: Option<oneshot::Sender<()>>,
}

impl NatsLease {
    fn start(kv: Store, key: String, node: String, revision: u64, sent: Instant) -> NatsLease {
        let lost = watch::Sender::new(false);
        let (release, released) = oneshot::channel();
        let renewer = Renewer {
            kv,
            key,
            node,
            revision,
            last_ok: sent,
            lost: lost.clone(),
        };
        tokio::spawn(renewer.run(released));
        NatsLease {
            lost,
            release: Some(release),
        }
    }
}

impl Lease for NatsLease {
    fn lost(&self) -> watch::Receiver<bool> {
        self.lost.subscribe()
    }
}

impl Drop for NatsLease {
    fn drop(&mut self) {
        if let Some(r) = self.release.take() {
            // The renewer releases after its write in flight, if any, so with the
            // revision that is really stored; it is gone already if the lease was lost.
            let _ = r.send(());
        }
    }
}

struct Renewer {
    kv: Store,
    key: String,
    node: String,
    revision: u64,
    /// When the last acknowledged write (create or renew) was sent.
    last_ok: Instant,
    lost: watch::Sender<bool>,
}

impl Renewer {
    async fn run(mut self, mut released: oneshot::Receiver<()>) {
        let reason = loop {
            let renew_at = self.last_ok + Duration::from_millis(RENEW_EVERY_MS);
            tokio::select! {
                // A drop of the handle (Err) means release too.
                _ = &mut released => {
                    self.release().await;
                    return;
                }
                _ = tokio::time::sleep_until(renew_at) => {}
            }
            match self.renew().await {
                Ok(()) => {}
                Err(reason) => break reason,
            }
        };
        tracing::warn!(lease = %self.key, reason, "storage: group lease lost; delivery stops");
        self.lost.send_replace(true);
    }

    /// Renews until acknowledged, the lease is taken, or the stop deadline passes.
    async fn renew(&mut self) -> Result<(), &'static str> {
        let deadline = self.last_ok + Duration::from_millis(STOP_AFTER_MS);
        loop {
            let sent = Instant::now();
            let write = self
                .kv
                .update(&self.key, self.node.clone().into(), self.revision);
            match tokio::time::timeout_at(deadline, write).await {
                Ok(Ok(revision)) => {
                    self.revision = revision;
                    self.last_ok = sent;
                    return Ok(());
                }
                Ok(Err(e)) if e.kind() == UpdateErrorKind::WrongLastRevision => {
                    return Err("expired or taken by another node");
                }
                Ok(Err(e)) => {
                    tracing::debug!(lease = %self.key, error = %e, "storage: lease renew failed; retrying");
                    let pause = Instant::now() + Duration::from_millis(RENEW_RETRY_MS);
                    if pause >= deadline {
                        return Err("no renew acknowledged in time");
                    }
                    tokio::time::sleep_until(pause).await;
                }
                Err(_) => return Err("no renew acknowledged in time"),
            }
        }
    }

    async fn release(&self) {
        if let Err(e) = self
            .kv
            .delete_expect_revision(&self.key, Some(self.revision))
            .await
        {
            // It expires by itself within the TTL.
            tracing::debug!(lease = %self.key, error = %e, "storage: lease release failed");
        }
    }
}
