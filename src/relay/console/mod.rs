//! The web console at `/ui/` and the admin routes it needs beyond
//! [`crate::relay::admin`]:
//!
//! ```text
//! GET  /ui/  /ui/login  /ui/assets/{file}      the embedded pages (404 without admin_token)
//! POST /ui/login  /ui/logout   GET /ui/session  the cookie session (see `session`)
//! GET  /v1/overview  /v1/stats                  overview and chart data (`stats`)
//! GET  /v1/channels/{c}/events/{offset}[/body]  one event, its delivery state, its bytes (`event`)
//! GET  /v1/channels/{c}/feed?from=N             Server-Sent Events of new events (`feed`)
//! POST /v1/channels/{c}/groups/{g}/redeliver    send a range again (`actions`)
//! POST /v1/channels/{c}/test                    append a signed test webhook (`actions`)
//! GET  /v1/openapi.json                         the OpenAPI document of every route
//! ```
//!
//! Every `/v1` route here takes the admin bearer token or a console session
//! ([`crate::relay::auth::Credentials`]) and answers 404 without an admin token.

use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;
use warp::{Filter, Reply};

use crate::relay::api_error::ApiError;
use crate::relay::auth::{credentials, Credentials};
use crate::relay::state::Relay;

pub mod actions;
pub mod assets;
pub mod csrf;
pub mod event;
pub mod feed;
pub mod rings;
pub mod samples;
pub mod session;
pub mod sessions;
pub mod stats;

/// The OpenAPI 3 document served at `/v1/openapi.json`.
pub const OPENAPI_JSON: &str = include_str!("openapi.json");
/// Largest body the console's POST routes read.
pub const MAX_ACTION_BODY_BYTES: u64 = 64 * 1024;

type Route = warp::reply::Response;

fn reply(r: Result<Route, ApiError>) -> Route {
    r.unwrap_or_else(|e| e.into_response())
}

/// The console's pages and API routes, for [`crate::relay::server::routes`].
pub fn routes(
    relay: Arc<Relay>,
) -> impl Filter<Extract = (Route,), Error = warp::Rejection> + Clone {
    let openapi = warp::path!("v1" / "openapi.json").and(warp::get()).map(|| {
        let mut resp = http::Response::new(OPENAPI_JSON.into());
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        resp
    });
    pages(relay.clone())
        .or(reads(relay.clone()))
        .unify()
        .or(writes(relay))
        .unify()
        .or(openapi)
        .unify()
}

/// `/ui/...`: 404 for all of it when no admin token is configured.
fn pages(relay: Arc<Relay>) -> impl Filter<Extract = (Route,), Error = warp::Rejection> + Clone {
    let disabled = relay.config.server.admin_token.is_none();
    let off = warp::path("ui").and_then(move || async move {
        if disabled {
            Ok(ApiError::not_found().into_response())
        } else {
            Err(warp::reject::not_found())
        }
    });
    let index = warp::path("ui")
        .and(warp::path::end())
        .and(warp::get())
        .map(|| assets::html(StatusCode::OK, assets::INDEX_HTML.to_string()));
    let files = warp::path!("ui" / "assets" / String)
        .and(warp::get())
        .and_then(|name: String| async move {
            assets::asset(&name).ok_or_else(warp::reject::not_found)
        });
    off.or(index)
        .unify()
        .or(files)
        .unify()
        .or(session::routes(relay))
        .unify()
}

/// The read routes: overview, stats, one event, its body, the live feed.
fn reads(relay: Arc<Relay>) -> impl Filter<Extract = (Route,), Error = warp::Rejection> + Clone {
    let auth = credentials(relay.clone());
    let r = relay.clone();
    let overview = warp::path!("v1" / "overview")
        .and(warp::get())
        .and(auth.clone())
        .then(move |c: Credentials| {
            let r = r.clone();
            async move { reply(stats::overview(&r, &c).await) }
        });
    let r = relay.clone();
    let stats = warp::path!("v1" / "stats")
        .and(warp::get())
        .and(auth.clone())
        .map(move |c: Credentials| reply(stats::stats(&r, &c)));
    let r = relay.clone();
    let detail = warp::path!("v1" / "channels" / String / "events" / u64)
        .and(warp::get())
        .and(auth.clone())
        .then(move |ch: String, offset: u64, c: Credentials| {
            let r = r.clone();
            async move { reply(event::detail(&r, &c, &ch, offset).await) }
        });
    let r = relay.clone();
    let body = warp::path!("v1" / "channels" / String / "events" / u64 / "body")
        .and(warp::get())
        .and(auth.clone())
        .then(move |ch: String, offset: u64, c: Credentials| {
            let r = r.clone();
            async move { reply(event::body(&r, &c, &ch, offset).await) }
        });
    let feed = warp::path!("v1" / "channels" / String / "feed")
        .and(warp::get())
        .and(auth)
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::header::optional::<u64>("last-event-id"))
        .map(
            move |ch: String, c: Credentials, q: String, last: Option<u64>| {
                reply(
                    from_param(&q).and_then(|from| feed::open(relay.clone(), &c, &ch, from, last)),
                )
            },
        );
    overview
        .or(stats)
        .unify()
        .or(detail)
        .unify()
        .or(body)
        .unify()
        .or(feed)
        .unify()
}

/// The action routes: redeliver a range, send a test webhook.
fn writes(relay: Arc<Relay>) -> impl Filter<Extract = (Route,), Error = warp::Rejection> + Clone {
    let auth = credentials(relay.clone());
    let r = relay.clone();
    let redeliver = warp::path!("v1" / "channels" / String / "groups" / String / "redeliver")
        .and(warp::post())
        .and(auth.clone())
        .and(warp::body::content_length_limit(MAX_ACTION_BODY_BYTES))
        .and(warp::body::bytes())
        .then(move |ch: String, g: String, c: Credentials, body: Bytes| {
            let r = r.clone();
            async move { reply(actions::redeliver(&r, &c, &ch, &g, &body).await) }
        });
    let test = warp::path!("v1" / "channels" / String / "test")
        .and(warp::post())
        .and(auth)
        .then(move |ch: String, c: Credentials| {
            let r = relay.clone();
            async move { reply(actions::send_test(&r, &c, &ch).await) }
        });
    redeliver.or(test).unify()
}

/// `from=N` of the feed's query (other parameters are ignored).
fn from_param(raw: &str) -> Result<Option<u64>, ApiError> {
    for pair in raw.split('&') {
        if let Some(v) = pair.strip_prefix("from=") {
            return v.parse().map(Some).map_err(|_| {
                ApiError::bad_request("query parameter from: expected a non-negative integer")
            });
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_openapi_document_is_json_and_the_feed_query_parses() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI_JSON).expect("openapi.json");
        assert_eq!(doc["openapi"].as_str().map(|v| &v[..2]), Some("3."));
        assert_eq!(from_param("x=1&from=7"), Ok(Some(7)));
        assert_eq!(from_param(""), Ok(None));
        assert!(from_param("from=a").is_err());
    }
}
