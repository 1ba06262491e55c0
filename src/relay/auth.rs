//! Bearer tokens: the admin token for `/v1/...` admin routes, and the parsing of an
//! `Authorization: Bearer` header shared with the agent stream's consumer tokens.
//!
//! Comparisons against configured tokens are constant-time (see
//! [`crate::common::config::TokenSet`]), and no message here ever echoes a token.

use crate::relay::api_error::ApiError;
use crate::relay::state::Relay;

/// Checks the admin bearer token; 404 when the admin API is disabled.
pub fn authorize(relay: &Relay, auth: Option<&str>) -> Result<(), ApiError> {
    let Some(tokens) = &relay.config.server.admin_token else {
        return Err(ApiError::not_found());
    };
    match auth.and_then(bearer) {
        Some(t) if tokens.matches(t) => Ok(()),
        Some(_) => Err(ApiError::unauthorized("the admin token is not valid")),
        None => Err(ApiError::unauthorized(
            "send Authorization: Bearer <admin_token>",
        )),
    }
}

/// The token of an `Authorization: Bearer <token>` value.
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}
