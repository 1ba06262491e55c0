//! The handshakes providers send as `GET`: Meta's `hub.challenge`, Twitter's CRC,
//! Okta's one-time verification and Dropbox's `challenge`. None is signed; Meta's
//! carries the channel's `verify_token`, Twitter's answer is keyed with the secret.

use serde_json::json;

use super::reply::{echoable, json, text, Req};
use crate::common::config::ChannelConfig;
use crate::common::verify::{twitter_response_token, HandshakeKind};
use crate::relay::api_error::ApiError;

/// Answers `req` as `kind`'s `GET` handshake; `Ok(None)` when it is not one.
pub fn answer(
    channel: &ChannelConfig,
    kind: HandshakeKind,
    req: &Req<'_>,
) -> Result<Option<warp::reply::Response>, ApiError> {
    match kind {
        HandshakeKind::MetaSubscribe => meta(channel, req),
        HandshakeKind::TwitterCrc => Ok(req
            .param("crc_token")
            .filter(|t| crc_token_like(t))
            .and_then(|t| twitter(channel, &t))),
        HandshakeKind::OktaVerification => Ok(req
            .header("x-okta-verification-challenge")
            .filter(|v| echoable(v))
            .map(|v| json(&json!({ "verification": v })))),
        HandshakeKind::DropboxChallenge => {
            Ok(req.param("challenge").filter(|c| echoable(c)).map(text))
        }
        _ => Ok(None),
    }
}

/// `hub.mode=subscribe`: the token must be the channel's `verify_token`.
fn meta(channel: &ChannelConfig, req: &Req<'_>) -> Result<Option<warp::reply::Response>, ApiError> {
    if req.param("hub.mode").as_deref() != Some("subscribe") {
        return Ok(None);
    }
    let Some(challenge) = req.param("hub.challenge").filter(|c| echoable(c)) else {
        return Err(ApiError::bad_request(
            "hub.challenge is missing or not printable text",
        ));
    };
    let Some(expected) = &channel.handshakes.verify_token else {
        return Err(ApiError::unauthorized(
            "this channel has no verify_token configured, so no subscription can be verified",
        ));
    };
    let given = req.param("hub.verify_token").unwrap_or_default();
    if !expected.matches(&given) {
        return Err(ApiError::unauthorized(
            "hub.verify_token does not match the channel's verify_token",
        ));
    }
    Ok(Some(text(challenge)))
}

/// The CRC answer, keyed with the channel's first (current) secret.
fn twitter(channel: &ChannelConfig, crc_token: &str) -> Option<warp::reply::Response> {
    let secret = channel.verifier.secrets.first()?;
    let token = twitter_response_token(secret, crc_token);
    Some(json(&json!({ "response_token": token })))
}

/// X's CRC tokens are short base64-like strings. Refusing anything else matters: the
/// answer is an HMAC of the token under the key that also signs events, so answering
/// an arbitrary token would sign an arbitrary body. No token has a `{`, and ingest
/// refuses `twitter` bodies that do not start with one (`signed::guard_twitter`).
pub fn crc_token_like(token: &str) -> bool {
    echoable(token)
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=-_.".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::crc_token_like;

    #[test]
    fn crc_tokens_are_base64_or_uuid_like() {
        assert!(crc_token_like("9b4507b3-9040-4669-9ba2-1d4d2e0fb8f0"));
        assert!(crc_token_like("dGVzdA+/=="));
        assert!(!crc_token_like("{\"a\":1}"));
        assert!(!crc_token_like("a b"));
        assert!(!crc_token_like(""));
    }
}
