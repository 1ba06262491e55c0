//! Who may open `/v1/stream`, and for which channels: the bearer token (and a client
//! certificate where the config asks for one), checked before the upgrade so a bad
//! token gets a plain HTTP 401, never a WebSocket.

use crate::relay::api_error::ApiError;
use crate::relay::state::{ConnInfo, Relay};

/// The channels a connection's token grants; the token itself is not kept.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    pub(crate) channels: Vec<String>,
}

impl Grant {
    pub(crate) fn allows(&self, channel: &str) -> bool {
        self.channels.iter().any(|c| c == channel)
    }
}

/// Checks the bearer token (and the client certificate when the config requires one).
pub(crate) fn authorize(
    relay: &Relay,
    auth: Option<&str>,
    info: Option<ConnInfo>,
) -> Result<Grant, ApiError> {
    let needs_cert = relay
        .config
        .server
        .tls
        .as_ref()
        .is_some_and(|t| t.client_ca.is_some());
    if needs_cert && !info.is_some_and(|i| i.client_cert) {
        return Err(ApiError::unauthorized(
            "this relay requires a client certificate for /v1/stream",
        ));
    }
    let Some(token) = auth.and_then(crate::relay::auth::bearer) else {
        return Err(ApiError::unauthorized(
            "send Authorization: Bearer <token> with a consumer token of a channel",
        ));
    };
    let channels: Vec<String> = relay
        .config
        .channels
        .iter()
        .filter(|c| c.tokens.matches(token))
        .map(|c| c.name.clone())
        .collect();
    if channels.is_empty() {
        return Err(ApiError::unauthorized(
            "the token is not a consumer token of any channel",
        ));
    }
    Ok(Grant { channels })
}
