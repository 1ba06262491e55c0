//! Where a webhook enters: `POST|PUT|PATCH /hooks/{channel}[/{suffix...}]`.
//!
//! The checks run in the spec's order, cheapest and least trusting first, so that a
//! flood of bad requests costs as little as possible and nothing refused is stored:
//! declared size → channel → IP allowlist → rate limit → body read under the limit →
//! signature and timestamp → dedup → append + fsync. Only the log's answer, which comes
//! after the flush, turns into a 200 (guarantee 1).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Buf;
use futures_util::Stream;
use http::{HeaderMap, Method, StatusCode};
use serde::Serialize;
use warp::{Filter, Reply};

use crate::common::config::ChannelConfig;
use crate::relay::api_error::{json_ok, ApiError};
use crate::relay::state::{ConnInfo, Relay};
use crate::storage::{Dedup, NewEvent};

/// The 200 answer.
#[derive(Debug, Serialize)]
struct Accepted<'a> {
    channel: &'a str,
    offset: u64,
    id: &'a str,
    duplicate: bool,
}

/// The ingest route.
pub fn route(
    relay: Arc<Relay>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    let query = warp::query::raw().or(warp::any().map(String::new)).unify();
    warp::path("hooks")
        .and(warp::path::param::<String>())
        .and(warp::path::tail())
        .and(warp::method())
        .and(query)
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<ConnInfo>())
        .and(warp::body::stream())
        .then(
            move |channel: String,
                  tail: warp::path::Tail,
                  method,
                  query,
                  headers,
                  conn: Option<ConnInfo>,
                  body| {
                let relay = relay.clone();
                async move {
                    let suffix = if tail.as_str().is_empty() {
                        String::new()
                    } else {
                        format!("/{}", tail.as_str())
                    };
                    let req = Incoming {
                        channel,
                        suffix,
                        method,
                        query,
                        headers,
                        peer: conn.map(|c| c.peer),
                    };
                    handle(&relay, req, body).await
                }
            },
        )
}

/// The parts of a request ingest looks at.
struct Incoming {
    channel: String,
    suffix: String,
    method: Method,
    query: String,
    headers: HeaderMap,
    peer: Option<SocketAddr>,
}

async fn handle<S, B>(relay: &Relay, req: Incoming, body: S) -> warp::reply::Response
where
    S: Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    let label = relay
        .config
        .channel(&req.channel)
        .map(|c| c.name.as_str())
        .unwrap_or("_unknown");
    let result = accept(relay, &req, body).await;
    let outcome = match &result {
        Ok((_, _, true)) => "duplicate",
        Ok(_) => "ok",
        Err(e) => e.code,
    };
    relay
        .metrics
        .ingest
        .with_label_values(&[label, outcome])
        .inc();
    match result {
        Ok((offset, id, duplicate)) => json_ok(&Accepted {
            channel: &req.channel,
            offset,
            id: &id,
            duplicate,
        }),
        Err(e) => {
            tracing::debug!(channel = %label, code = e.code, "ingest refused");
            e.into_response()
        }
    }
}

async fn accept<S, B>(
    relay: &Relay,
    req: &Incoming,
    body: S,
) -> Result<(u64, String, bool), ApiError>
where
    S: Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    let limit = relay.config.server.max_body_bytes;
    if declared_length(&req.headers).is_some_and(|len| len > limit as u64) {
        return Err(ApiError::payload_too_large(limit));
    }
    if !matches!(req.method, Method::POST | Method::PUT | Method::PATCH) {
        return Err(ApiError::method_not_allowed("POST, PUT and PATCH"));
    }
    let channel = relay
        .config
        .channel(&req.channel)
        .ok_or_else(|| ApiError::unknown_channel(&req.channel))?;
    check_ip(channel, req.peer)?;
    if let Some(bucket) = relay.limiters.get(&channel.name) {
        bucket.take(Instant::now()).map_err(|secs| {
            let mut e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("channel {:?} is over its rate limit", channel.name),
            );
            e.retry_after = Some(secs);
            e
        })?;
    }
    let body = crate::relay::body::read_limited(body, limit).await?;

    let now_ms = crate::common::time::now_unix_ms();
    let verified = channel
        .verifier
        .verify(&req.headers, &body, (now_ms / 1000) as i64)
        .map_err(|e| ApiError::new(StatusCode::UNAUTHORIZED, e.code(), verify_message(e)))?;
    let delivery_id = verified.delivery_id.or_else(|| {
        let h = channel.id_header.as_ref()?;
        let v = req.headers.get(h)?.to_str().ok()?.trim();
        (!v.is_empty()).then(|| v.to_string())
    });
    let dedup = delivery_id.map(|id| Dedup {
        id,
        window_ms: channel.dedup_window.as_millis() as u64,
    });

    let event = NewEvent {
        method: req.method.as_str().to_string(),
        path: req.suffix.clone(),
        query: req.query.clone(),
        headers: req
            .headers
            .iter()
            .map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec()))
            .collect(),
        body,
        peer: req.peer.map(|p| p.to_string()).unwrap_or_default(),
        scheme: channel.verifier.kind.as_str().to_string(),
        received_at_ms: now_ms,
    };
    match relay.log.append(&channel.name, event, dedup).await {
        Ok(a) => Ok((a.offset, a.id, a.duplicate)),
        Err(e) => {
            tracing::error!(channel = %channel.name, error = %e, "append failed; answering 503");
            Err(ApiError::unavailable())
        }
    }
}

fn verify_message(e: crate::common::verify::VerifyError) -> &'static str {
    use crate::common::verify::VerifyError::*;
    match e {
        MissingSignature => "the request carries no signature for this channel's scheme",
        InvalidSignature => "the signature does not match the body with any configured secret",
        TimestampOutOfTolerance => "the signed timestamp is outside the channel's tolerance",
    }
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn check_ip(channel: &ChannelConfig, peer: Option<SocketAddr>) -> Result<(), ApiError> {
    if channel.allow_ips.is_empty() {
        return Ok(());
    }
    // The TCP peer, never X-Forwarded-For: a header anyone can set cannot gate access.
    let allowed = peer.is_some_and(|p| {
        let ip = match p.ip() {
            std::net::IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map(std::net::IpAddr::V4)
                .unwrap_or(p.ip()),
            v4 => v4,
        };
        channel.allow_ips.iter().any(|net| net.contains(&ip))
    });
    if allowed {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "ip_not_allowed",
            format!(
                "{} may not post to this channel",
                peer.map(|p| p.ip().to_string())
                    .unwrap_or_else(|| "this address".into())
            ),
        ))
    }
}
