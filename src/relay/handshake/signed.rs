//! The handshakes that come signed like any event: Slack's `url_verification`, Zoom's
//! `endpoint.url_validation` and Twitch's `webhook_callback_verification`. They are
//! looked at only after the signature check passed, so a forged one is refused with
//! the usual 401 and never answered.

use serde::Deserialize;
use serde_json::json;

use super::reply::{echoable, json, text, Req};
use crate::common::verify::{zoom_encrypted_token, HandshakeKind, Secret};
use crate::relay::api_error::ApiError;

/// Largest body looked at as a handshake: theirs are tiny, and parsing every large
/// event in full would cost for nothing.
const MAX_HANDSHAKE_BODY_BYTES: usize = 16 * 1024;

/// Slack: `{"type":"url_verification","challenge":...}`.
#[derive(Deserialize)]
struct Slack {
    #[serde(rename = "type")]
    kind: Option<String>,
    challenge: Option<String>,
}

/// Zoom: `{"event":"endpoint.url_validation","payload":{"plainToken":...}}`.
#[derive(Deserialize)]
struct Zoom {
    event: Option<String>,
    payload: Option<ZoomPayload>,
}

#[derive(Deserialize)]
struct ZoomPayload {
    #[serde(rename = "plainToken")]
    plain_token: Option<String>,
}

/// Twitch: `{"challenge":...,"subscription":{...}}`.
#[derive(Deserialize)]
struct Twitch {
    challenge: Option<String>,
}

/// Answers a verified request as `kind`'s signed handshake; `Ok(None)` when it is an
/// ordinary event. `secret` is the secret its signature matched (Zoom keys its answer
/// with it).
pub fn answer(
    kind: HandshakeKind,
    req: &Req<'_>,
    body: &[u8],
    secret: Option<&Secret>,
) -> Result<Option<warp::reply::Response>, ApiError> {
    match kind {
        HandshakeKind::SlackUrlVerification if mentions(body, b"url_verification") => {
            let Some(s) = parse::<Slack>(body) else {
                return Ok(None);
            };
            if s.kind.as_deref() != Some("url_verification") {
                return Ok(None);
            }
            let challenge = echo(s.challenge, "challenge")?;
            Ok(Some(json(&json!({ "challenge": challenge }))))
        }
        HandshakeKind::ZoomUrlValidation if mentions(body, b"endpoint.url_validation") => {
            zoom(body, secret)
        }
        HandshakeKind::TwitchCallbackVerification
            if req.header("twitch-eventsub-message-type")
                == Some("webhook_callback_verification") =>
        {
            let t = parse::<Twitch>(body)
                .ok_or_else(|| ApiError::bad_request("the verification body is not JSON"))?;
            Ok(Some(text(echo(t.challenge, "challenge")?)))
        }
        _ => Ok(None),
    }
}

fn zoom(body: &[u8], secret: Option<&Secret>) -> Result<Option<warp::reply::Response>, ApiError> {
    let Some(z) = parse::<Zoom>(body) else {
        return Ok(None);
    };
    if z.event.as_deref() != Some("endpoint.url_validation") {
        return Ok(None);
    }
    let plain = echo(z.payload.and_then(|p| p.plain_token), "payload.plainToken")?;
    // Verified means some secret matched; fail closed all the same.
    let secret = secret.ok_or_else(|| ApiError::unauthorized("no secret matched"))?;
    let encrypted = zoom_encrypted_token(secret, &plain);
    Ok(Some(json(
        &json!({ "plainToken": plain, "encryptedToken": encrypted }),
    )))
}

/// X signs JSON objects only; see `get::crc_token_like` for why anything else is refused.
pub fn guard_twitter(body: &[u8]) -> Result<(), ApiError> {
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => Ok(()),
        _ => Err(ApiError::bad_request(
            "X (twitter) events are JSON objects; this body is not one",
        )),
    }
}

fn echo(value: Option<String>, field: &str) -> Result<String, ApiError> {
    value
        .filter(|v| echoable(v))
        .ok_or_else(|| ApiError::bad_request(format!("{field} is missing or not printable text")))
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Option<T> {
    if body.len() > MAX_HANDSHAKE_BODY_BYTES {
        return None;
    }
    serde_json::from_slice(body).ok()
}

/// A cheap pre-check before any parsing: the marker's bytes occur in the body.
fn mentions(body: &[u8], marker: &[u8]) -> bool {
    body.len() <= MAX_HANDSHAKE_BODY_BYTES && body.windows(marker.len()).any(|w| w == marker)
}
