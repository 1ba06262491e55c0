//! Provider handshakes, answered by the relay itself and never stored as events.
//!
//! Ingest calls [`before_body`] once the channel is admitted (the `GET` handshakes,
//! Asana's `X-Hook-Secret`, Microsoft Graph's `validationToken`: none is signed) and
//! [`after_verify`] once the signature passed (Slack, Zoom, Twitch sign theirs, so a
//! forged one gets the usual 401 before anything is answered). Each answer is logged
//! with the channel and the handshake's kind, never the token or secret. Which
//! handshakes a channel answers is its config (`handshake`, `verify_token`,
//! `replace_hook_secret`, `msgraph_validation`); the pure computations are in
//! [`crate::common::verify`].

mod asana;
mod get;
pub mod reply;
mod signed;

use http::Method;

use crate::common::config::ChannelConfig;
use crate::common::verify::{HandshakeKind, Secret};
use crate::relay::api_error::ApiError;
use crate::relay::state::Relay;
use reply::{Answer, Req};

/// The unsigned handshakes, looked at before the body is read. Every `GET` ends
/// here: answered, refused, or 405 when the channel has no such handshake.
pub async fn before_body(
    relay: &Relay,
    channel: &ChannelConfig,
    req: &Req<'_>,
) -> Result<Option<Answer>, ApiError> {
    let kind = channel.handshakes.kind;
    if req.method == Method::GET {
        let Some(kind) = kind.filter(|k| k.uses_get()) else {
            return Err(not_a_handshake(channel));
        };
        return match get::answer(channel, kind, req)? {
            Some(response) => Ok(Some(logged(channel, kind, response))),
            None => Err(not_a_handshake(channel)),
        };
    }
    if channel.handshakes.msgraph_validation {
        if let Some(token) = req.param("validationToken").filter(|t| reply::echoable(t)) {
            let response = reply::text(token);
            return Ok(Some(logged(
                channel,
                HandshakeKind::MsGraphValidation,
                response,
            )));
        }
    }
    if kind == Some(HandshakeKind::AsanaHookSecret) {
        if let Some(response) = asana::answer(relay, channel, req).await? {
            return Ok(Some(logged(
                channel,
                HandshakeKind::AsanaHookSecret,
                response,
            )));
        }
    }
    Ok(None)
}

/// The signed handshakes, looked at once `body` verified (`secret`: the secret that
/// matched); also refuses `twitter` bodies a CRC answer could have signed.
pub fn after_verify(
    channel: &ChannelConfig,
    req: &Req<'_>,
    body: &[u8],
    secret: Option<&Secret>,
) -> Result<Option<Answer>, ApiError> {
    match channel.handshakes.kind {
        Some(HandshakeKind::TwitterCrc) => signed::guard_twitter(body).map(|()| None),
        Some(kind) => Ok(signed::answer(kind, req, body, secret)?
            .map(|response| logged(channel, kind, response))),
        None => Ok(None),
    }
}

fn logged(channel: &ChannelConfig, kind: HandshakeKind, response: warp::reply::Response) -> Answer {
    tracing::info!(channel = %channel.name, handshake = kind.as_str(), "handshake answered");
    Answer { response, kind }
}

fn not_a_handshake(channel: &ChannelConfig) -> ApiError {
    let allowed = match channel.handshakes.kind {
        Some(k) if k.uses_get() => "POST, PUT and PATCH (GET only for the provider's handshake)",
        _ => "POST, PUT and PATCH",
    };
    ApiError::method_not_allowed(allowed)
}
