//! Who is calling the admin API: an `Authorization: Bearer <admin_token>` header (API
//! clients, `hookrelay` commands), or the web console's session cookie. A cookie alone
//! is enough to read; a state-changing request with a cookie must also carry the
//! session's CSRF token in `X-CSRF-Token` and come from the relay's own origin, so a
//! page on another site cannot act with a logged-in operator's cookie.
//!
//! Comparisons against configured tokens and CSRF tokens are constant-time (see
//! [`crate::common::config::TokenSet`]), and no message here ever echoes a token.

use std::convert::Infallible;
use std::sync::Arc;

use http::{HeaderMap, Method, StatusCode};
use warp::Filter;

use crate::relay::api_error::ApiError;
use crate::relay::console::csrf;
use crate::relay::console::sessions::COOKIE_NAME;
use crate::relay::state::Relay;

/// The header that carries the console's CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The credentials a request presents, decided once per request.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// An `Authorization` header's value (checked against the admin token later).
    Bearer(String),
    /// A valid console session (and, for state-changing methods, CSRF and origin).
    Session,
    /// A console session that may not do this (expired, no CSRF token, foreign origin).
    Refused(ApiError),
    /// Neither header nor cookie.
    Missing,
}

/// Extracts the [`Credentials`] of a request; never rejects.
pub fn credentials(
    relay: Arc<Relay>,
) -> impl Filter<Extract = (Credentials,), Error = Infallible> + Clone {
    warp::method()
        .and(warp::header::headers_cloned())
        .map(move |method: Method, headers: HeaderMap| from_request(&relay, &method, &headers))
}

fn header(headers: &HeaderMap, name: impl http::header::AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The credentials of one request (see [`Credentials`]).
pub fn from_request(relay: &Relay, method: &Method, headers: &HeaderMap) -> Credentials {
    if let Some(v) = headers.get(http::header::AUTHORIZATION) {
        return Credentials::Bearer(v.to_str().unwrap_or_default().to_string());
    }
    let Some(id) = header(headers, http::header::COOKIE).and_then(|c| csrf::cookie(c, COOKIE_NAME))
    else {
        return Credentials::Missing;
    };
    let Some(expected) = relay.sessions.csrf(id) else {
        return Credentials::Refused(ApiError::unauthorized(
            "the console session is unknown or expired: log in again",
        ));
    };
    if matches!(*method, Method::GET | Method::HEAD) {
        return Credentials::Session;
    }
    let sent = header(headers, CSRF_HEADER).unwrap_or_default();
    if !csrf::token_matches(sent, &expected) {
        return Credentials::Refused(forbidden("the X-CSRF-Token header is missing or wrong"));
    }
    let same = csrf::same_origin(
        header(headers, http::header::ORIGIN),
        header(headers, http::header::REFERER),
        header(headers, http::header::HOST),
    );
    if !same {
        return Credentials::Refused(forbidden(
            "the request did not come from this relay's pages",
        ));
    }
    Credentials::Session
}

/// 403 `forbidden`: a console session may not do this.
pub fn forbidden(message: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
}

/// Checks the admin credentials; 404 when the admin API is disabled.
pub fn authorize(relay: &Relay, creds: &Credentials) -> Result<(), ApiError> {
    let Some(tokens) = &relay.config.server.admin_token else {
        return Err(ApiError::not_found());
    };
    match creds {
        Credentials::Session => Ok(()),
        Credentials::Refused(e) => Err(e.clone()),
        Credentials::Bearer(v) => match bearer(v) {
            Some(t) if tokens.matches(t) => Ok(()),
            Some(_) => Err(ApiError::unauthorized("the admin token is not valid")),
            None => Err(missing()),
        },
        Credentials::Missing => Err(missing()),
    }
}

fn missing() -> ApiError {
    ApiError::unauthorized("send Authorization: Bearer <admin_token>")
}

/// The token of an `Authorization: Bearer <token>` value.
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}
