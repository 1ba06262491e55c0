//! The admin read API: `GET /v1/channels` and `GET /v1/channels/{channel}/events`;
//! consumer groups and dead letters are in [`crate::relay::admin::groups`].
//!
//! Without an `admin_token` in the config these routes answer 404, as if they did not
//! exist: an admin surface nobody configured should not even be discoverable.

use std::sync::Arc;

use serde::Serialize;
use warp::{Filter, Reply};

use crate::relay::api_error::{json_ok, ApiError};
use crate::relay::auth::Credentials;
use crate::relay::state::Relay;

pub mod groups;

/// Most events one `events` request returns.
pub const MAX_EVENTS_PER_PAGE: usize = 1000;
/// Events returned when `limit` is absent.
pub const DEFAULT_EVENTS_PER_PAGE: usize = 100;

#[derive(Debug, Default)]
struct EventsQuery {
    from: Option<u64>,
    limit: Option<usize>,
}

impl EventsQuery {
    /// Parses `from=N&limit=M`. A value that is not a number is a 400, not a silent
    /// default: `from=abc` answered with events from 1 would look like a valid reply.
    /// Other parameters are ignored.
    fn parse(raw: &str) -> Result<EventsQuery, ApiError> {
        let mut q = EventsQuery::default();
        for pair in raw.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            // Query strings are percent-encoded: `from=%31` is `from=1`.
            let decode = |t: &str| {
                percent_encoding::percent_decode_str(t)
                    .decode_utf8_lossy()
                    .into_owned()
            };
            let (name, value) = (decode(name), decode(value));
            let (name, value) = (name.as_str(), value.as_str());
            let number = || {
                value.parse::<u64>().map_err(|_| {
                    ApiError::bad_request(format!(
                        "query parameter {name}: expected a non-negative integer"
                    ))
                })
            };
            match name {
                "from" => q.from = Some(number()?),
                "limit" => q.limit = Some(usize::try_from(number()?).unwrap_or(usize::MAX)),
                _ => {}
            }
        }
        Ok(q)
    }
}

#[derive(Serialize)]
struct ChannelInfo {
    name: String,
    scheme: &'static str,
    head: u64,
    earliest: u64,
    groups: Vec<GroupInfo>,
}

#[derive(Serialize)]
struct GroupInfo {
    name: String,
    cursor: u64,
    lag: u64,
}

/// Every admin route (channels, events, groups, dead letters), each checking the admin
/// token; all of them 404 when no `admin_token` is configured.
pub fn routes(
    relay: Arc<Relay>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    let auth = crate::relay::auth::credentials(relay.clone());
    let relay_for_groups = relay.clone();
    let list = {
        let relay = relay.clone();
        warp::path!("v1" / "channels")
            .and(warp::get())
            .and(auth.clone())
            .then(move |auth: Credentials| {
                let relay = relay.clone();
                async move { reply(channels(&relay, &auth).await) }
            })
    };
    let events = warp::path!("v1" / "channels" / String / "events")
        .and(warp::get())
        .and(auth.clone())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .then(move |channel: String, auth: Credentials, q: String| {
            let relay = relay.clone();
            async move { reply(events(&relay, &channel, &auth, &q).await) }
        });
    let disabled = relay_for_groups.config.server.admin_token.is_none();
    list.or(events)
        .unify()
        .or(crate::relay::admin::groups::routes(relay_for_groups))
        .unify()
        .or(disabled_admin(disabled))
        .unify()
}

/// Without an admin token every admin path is 404 whatever the method, as if the API
/// did not exist; with one, this never matches, so a wrong method stays 405.
fn disabled_admin(
    disabled: bool,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    warp::path("v1")
        .and(warp::path("channels"))
        .and_then(move || async move {
            if disabled {
                Ok(ApiError::not_found().into_response())
            } else {
                Err(warp::reject::not_found())
            }
        })
}

fn reply(r: Result<warp::reply::Response, ApiError>) -> warp::reply::Response {
    r.unwrap_or_else(|e| e.into_response())
}

async fn channels(relay: &Relay, auth: &Credentials) -> Result<warp::reply::Response, ApiError> {
    crate::relay::auth::authorize(relay, auth)?;
    let mut out = Vec::new();
    for c in &relay.config.channels {
        let head = relay.log.head(&c.name);
        let groups = relay
            .log
            .groups(&c.name)
            .await
            .map_err(|_| ApiError::unavailable())?
            .into_iter()
            .map(|(name, cursor)| GroupInfo {
                name,
                cursor,
                lag: head.saturating_sub(cursor),
            })
            .collect();
        out.push(ChannelInfo {
            name: c.name.clone(),
            scheme: c.verifier.kind.as_str(),
            head,
            earliest: relay
                .log
                .earliest(&c.name)
                .map_err(|_| ApiError::unavailable())?,
            groups,
        });
    }
    Ok(json_ok(&serde_json::json!({ "channels": out })))
}

async fn events(
    relay: &Relay,
    channel: &str,
    auth: &Credentials,
    raw_query: &str,
) -> Result<warp::reply::Response, ApiError> {
    crate::relay::auth::authorize(relay, auth)?;
    if relay.config.channel(channel).is_none() {
        return Err(ApiError::unknown_channel(channel));
    }
    let q = EventsQuery::parse(raw_query)?;
    let limit = q
        .limit
        .unwrap_or(DEFAULT_EVENTS_PER_PAGE)
        .min(MAX_EVENTS_PER_PAGE);
    let from = q.from.unwrap_or(1);
    let records = relay.log.read(channel, from, limit).await.map_err(|e| {
        tracing::error!(channel, error = %e, "reading events failed");
        ApiError::unavailable()
    })?;
    let events: Vec<_> = records.iter().map(|r| r.to_json()).collect();
    Ok(json_ok(&serde_json::json!({
        "events": events,
        "head": relay.log.head(channel),
        "earliest": relay.log.earliest(channel).map_err(|_| ApiError::unavailable())?,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_query_parses_numbers_and_refuses_the_rest() {
        let q = EventsQuery::parse("from=5&limit=20&x=y").expect("valid");
        assert_eq!((q.from, q.limit), (Some(5), Some(20)));
        let q = EventsQuery::parse("").expect("empty");
        assert_eq!((q.from, q.limit), (None, None));
        let q = EventsQuery::parse("from=%31&li%6Dit=%32").expect("percent-encoded");
        assert_eq!((q.from, q.limit), (Some(1), Some(2)));
        for bad in ["from=abc", "limit=-1", "from=", "from=1.5", "from=%zz"] {
            let e = EventsQuery::parse(bad).unwrap_err();
            assert_eq!(e.code, "bad_request", "{bad}");
        }
    }
}
