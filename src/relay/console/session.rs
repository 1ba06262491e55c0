//! Logging in and out of the console.
//!
//! `POST /ui/login` takes the admin token from a form, compares it in constant time,
//! and answers with a session cookie (`HttpOnly; SameSite=Strict; Path=/`, plus
//! `Secure` when the relay serves TLS) and a redirect to `/ui/`. The page then asks
//! `GET /ui/session` for its CSRF token. `POST /ui/logout` ends the session. Wrong
//! tokens spend the address's failure budget, like failed webhook signatures.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use warp::{Filter, Reply};

use crate::relay::api_error::{json_ok, ApiError};
use crate::relay::auth::{authorize, credentials, forbidden, Credentials};
use crate::relay::console::assets::{html, LOGIN_ERROR_SLOT, LOGIN_HTML};
use crate::relay::console::csrf;
use crate::relay::console::sessions::{COOKIE_NAME, SESSION_TTL_SECS};
use crate::relay::state::{ConnInfo, Relay};

/// Largest login form read.
pub const MAX_LOGIN_BODY_BYTES: u64 = 4096;

/// `GET /ui/login`, `POST /ui/login`, `POST /ui/logout`, `GET /ui/session`.
pub fn routes(
    relay: Arc<Relay>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    let page = warp::path!("ui" / "login")
        .and(warp::get())
        .map(|| html(StatusCode::OK, LOGIN_HTML.to_string()));
    let r = relay.clone();
    let login = warp::path!("ui" / "login")
        .and(warp::post())
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<ConnInfo>())
        .and(warp::body::content_length_limit(MAX_LOGIN_BODY_BYTES))
        .and(warp::body::bytes())
        .map(move |h: HeaderMap, conn: Option<ConnInfo>, body: Bytes| login(&r, &h, conn, &body));
    let r = relay.clone();
    let logout = warp::path!("ui" / "logout")
        .and(warp::post())
        .and(credentials(relay.clone()))
        .and(warp::header::optional::<String>("cookie"))
        .map(move |c: Credentials, cookie: Option<String>| logout(&r, &c, cookie.as_deref()));
    let r = relay.clone();
    let session = warp::path!("ui" / "session")
        .and(warp::get())
        .and(warp::header::optional::<String>("cookie"))
        .map(move |cookie: Option<String>| session(&r, cookie.as_deref()));
    page.or(login)
        .unify()
        .or(logout)
        .unify()
        .or(session)
        .unify()
}

fn login(
    relay: &Relay,
    h: &HeaderMap,
    conn: Option<ConnInfo>,
    body: &[u8],
) -> warp::reply::Response {
    let Some(tokens) = &relay.config.server.admin_token else {
        return ApiError::not_found().into_response();
    };
    let text = |name| h.get(name).and_then(|v: &HeaderValue| v.to_str().ok());
    // A login form posted from another site would log the victim in as the attacker.
    if text(http::header::ORIGIN).is_some()
        && !csrf::same_origin(text(http::header::ORIGIN), None, text(http::header::HOST))
    {
        return forbidden("the login form was not sent from this relay's pages").into_response();
    }
    let ip = conn.map(|c| c.peer.ip());
    if let Some(Err(secs)) = ip.map(|ip| relay.failures.check(ip, Instant::now())) {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many failed logins from this address",
        );
        e.retry_after = Some(secs);
        return e.into_response();
    }
    let token = form_value(body, "token").unwrap_or_default();
    if !tokens.matches(&token) {
        if let Some(ip) = ip {
            relay.failures.charge(ip, Instant::now());
        }
        tracing::info!(peer = ?conn.map(|c| c.peer), "console: login refused (wrong token)");
        let msg = r#"<p class="error" role="alert">That token is not valid.</p>"#;
        return html(
            StatusCode::UNAUTHORIZED,
            LOGIN_HTML.replace(LOGIN_ERROR_SLOT, msg),
        );
    }
    let new = relay.sessions.create();
    tracing::info!(peer = ?conn.map(|c| c.peer), "console: logged in");
    let cookie = session_cookie(&new.id, SESSION_TTL_SECS, relay.config.server.tls.is_some());
    redirect("/ui/", &cookie)
}

fn logout(relay: &Relay, c: &Credentials, cookie: Option<&str>) -> warp::reply::Response {
    if let Err(e) = authorize(relay, c) {
        return e.into_response();
    }
    if let Some(id) = cookie.and_then(|c| csrf::cookie(c, COOKIE_NAME)) {
        relay.sessions.remove(id);
    }
    let mut resp = json_ok(&serde_json::json!({"logged_out": true}));
    let gone = session_cookie("", 0, relay.config.server.tls.is_some());
    if let Ok(v) = HeaderValue::from_str(&gone) {
        resp.headers_mut().insert(http::header::SET_COOKIE, v);
    }
    resp
}

fn session(relay: &Relay, cookie: Option<&str>) -> warp::reply::Response {
    if relay.config.server.admin_token.is_none() {
        return ApiError::not_found().into_response();
    }
    let csrf = cookie
        .and_then(|c| csrf::cookie(c, COOKIE_NAME))
        .and_then(|id| relay.sessions.csrf(id));
    match csrf {
        Some(token) => json_ok(&serde_json::json!({ "csrf": token })),
        None => ApiError::unauthorized("log in at /ui/login").into_response(),
    }
}

/// The `Set-Cookie` value for session `id`, living `max_age_secs`.
pub fn session_cookie(id: &str, max_age_secs: u64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE_NAME}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age_secs}{secure}")
}

fn redirect(to: &'static str, cookie: &str) -> warp::reply::Response {
    let mut resp = http::Response::new(Default::default());
    *resp.status_mut() = StatusCode::SEE_OTHER;
    let h = resp.headers_mut();
    h.insert(http::header::LOCATION, HeaderValue::from_static(to));
    if let Ok(v) = HeaderValue::from_str(cookie) {
        h.insert(http::header::SET_COOKIE, v);
    }
    crate::relay::console::assets::secure_headers(h);
    resp
}

/// The value of `name` in an `application/x-www-form-urlencoded` body.
fn form_value(body: &[u8], name: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| {
            let v = v.replace('+', " ");
            percent_encoding::percent_decode_str(&v)
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_values_are_decoded() {
        assert_eq!(
            form_value(b"a=1&token=ab%2Bc+d", "token").as_deref(),
            Some("ab+c d")
        );
        assert_eq!(form_value(b"a=1", "token"), None);
    }

    #[test]
    fn cookies_are_http_only_strict_and_secure_under_tls() {
        let c = session_cookie("x", 60, true);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.ends_with("; Secure"));
        assert!(!session_cookie("x", 60, false).contains("Secure"));
    }
}
