//! The console's actions that the admin API did not have yet:
//!
//! ```text
//! POST /v1/channels/{channel}/groups/{group}/redeliver   {"from": N, "to": M}
//! POST /v1/channels/{channel}/test                        (no body)
//! ```
//!
//! **Redeliver** sends events again to a group without moving its cursor. It reuses the
//! dead-letter redrive machinery: each offset of the range that the group has already
//! acknowledged gets a dead-letter entry (reason [`REDELIVER_REASON`], unless it has a
//! real one) and a durable redrive mark, and the group's active agent is nudged. Once
//! the agent acks it, the entry goes (as for any redrive); if delivery fails again it
//! stays a dead letter. Offsets after the cursor are not marked — the group will
//! receive them anyway — and are reported as `pending`.
//!
//! **Test** appends a sample event signed with the channel's first secret, exactly as
//! `hookrelay send` would sign it, after checking the signature with the channel's
//! verifier; it then flows to agents like any event.

use std::collections::BTreeSet;

use serde::Deserialize;

use crate::common::verify::SchemeKind;
use crate::relay::api_error::{json_ok, ApiError};
use crate::relay::auth::{authorize, Credentials};
use crate::relay::console::event::unavailable;
use crate::relay::state::Relay;
use crate::storage::{DeadLetter, NewEvent};

/// Most events one redeliver request may name.
pub const MAX_REDELIVER_EVENTS: u64 = 1000;
/// The dead-letter reason of an operator's redelivery while it is pending.
pub const REDELIVER_REASON: &str = "redelivery requested by an operator";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RedeliverBody {
    from: u64,
    to: Option<u64>,
}

fn check_channel(relay: &Relay, creds: &Credentials, channel: &str) -> Result<(), ApiError> {
    authorize(relay, creds)?;
    match relay.config.channel(channel) {
        Some(_) => Ok(()),
        None => Err(ApiError::unknown_channel(channel)),
    }
}

/// The inclusive range a redeliver body names, checked against the retained events.
fn range(body: &[u8], earliest: u64, head: u64) -> Result<(u64, u64), ApiError> {
    let b: RedeliverBody = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("expected {{\"from\": N, \"to\": M}}: {e}")))?;
    let to = b.to.unwrap_or(b.from);
    if b.from == 0 || to < b.from {
        return Err(ApiError::bad_request("need 1 <= from <= to"));
    }
    if to - b.from >= MAX_REDELIVER_EVENTS {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_REDELIVER_EVENTS} events per request"
        )));
    }
    if b.from < earliest || to > head {
        return Err(ApiError::bad_request(format!(
            "retained offsets are {earliest}..={head}"
        )));
    }
    Ok((b.from, to))
}

/// `POST .../groups/{group}/redeliver`.
pub async fn redeliver(
    relay: &Relay,
    creds: &Credentials,
    channel: &str,
    group: &str,
    body: &[u8],
) -> Result<warp::reply::Response, ApiError> {
    check_channel(relay, creds, channel)?;
    if !crate::common::config::valid_channel_name(group) {
        return Err(ApiError::bad_request(
            "a group name is 1 to 64 characters of A-Z, a-z, 0-9, '_' and '-'",
        ));
    }
    let log = &relay.log;
    let earliest = log.earliest(channel).map_err(unavailable)?;
    let (from, to) = range(body, earliest, log.head(channel))?;
    let cursor = log
        .cursor(channel, group)
        .map_err(unavailable)?
        .unwrap_or(0);
    let letters: BTreeSet<u64> = log
        .dead_letters(channel, group)
        .await
        .map_err(unavailable)?
        .into_iter()
        .map(|d| d.offset)
        .collect();
    let now = crate::common::time::now_unix_ms();
    let marked: Vec<u64> = (from..=to.min(cursor)).collect();
    for &offset in marked.iter().filter(|o| !letters.contains(o)) {
        let entry = DeadLetter {
            offset,
            reason: REDELIVER_REASON.to_string(),
            attempts: 0,
            last_status: None,
            at_ms: now,
        };
        log.add_dead_letter(channel, group, entry)
            .await
            .map_err(unavailable)?;
    }
    if !marked.is_empty() {
        log.request_redrive(channel, group, marked.clone(), now)
            .await
            .map_err(unavailable)?;
        relay.hub.redriven(&relay.log, channel, group).await;
    }
    tracing::info!(
        channel,
        group,
        from,
        to,
        count = marked.len(),
        "admin: redelivery requested"
    );
    let pending: Vec<u64> = (from.max(cursor.saturating_add(1))..=to).collect();
    let active = relay.hub.active_groups(channel).iter().any(|g| g == group);
    Ok(json_ok(&serde_json::json!({
        "channel": channel, "group": group, "redelivered": marked, "pending": pending, "active": active,
    })))
}

/// `POST /v1/channels/{channel}/test`.
pub async fn send_test(
    relay: &Relay,
    creds: &Credentials,
    channel: &str,
) -> Result<warp::reply::Response, ApiError> {
    check_channel(relay, creds, channel)?;
    let Some(c) = relay.config.channel(channel) else {
        return Err(ApiError::unknown_channel(channel));
    };
    let v = &c.verifier;
    let now_ms = crate::common::time::now_unix_ms();
    let now = (now_ms / 1000) as i64;
    let body = crate::relay::console::samples::payload(v.kind.as_str(), now);
    let id = format!("hookrelay-test-{now_ms}");
    let mut headers = vec![
        ("content-type".to_string(), "application/json".to_string()),
        (
            "user-agent".to_string(),
            "hookrelay-console-test".to_string(),
        ),
    ];
    if v.kind != SchemeKind::None {
        let signed = signed_headers(c, body.as_bytes(), now, &id)?;
        headers.extend(signed);
    }
    verify_own(c, &headers, body.as_bytes(), now)?;
    let event = NewEvent {
        method: "POST".to_string(),
        path: String::new(),
        query: String::new(),
        headers: headers
            .into_iter()
            .map(|(n, v)| (n, v.into_bytes()))
            .collect(),
        body: body.into_bytes().into(),
        peer: "console".to_string(),
        scheme: v.kind.as_str().to_string(),
        received_at_ms: now_ms,
    };
    let a = relay
        .log
        .append(channel, event, None)
        .await
        .map_err(unavailable)?;
    tracing::info!(channel, offset = a.offset, "admin: test webhook appended");
    Ok(json_ok(&serde_json::json!({
        "channel": channel, "offset": a.offset, "id": a.id, "scheme": v.kind.as_str(),
    })))
}

fn signed_headers(
    c: &crate::common::config::ChannelConfig,
    body: &[u8],
    now: i64,
    id: &str,
) -> Result<Vec<(String, String)>, ApiError> {
    let v = &c.verifier;
    let cannot = || {
        ApiError::bad_request(format!(
            "the relay cannot sign a test webhook for scheme {:?} (no secret it can sign with: asymmetric and token schemes hold only what verifies); use `hookrelay send`",
            v.kind.as_str()
        ))
    };
    let secret = v.secrets.first().ok_or_else(cannot)?;
    let ids = (Some(id), v.public_url.as_deref());
    let signed =
        crate::common::verify::sign_for_url(v.kind, v.hmac.as_ref(), secret, body, now, ids);
    if signed.is_empty() {
        return Err(cannot());
    }
    Ok(signed
        .into_iter()
        .map(|(n, val)| (n.as_str().to_string(), val))
        .collect())
}

/// Checks the test request against the channel's own verifier, so what is stored is
/// exactly what a provider's correctly signed webhook would be.
fn verify_own(
    c: &crate::common::config::ChannelConfig,
    headers: &[(String, String)],
    body: &[u8],
    now: i64,
) -> Result<(), ApiError> {
    let mut map = http::HeaderMap::new();
    for (n, v) in headers {
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(n.as_bytes()),
            http::HeaderValue::from_str(v),
        ) {
            map.append(n, v);
        }
    }
    c.verifier.verify(&map, body, now).map(|_| ()).map_err(|e| {
        ApiError::bad_request(format!(
            "the test webhook does not verify for this channel ({}); use `hookrelay send`",
            e.code()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redeliver_ranges_are_checked() {
        assert_eq!(range(br#"{"from":3}"#, 1, 10), Ok((3, 3)));
        assert_eq!(range(br#"{"from":3,"to":5}"#, 1, 10), Ok((3, 5)));
        for bad in [
            r#"{"from":0}"#,
            r#"{"from":5,"to":3}"#,
            r#"{"from":1,"to":11}"#,
            r#"{"x":1}"#,
            "{",
        ] {
            assert_eq!(
                range(bad.as_bytes(), 1, 10).unwrap_err().code,
                "bad_request",
                "{bad}"
            );
        }
        let too_many = format!(r#"{{"from":1,"to":{}}}"#, MAX_REDELIVER_EVENTS + 1);
        assert!(range(too_many.as_bytes(), 1, 5000).is_err());
    }
}
