//! One event for the console's detail page:
//!
//! ```text
//! GET /v1/channels/{channel}/events/{offset}        the event (tail's JSON shape) + scheme + delivery state per group
//! GET /v1/channels/{channel}/events/{offset}/body   the body's stored bytes, as a download
//! ```
//!
//! The delivery state of a group is `dead_lettered` (with reason, attempts and last
//! status) when the group holds a dead letter for the offset, else `acked` when its
//! cursor is at or past the offset, else `pending`.

use serde::Serialize;

use crate::common::event::Record;
use crate::relay::api_error::{json_ok, ApiError};
use crate::relay::auth::{authorize, Credentials};
use crate::relay::state::Relay;
use crate::storage::StorageError;

/// Where one event stands in one group.
#[derive(Debug, Serialize)]
struct Delivery {
    group: String,
    /// `pending`, `acked` or `dead_lettered`.
    state: &'static str,
    cursor: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attempts: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_status: Option<u16>,
    /// A redrive (or redelivery) of this event to the group is queued.
    redrive_pending: bool,
}

/// Logs a storage failure and answers 503.
pub fn unavailable(e: StorageError) -> ApiError {
    tracing::error!(error = %e, "console: storage read failed");
    ApiError::unavailable()
}

/// The stored event at `offset`, after the admin check; 404 `not_found` when it is not
/// retained (or never existed).
pub async fn load(
    relay: &Relay,
    creds: &Credentials,
    channel: &str,
    offset: u64,
) -> Result<Record, ApiError> {
    authorize(relay, creds)?;
    if relay.config.channel(channel).is_none() {
        return Err(ApiError::unknown_channel(channel));
    }
    relay
        .log
        .get(channel, offset)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| {
            ApiError::new(
                http::StatusCode::NOT_FOUND,
                "not_found",
                format!("event {offset} of channel {channel:?} is not retained"),
            )
        })
}

/// `GET /v1/channels/{channel}/events/{offset}`.
pub async fn detail(
    relay: &Relay,
    creds: &Credentials,
    channel: &str,
    offset: u64,
) -> Result<warp::reply::Response, ApiError> {
    let record = load(relay, creds, channel, offset).await?;
    let deliveries = deliveries(relay, channel, offset).await?;
    Ok(json_ok(&serde_json::json!({
        "event": record.to_json(),
        "size": record.body.len(),
        "scheme": record.scheme,
        "peer": record.peer,
        "received_at_ms": record.received_at_ms,
        "deliveries": deliveries,
    })))
}

async fn deliveries(relay: &Relay, channel: &str, offset: u64) -> Result<Vec<Delivery>, ApiError> {
    let log = &relay.log;
    let mut out = Vec::new();
    for (group, cursor) in log.groups(channel).await.map_err(unavailable)? {
        let letter = log
            .dead_letter(channel, &group, offset)
            .await
            .map_err(unavailable)?;
        let pending = log.redrives(channel, &group).await.map_err(unavailable)?;
        let state = match (&letter, offset <= cursor) {
            (Some(_), _) => "dead_lettered",
            (None, true) => "acked",
            (None, false) => "pending",
        };
        out.push(Delivery {
            state,
            cursor,
            redrive_pending: pending.contains(&offset),
            reason: letter.as_ref().map(|d| d.reason.clone()),
            attempts: letter.as_ref().map(|d| d.attempts),
            last_status: letter.and_then(|d| d.last_status),
            group,
        });
    }
    Ok(out)
}

/// `GET /v1/channels/{channel}/events/{offset}/body`: the exact stored bytes.
pub async fn body(
    relay: &Relay,
    creds: &Credentials,
    channel: &str,
    offset: u64,
) -> Result<warp::reply::Response, ApiError> {
    let record = load(relay, creds, channel, offset).await?;
    let mut resp = http::Response::new(record.body.into());
    let h = resp.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/octet-stream"),
    );
    // The channel name is [A-Za-z0-9_-]: safe inside the quoted file name.
    let disposition = format!("attachment; filename=\"{channel}-{offset}.bin\"");
    if let Ok(v) = http::HeaderValue::from_str(&disposition) {
        h.insert(http::header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        http::HeaderValue::from_static("nosniff"),
    );
    Ok(resp)
}
