//! The admin API for consumer groups: list them, reset their cursors, list and redrive
//! their dead letters.
//!
//! ```text
//! GET  /v1/channels/{channel}/groups                                 groups, cursors, lag
//! POST /v1/channels/{channel}/groups/{group}/reset                   {"offset": N} | {"time": "RFC 3339"}
//! GET  /v1/channels/{channel}/groups/{group}/dead-letters            the group's dead letters
//! POST /v1/channels/{channel}/groups/{group}/dead-letters/redrive    [{"offsets": [N, ...]}]
//! ```
//!
//! These routes change what agents receive, so they go through the same places the
//! stream does: a reset through the [`crate::relay::groups::Hub`] (which restarts a running
//! group at once and fences off its late acks), a redrive through durable marks in the
//! log plus a nudge to the group's active member. Authentication and errors are those
//! of [`crate::relay::admin`]: the admin token, 404 when the admin API is disabled, and
//! `{"error","message"}` bodies.

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Buf;
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use warp::Filter;

use crate::common::protocol::codes;
use crate::relay::api_error::{json_ok, ApiError};
use crate::relay::auth::authorize;
use crate::relay::auth::Credentials;
use crate::relay::state::Relay;
use crate::storage::{DeadLetter, StorageError};

/// Largest request body these routes read; their bodies are a few numbers.
pub const MAX_ADMIN_BODY_BYTES: usize = 64 * 1024;

/// One group in `GET .../groups`.
#[derive(Debug, Serialize)]
struct GroupView {
    name: String,
    /// Last acknowledged offset (0: none yet).
    cursor: u64,
    /// Events after the cursor up to the head.
    lag: u64,
    dead_letters: usize,
    /// Whether an agent is receiving this group's events on this relay now.
    active: bool,
}

/// One dead letter in `GET .../dead-letters`.
#[derive(Debug, Serialize)]
struct DeadLetterView {
    offset: u64,
    reason: String,
    attempts: u32,
    last_status: Option<u16>,
    /// When it was (last) given up on, RFC 3339 UTC.
    at: String,
    at_ms: u64,
    /// A redrive was asked and has not settled yet.
    redrive_pending: bool,
}

impl DeadLetterView {
    fn new(d: DeadLetter, pending: &BTreeSet<u64>) -> DeadLetterView {
        DeadLetterView {
            offset: d.offset,
            redrive_pending: pending.contains(&d.offset),
            reason: d.reason,
            attempts: d.attempts,
            last_status: d.last_status,
            at: crate::common::time::format_time_ms(d.at_ms),
            at_ms: d.at_ms,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RedriveBody {
    offsets: Option<Vec<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetBody {
    offset: Option<u64>,
    time: Option<String>,
}

/// The group routes, for [`crate::relay::admin::routes`].
pub fn routes(
    relay: Arc<Relay>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    let auth = crate::relay::auth::credentials(relay.clone());
    let list = {
        let relay = relay.clone();
        warp::path!("v1" / "channels" / String / "groups")
            .and(warp::get())
            .and(auth.clone())
            .then(move |channel: String, auth: Credentials| {
                let relay = relay.clone();
                async move { reply(groups(&relay, &channel, &auth).await) }
            })
    };
    let dead_letters = {
        let relay = relay.clone();
        warp::path!("v1" / "channels" / String / "groups" / String / "dead-letters")
            .and(warp::get())
            .and(auth.clone())
            .then(move |channel: String, group: String, auth: Credentials| {
                let relay = relay.clone();
                async move { reply(dead_letters(&relay, &channel, &group, &auth).await) }
            })
    };
    let redrive = {
        let relay = relay.clone();
        warp::path!("v1" / "channels" / String / "groups" / String / "dead-letters" / "redrive")
            .and(warp::post())
            .and(auth.clone())
            .and(warp::body::stream())
            .then(
                move |channel: String, group: String, auth: Credentials, body| {
                    let relay = relay.clone();
                    async move { reply(redrive(&relay, &channel, &group, &auth, body).await) }
                },
            )
    };
    let reset = warp::path!("v1" / "channels" / String / "groups" / String / "reset")
        .and(warp::post())
        .and(auth.clone())
        .and(warp::body::stream())
        .then(
            move |channel: String, group: String, auth: Credentials, body| {
                let relay = relay.clone();
                async move { reply(reset(&relay, &channel, &group, &auth, body).await) }
            },
        );
    list.or(dead_letters)
        .unify()
        .or(redrive)
        .unify()
        .or(reset)
        .unify()
}

fn reply(r: Result<warp::reply::Response, ApiError>) -> warp::reply::Response {
    r.unwrap_or_else(warp::Reply::into_response)
}

fn storage(e: StorageError) -> ApiError {
    tracing::error!(error = %e, "admin: log access failed");
    ApiError::new(
        http::StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "storage failure: nothing was changed; retry later",
    )
}

/// Auth, then the channel and group names.
fn check(
    relay: &Relay,
    channel: &str,
    group: Option<&str>,
    auth: &Credentials,
) -> Result<(), ApiError> {
    authorize(relay, auth)?;
    if relay.config.channel(channel).is_none() {
        return Err(ApiError::unknown_channel(channel));
    }
    if let Some(g) = group {
        if !crate::common::config::valid_channel_name(g) {
            return Err(ApiError::bad_request(
                "a group name is 1 to 64 characters of A-Z, a-z, 0-9, '_' and '-'",
            ));
        }
    }
    Ok(())
}

async fn groups(
    relay: &Relay,
    channel: &str,
    auth: &Credentials,
) -> Result<warp::reply::Response, ApiError> {
    check(relay, channel, None, auth)?;
    let head = relay.log.head(channel);
    let active: BTreeSet<String> = relay.hub.active_groups(channel).into_iter().collect();
    let mut cursors: Vec<(String, u64)> = relay.log.groups(channel).await.map_err(storage)?;
    // A group that is running but has acked nothing yet has no cursor on disk.
    for name in &active {
        if !cursors.iter().any(|(g, _)| g == name) {
            cursors.push((name.clone(), 0));
        }
    }
    cursors.sort();
    let mut out = Vec::with_capacity(cursors.len());
    for (name, cursor) in cursors {
        out.push(GroupView {
            dead_letters: relay
                .log
                .dead_letter_count(channel, &name)
                .await
                .map_err(storage)?,
            active: active.contains(&name),
            lag: head.saturating_sub(cursor),
            cursor,
            name,
        });
    }
    Ok(json_ok(&serde_json::json!({
        "channel": channel,
        "head": head,
        "groups": out,
    })))
}

async fn dead_letters(
    relay: &Relay,
    channel: &str,
    group: &str,
    auth: &Credentials,
) -> Result<warp::reply::Response, ApiError> {
    check(relay, channel, Some(group), auth)?;
    let pending: BTreeSet<u64> = relay
        .log
        .redrives(channel, group)
        .await
        .map_err(storage)?
        .into_iter()
        .collect();
    let letters: Vec<DeadLetterView> = relay
        .log
        .dead_letters(channel, group)
        .await
        .map_err(storage)?
        .into_iter()
        .map(|d| DeadLetterView::new(d, &pending))
        .collect();
    Ok(json_ok(&serde_json::json!({
        "channel": channel,
        "group": group,
        "dead_letters": letters,
    })))
}

async fn redrive<S, B>(
    relay: &Relay,
    channel: &str,
    group: &str,
    auth: &Credentials,
    body: S,
) -> Result<warp::reply::Response, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    check(relay, channel, Some(group), auth)?;
    let body = crate::relay::body::read_limited(body, MAX_ADMIN_BODY_BYTES).await?;
    let wanted = redrive_request(&body)?;
    let letters: BTreeSet<u64> = relay
        .log
        .dead_letters(channel, group)
        .await
        .map_err(storage)?
        .into_iter()
        .map(|d| d.offset)
        .collect();
    let offsets = redrive_offsets(wanted, letters, group)?;
    if !offsets.is_empty() {
        relay
            .log
            .request_redrive(
                channel,
                group,
                offsets.clone(),
                crate::common::time::now_unix_ms(),
            )
            .await
            .map_err(storage)?;
        relay.hub.redriven(&relay.log, channel, group).await;
        tracing::info!(
            channel,
            group,
            count = offsets.len(),
            "admin: dead letters redriven"
        );
    }
    let active = relay.hub.active_groups(channel).iter().any(|g| g == group);
    Ok(json_ok(&serde_json::json!({
        "channel": channel,
        "group": group,
        "redriven": offsets,
        // Without a connected agent the redrive waits, durably, for the next one.
        "active": active,
    })))
}

/// The offsets a redrive body names; `None` (an empty body) means all.
fn redrive_request(body: &[u8]) -> Result<Option<Vec<u64>>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let parsed: RedriveBody = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "expected {{\"offsets\": [N, ...]}} (or no body for all): {e}"
        ))
    })?;
    Ok(parsed.offsets)
}

/// The offsets to redrive, sorted and unique: all dead letters, or the named ones —
/// each of which must be a dead letter of the group, else nothing is redriven.
fn redrive_offsets(
    wanted: Option<Vec<u64>>,
    letters: BTreeSet<u64>,
    group: &str,
) -> Result<Vec<u64>, ApiError> {
    let Some(list) = wanted else {
        return Ok(letters.into_iter().collect());
    };
    if list.is_empty() {
        return Err(ApiError::bad_request(
            "offsets is empty: name dead-letter offsets, or send no body to redrive all",
        ));
    }
    let missing: Vec<String> = list
        .iter()
        .filter(|o| !letters.contains(o))
        .map(u64::to_string)
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::bad_request(format!(
            "not dead letters of group {group:?}: {}; nothing was redriven",
            missing.join(", ")
        )));
    }
    Ok(list
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect())
}

async fn reset<S, B>(
    relay: &Relay,
    channel: &str,
    group: &str,
    auth: &Credentials,
    body: S,
) -> Result<warp::reply::Response, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    check(relay, channel, Some(group), auth)?;
    let body = crate::relay::body::read_limited(body, MAX_ADMIN_BODY_BYTES).await?;
    let usage = "expected {\"offset\": N} or {\"time\": \"RFC 3339\"}";
    let parsed: ResetBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("{usage}: {e}")))?;
    let log = &relay.log;
    let head = log.head(channel);
    let earliest = log.earliest(channel).map_err(storage)?;
    let next = match (parsed.offset, parsed.time) {
        (Some(n), None) => check_offset(n, earliest, head)?,
        (None, Some(t)) => {
            let ms = crate::common::time::parse_time_ms(&t)
                .map_err(|e| ApiError::bad_request(format!("time {t:?}: {e}")))?;
            log.offset_at_time(channel, ms).await.map_err(storage)?
        }
        _ => {
            return Err(ApiError::bad_request(format!(
                "{usage}, exactly one of them"
            )))
        }
    };
    let previous = log.cursor(channel, group).map_err(storage)?;
    relay
        .hub
        .reset(log, channel, group, next)
        .await
        .map_err(storage)?;
    tracing::info!(channel, group, next, previous, "admin: group reset");
    Ok(json_ok(&serde_json::json!({
        "channel": channel,
        "group": group,
        "next": next,
        "cursor": next.saturating_sub(1),
        "previous_cursor": previous,
    })))
}

/// `n` as the next offset of a group: a retained offset or head + 1.
fn check_offset(n: u64, earliest: u64, head: u64) -> Result<u64, ApiError> {
    let range = format!("available offsets are {earliest}..={head} (earliest {earliest}, latest {head}); head + 1 = {} means only new events", head + 1);
    if n < earliest {
        return Err(ApiError::new(
            http::StatusCode::BAD_REQUEST,
            codes::OFFSET_COMPACTED,
            format!("offset {n} is no longer retained; {range}"),
        ));
    }
    if n > head + 1 {
        return Err(ApiError::new(
            http::StatusCode::BAD_REQUEST,
            codes::OFFSET_OUT_OF_RANGE,
            format!("offset {n} is beyond the next offset {}; {range}", head + 1),
        ));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_offsets_are_checked_against_the_retained_range() {
        assert_eq!(check_offset(5, 5, 10), Ok(5));
        assert_eq!(check_offset(11, 5, 10), Ok(11));
        let old = check_offset(4, 5, 10).unwrap_err();
        assert_eq!(
            (old.status.as_u16(), old.code),
            (400, codes::OFFSET_COMPACTED)
        );
        assert!(
            old.message.contains("earliest 5, latest 10"),
            "{}",
            old.message
        );
        let far = check_offset(12, 5, 10).unwrap_err();
        assert_eq!(far.code, codes::OFFSET_OUT_OF_RANGE);
    }
}
