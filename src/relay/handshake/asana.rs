//! Asana's handshake: the first `POST` carries `X-Hook-Secret`; the relay echoes it
//! and keeps it as the channel's signing secret for the `X-Hook-Signature`s that
//! follow.
//!
//! The secret is stored durably before the answer (a 200 tells Asana the endpoint is
//! set up; losing the secret afterwards would make every later event unverifiable).
//! The handshake itself is unsigned, so only the first one is taken: a later one (a
//! stranger who learned the URL) is refused unless the channel says
//! `replace_hook_secret = true`, which an operator sets to re-register the webhook.

use http::HeaderValue;

use super::reply::{echoable, Req};
use crate::common::config::ChannelConfig;
use crate::common::verify::Secret;
use crate::relay::api_error::ApiError;
use crate::relay::hook_secrets::ASANA_HOOK_SECRET;
use crate::relay::state::Relay;

/// The handshake's header.
const HEADER: &str = "x-hook-secret";

/// Answers an `X-Hook-Secret` request; `Ok(None)` when the request carries none.
pub async fn answer(
    relay: &Relay,
    channel: &ChannelConfig,
    req: &Req<'_>,
) -> Result<Option<warp::reply::Response>, ApiError> {
    let Some(value) = req.header(HEADER) else {
        return Ok(None);
    };
    if !echoable(value) {
        return Err(ApiError::bad_request("X-Hook-Secret is not printable text"));
    }
    let secret = Secret::from_key(value.as_bytes())
        .map_err(|_| ApiError::bad_request("X-Hook-Secret is empty"))?;
    let replace = channel.handshakes.replace_hook_secret;
    let stored = relay
        .log
        .put_channel_setting(
            &channel.name,
            ASANA_HOOK_SECRET,
            value.as_bytes().to_vec(),
            replace,
        )
        .await
        .map_err(|e| {
            tracing::error!(channel = %channel.name, error = %e, "cannot store the hook secret");
            ApiError::unavailable()
        })?;
    if !stored {
        tracing::warn!(channel = %channel.name, "refused an X-Hook-Secret handshake: the channel already has a hook secret (set replace_hook_secret = true to accept a new one)");
        return Err(ApiError::unauthorized(
            "this channel already has a hook secret; a new handshake is refused",
        ));
    }
    relay.hook_secrets.set(&channel.name, secret);
    let mut resp = http::Response::new(Vec::new().into());
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(HEADER, v);
    }
    Ok(Some(resp))
}
