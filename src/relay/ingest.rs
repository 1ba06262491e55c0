//! Where a webhook enters: `POST|PUT|PATCH /hooks/{channel}[/{suffix...}]`.
//!
//! The checks run in the spec's order, cheapest and least trusting first, so that a
//! flood of bad requests costs as little as possible and nothing refused is stored:
//! declared size → channel → IP allowlist → rate limit → body read under the limit →
//! signature and timestamp → dedup → append + fsync. Only the log's answer, which comes
//! after the flush, turns into a 200 (guarantee 1). Provider handshakes are answered
//! on the way ([`crate::relay::handshake`]): the unsigned ones once the channel is
//! admitted, the signed ones once their signature passed; none is stored.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Buf;
use futures_util::Stream;
use http::{HeaderMap, Method, StatusCode};
use serde::Serialize;
use sha2::Digest;
use warp::{Filter, Reply};

use crate::common::config::ChannelConfig;
use crate::common::verify::{HandshakeKind, Secret, Verified};
use crate::relay::api_error::{json_ok, ApiError};
use crate::relay::handshake::reply::{Answer, Req};
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

/// What a request became.
enum Outcome {
    /// Stored (or a duplicate of a stored event): offset, event id, duplicate.
    Stored(u64, String, bool),
    /// A provider handshake, answered and not stored.
    Handshake(Answer),
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
    let arrived = Instant::now();
    let label = relay
        .config
        .channel(&req.channel)
        .map(|c| c.name.as_str())
        .unwrap_or("_unknown");
    let result = accept(relay, &req, body).await;
    let (outcome, status) = match &result {
        Ok(Outcome::Stored(_, _, true)) => ("duplicate", StatusCode::OK),
        Ok(Outcome::Stored(..)) => ("ok", StatusCode::OK),
        Ok(Outcome::Handshake(answer)) => ("handshake", answer.response.status()),
        Err(e) => (e.code, e.status),
    };
    let took = arrived.elapsed();
    let metrics = &relay.metrics.ingest;
    metrics.answered(label, outcome, status.as_u16(), took);
    match result {
        Ok(Outcome::Handshake(answer)) => answer.response,
        Ok(Outcome::Stored(offset, id, duplicate)) => json_ok(&Accepted {
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

async fn accept<S, B>(relay: &Relay, req: &Incoming, body: S) -> Result<Outcome, ApiError>
where
    S: Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    let channel = admit(relay, req)?;
    let view = Req {
        method: &req.method,
        query: &req.query,
        headers: &req.headers,
    };
    let early = crate::relay::handshake::before_body(relay, channel, &view).await;
    if let Some(answer) = early.map_err(|e| charged(relay, req, e))? {
        return Ok(Outcome::Handshake(answer));
    }
    let limit = relay.config.server.max_body_bytes;
    let body = crate::relay::body::read_limited(body, limit).await?;
    let now_ms = crate::common::time::now_unix_ms();
    let (verified, secret) = verify(relay, channel, req, &body, now_ms)?;
    let signed = crate::relay::handshake::after_verify(channel, &view, &body, secret.as_ref());
    if let Some(answer) = signed? {
        return Ok(Outcome::Handshake(answer));
    }
    spend_channel_budget(relay, channel)?;
    let dedup = dedup_key(channel, req, verified)?.map(|id| Dedup {
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
    let body_field = crate::common::logs::body_field(&event.body);
    match relay.log.append(&channel.name, event, dedup).await {
        Ok(a) => {
            tracing::debug!(channel = %channel.name, offset = a.offset, id = %a.id, duplicate = a.duplicate, body = body_field, "ingest accepted");
            Ok(Outcome::Stored(a.offset, a.id, a.duplicate))
        }
        Err(e) => {
            if let Some(held) = relay.storage_errors.pass(Instant::now()) {
                tracing::error!(channel = %channel.name, error = %e, held_back = held, "append failed; answering 503 (one line per interval; held_back counts the others)");
            }
            Err(ApiError::unavailable())
        }
    }
}

/// The checks before the body is read, cheapest first: declared size, method,
/// channel, path, source address.
fn admit<'r>(relay: &'r Relay, req: &Incoming) -> Result<&'r ChannelConfig, ApiError> {
    let limit = relay.config.server.max_body_bytes;
    if declared_length(&req.headers).is_some_and(|len| len > limit as u64) {
        return Err(ApiError::payload_too_large(limit));
    }
    // GET reaches the channel's handshake, which answers 405 when it has none.
    if !matches!(
        req.method,
        Method::POST | Method::PUT | Method::PATCH | Method::GET
    ) {
        return Err(ApiError::method_not_allowed("POST, PUT and PATCH"));
    }
    let channel = relay
        .config
        .channel(&req.channel)
        .ok_or_else(|| ApiError::unknown_channel(&req.channel))?;
    if has_dot_segment(&req.suffix) {
        return Err(ApiError::bad_request(
            "the path suffix has a \".\" or \"..\" segment (also percent-encoded); \
             it could leave the agent's forward prefix, so it is refused",
        ));
    }
    check_ip(channel, req.peer)?;
    if let Some(ip) = req.peer.map(|p| p.ip()) {
        relay.failures.check(ip, Instant::now()).map_err(|secs| {
            rate_limited(
                "too many requests from this address failed verification".into(),
                secs,
            )
        })?;
    }
    Ok(channel)
}

/// The signature check, with the channel's configured secrets and the one it learned
/// from a handshake (Asana); returns the secret that matched where a handshake needs
/// it (Zoom). A failure spends the source address's failure budget, never the
/// channel's (see [`crate::relay::ratelimit`]).
fn verify(
    relay: &Relay,
    channel: &ChannelConfig,
    req: &Incoming,
    body: &[u8],
    now_ms: u64,
) -> Result<(Verified, Option<Secret>), ApiError> {
    let now = (now_ms / 1000) as i64;
    let learned;
    let verifier = match relay.hook_secrets.get(&channel.name) {
        Some(s) => {
            let mut v = channel.verifier.clone();
            v.secrets.push(s);
            learned = v;
            &learned
        }
        None => &channel.verifier,
    };
    // URL-signing schemes sign the URL the provider posted to: the channel's public
    // URL with this request's path suffix and query.
    let url = verifier
        .public_url
        .as_deref()
        .map(|base| crate::common::config::public_url::signed_url(base, &req.suffix, &req.query));
    let checked = if channel.handshakes.kind == Some(HandshakeKind::ZoomUrlValidation) {
        verifier
            .verify_which(&req.headers, body, now)
            .map(|(v, s)| (v, s.cloned()))
    } else {
        verifier
            .verify_posted_to(&req.headers, body, now, url.as_deref())
            .map(|v| (v, None))
    };
    checked.map_err(|e| {
        relay
            .metrics
            .ingest
            .verification_failed(&channel.name, e.code());
        let refusal = ApiError::new(StatusCode::UNAUTHORIZED, e.code(), verify_message(e));
        charged(relay, req, refusal)
    })
}

/// A 401 spends the source address's failure budget (a guessed signature or verify
/// token); other refusals pass through unchanged.
fn charged(relay: &Relay, req: &Incoming, e: ApiError) -> ApiError {
    if e.status == StatusCode::UNAUTHORIZED {
        if let Some(ip) = req.peer.map(|p| p.ip()) {
            relay.failures.charge(ip, Instant::now());
        }
    }
    e
}

/// The channel's rate limit, spent only by requests that passed verification.
fn spend_channel_budget(relay: &Relay, channel: &ChannelConfig) -> Result<(), ApiError> {
    let Some(bucket) = relay.limiters.get(&channel.name) else {
        return Ok(());
    };
    bucket.take(Instant::now()).map_err(|secs| {
        rate_limited(
            format!("channel {:?} is over its rate limit", channel.name),
            secs,
        )
    })
}

fn rate_limited(message: String, retry_after_secs: u64) -> ApiError {
    let mut e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message);
    e.retry_after = Some(retry_after_secs);
    e
}

/// What makes two requests the same delivery: the provider's delivery id, else the
/// channel's `id_header`, else — for schemes that sign a timestamp — the signature
/// itself: a replay inside the tolerance carries the same signature, and a new
/// delivery never does. Schemes that sign only the body (`github` without its delivery
/// id, `hmac`) get no signature key: two deliveries of the same bytes are legitimately
/// distinct events there, and a replay cannot be told from a resend (GitHub channels can
/// refuse requests without `X-GitHub-Delivery` instead).
fn dedup_key(
    channel: &ChannelConfig,
    req: &Incoming,
    verified: Verified,
) -> Result<Option<String>, ApiError> {
    let header = |name: &http::HeaderName| {
        let v = req.headers.get(name)?.to_str().ok()?.trim();
        (!v.is_empty()).then(|| v.to_string())
    };
    if let Some(id) = verified
        .delivery_id
        .or_else(|| channel.id_header.as_ref().and_then(header))
    {
        return Ok(Some(id));
    }
    if channel.require_delivery_id {
        return Err(ApiError::bad_request(format!(
            "this channel requires a delivery id ({}); a request without one could be a replay",
            delivery_id_header(channel)
        )));
    }
    Ok(signature_key(channel, req))
}

/// The header a channel's delivery id comes from, for messages.
fn delivery_id_header(channel: &ChannelConfig) -> String {
    match (&channel.id_header, channel.verifier.kind) {
        (Some(h), _) => h.as_str().to_string(),
        (None, kind) => kind.delivery_header().unwrap_or("set id_header").into(),
    }
}

/// `sig:<sha256 of the signature header>`, for schemes that sign a timestamp.
fn signature_key(channel: &ChannelConfig, req: &Incoming) -> Option<String> {
    if !channel.verifier.kind.has_timestamp() {
        return None;
    }
    let signature = req.headers.get(channel.verifier.signature_header()?)?;
    let digest = sha2::Sha256::digest(signature.as_bytes());
    Some(format!("sig:{}", hex::encode(digest)))
}

/// Whether a path suffix has a `.` or `..` segment, as sent or once percent-decoded
/// (`%2e`, `%2E%2e`), also where a decoded `/` or `\\` splits a segment. A service that
/// normalises paths would otherwise serve such a request outside the agent's
/// `--forward` prefix.
pub fn has_dot_segment(suffix: &str) -> bool {
    suffix.split('/').any(|segment| {
        let decoded: Vec<u8> = percent_encoding::percent_decode_str(segment).collect();
        decoded
            .split(|&b| b == b'/' || b == b'\\')
            .any(|part| part == b"." || part == b"..")
    })
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

#[cfg(test)]
mod tests {
    use super::has_dot_segment;

    #[test]
    fn dot_segments_are_found_as_sent_and_percent_encoded() {
        for bad in [
            "/..",
            "/../../admin/delete",
            "/a/./b",
            "/a/%2e%2e/b",
            "/%2E%2e",
            "/%2e",
            "/a/..%2fadmin",
            "/a/%2e%2e%5cadmin",
            "/a/..%5C",
        ] {
            assert!(has_dot_segment(bad), "{bad}");
        }
        for ok in [
            "",
            "/",
            "/a/b",
            "/a..b",
            "/...",
            "/.well-known/x",
            "/a/%2e%2e%2e",
            "/v1.2",
        ] {
            assert!(!has_dot_segment(ok), "{ok}");
        }
    }
}
