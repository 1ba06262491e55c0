//! Following each channel's stream, so that appends made by other relay nodes move
//! this node's heads and wake its subscriptions, without polling.
//!
//! One ordered push consumer per channel, headers only, from the first sequence this
//! node does not know yet (`ByStartSequence(head + 1)`, so nothing between the stream
//! info and the consumer's creation is missed). JetStream delivers a message to a
//! consumer only once it is stored (on a replicated stream, once the quorum committed
//! it), so the head never moves past what JetStream acknowledged. A core subscription
//! to the stream's subject was not chosen: it sees a publish before the stream has
//! stored it, and even one the stream refuses (a wrong expected sequence).
//!
//! The consumer is ephemeral and held in memory by the server (R1): it costs one per
//! channel per node, and it recreates itself after a reconnect or a missed heartbeat
//! (the async-nats ordered consumer does that), resuming after the last sequence seen.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{push, DeliverPolicy};
use futures_util::StreamExt;

use super::connect::fail;
use super::shared::Shared;
use crate::storage::error::StorageError;

/// Wait before following again after the consumer could not be made or ended
/// (the server was unreachable): doubles from the first to the last.
const RETRY_FIRST_MS: u64 = 100;
const RETRY_MAX_MS: u64 = 5_000;

/// Starts following `channel` unless this node already does.
pub fn start(shared: &Arc<Shared>, channel: &str) {
    if shared.closed.load(Ordering::Acquire) {
        return;
    }
    let mut followers = shared.followers.lock().unwrap_or_else(|p| p.into_inner());
    if followers.contains_key(channel) {
        return;
    }
    let task = shared
        .runtime
        .spawn(run(shared.clone(), channel.to_string()));
    followers.insert(channel.to_string(), task.abort_handle());
}

async fn run(shared: Arc<Shared>, channel: String) {
    let mut retry_ms = RETRY_FIRST_MS;
    while !shared.closed.load(Ordering::Acquire) {
        match follow(&shared, &channel).await {
            Ok(()) => retry_ms = RETRY_FIRST_MS,
            Err(e) => tracing::debug!(channel, error = %e, "following the stream failed"),
        }
        tokio::time::sleep(Duration::from_millis(retry_ms)).await;
        retry_ms = (retry_ms * 2).min(RETRY_MAX_MS);
    }
}

/// Loads the stream's state, then moves the head with every stored message.
async fn follow(shared: &Shared, channel: &str) -> Result<(), StorageError> {
    // Found, never created or updated here: a follower does not know the channel's
    // dedup window, and an update from it would reset the stream's. The relay creates
    // its channels' streams at start (`prepare`); until one exists, retry.
    let mut stream = shared
        .stream(channel)
        .await?
        .ok_or_else(|| fail(format!("no stream for {channel} yet")))?;
    let state = stream
        .info()
        .await
        .map_err(|e| fail(format!("stream info of {channel}: {e}")))?
        .state
        .clone();
    shared
        .heads
        .load(channel, state.last_sequence, state.first_sequence);
    shared.remember(channel, stream.clone());
    let start = shared.heads.head(channel) + 1;
    let consumer = stream
        .create_consumer(push::OrderedConfig {
            deliver_subject: shared.js.client().new_inbox(),
            description: Some("hookrelay head follower".to_string()),
            filter_subject: shared.names.subject(channel),
            headers_only: true,
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: start,
            },
            ..Default::default()
        })
        .await
        .map_err(|e| fail(format!("following {channel}: {e}")))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| fail(format!("following {channel}: {e}")))?;
    while let Some(message) = messages.next().await {
        match message {
            Ok(m) => match m.info() {
                Ok(info) => {
                    let ms = m
                        .headers
                        .as_ref()
                        .and_then(|h| h.get(super::names::RECEIVED_AT_HEADER))
                        .and_then(|v| v.as_str().parse().ok())
                        .unwrap_or(0);
                    shared.heads.seen(channel, info.stream_sequence, ms)
                }
                Err(e) => tracing::debug!(channel, error = %e, "follower message without info"),
            },
            // The ordered consumer recreates itself after these; keep reading.
            Err(e) => tracing::debug!(channel, error = %e, "follower interrupted"),
        }
    }
    Ok(())
}
