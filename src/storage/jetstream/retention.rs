//! Retention and the time search, by each event's received-at (not the server's
//! storage time, which differs from it and is not what the relay's limits mean).
//!
//! The stream's own max_age/max_msgs/max_bytes are left unlimited: the relay's
//! maintenance pass calls [`enforce`] with each channel's limits, which purges below
//! the first offset to keep (a purge keeps the stream's last sequence, so offsets keep
//! counting across retention and restarts).

use std::sync::atomic::Ordering;

use super::shared::Shared;
use super::streams;
use crate::storage::error::StorageError;
use crate::storage::types::{Limits, Pass};

/// The first retained offset received at or after `ms`, or `head + 1`: a binary search,
/// as received-at never decreases within a channel.
pub async fn offset_at_time(shared: &Shared, channel: &str, ms: u64) -> Result<u64, StorageError> {
    let head = shared.heads.head(channel);
    let (mut lo, mut hi) = (shared.heads.earliest(channel), head + 1);
    let Some(stream) = shared.stream(channel).await? else {
        return Ok(hi);
    };
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match streams::record(&stream, mid).await? {
            Some(r) if r.received_at_ms >= ms => hi = mid,
            // Received earlier, or purged meanwhile: the answer is above.
            _ => lo = mid + 1,
        }
    }
    Ok(lo)
}

/// Purges the events of `channel` outside `limits` at `now_ms`.
pub async fn enforce(
    shared: &Shared,
    channel: &str,
    limits: Limits,
    now_ms: u64,
) -> Result<Pass, StorageError> {
    let head = shared.heads.head(channel);
    let earliest = shared.heads.earliest(channel);
    let mut keep_from = earliest;
    if let Some(max) = limits.max_events {
        keep_from = keep_from.max((head + 1).saturating_sub(max));
    }
    if let Some(age) = limits.max_age_ms {
        keep_from =
            keep_from.max(offset_at_time(shared, channel, now_ms.saturating_sub(age)).await?);
    }
    let Some(stream) = shared.stream(channel).await? else {
        return Ok(Pass {
            events: 0,
            earliest,
        });
    };
    if let Some(max_bytes) = limits.max_bytes {
        keep_from = keep_from.max(first_within_bytes(&stream, keep_from, head, max_bytes).await?);
    }
    let keep_from = keep_from.min(head + 1);
    if keep_from <= earliest {
        return Ok(Pass {
            events: 0,
            earliest,
        });
    }
    // A purge below a sequence is idempotent: several nodes enforcing the same limits
    // purge the same events once, and offsets never move (the last sequence stays).
    let events = streams::purge_below(&stream, keep_from).await?;
    shared.heads.set_first(channel, keep_from);
    super::firsts::raise(&shared.firsts, channel, keep_from).await?;
    shared
        .stats
        .retention_removed
        .fetch_add(events, Ordering::Relaxed);
    Ok(Pass {
        events,
        earliest: keep_from,
    })
}

/// The smallest offset such that events `offset..=head` take at most `max_bytes`.
async fn first_within_bytes(
    stream: &async_nats::jetstream::stream::Stream,
    from: u64,
    head: u64,
    max_bytes: u64,
) -> Result<u64, StorageError> {
    let mut total = 0u64;
    let mut offset = head;
    while offset >= from && offset > 0 {
        if let Some(bytes) = streams::get(stream, offset).await? {
            total += bytes.len() as u64;
            if total > max_bytes {
                return Ok(offset + 1);
            }
        }
        offset -= 1;
    }
    Ok(from)
}
