//! Forwarding one stored event to the local service, byte for byte (guarantee 5).
//!
//! The request is rebuilt from the stored [`Record`]: the original method, the
//! forward URL with the event's path suffix and query appended, every stored header
//! except the hop-by-hop ones (they described the provider's connection to the relay,
//! not this one), and the exact body bytes — the body is never parsed. Three headers
//! are added: `X-Hookrelay-Channel`, `X-Hookrelay-Offset` and `X-Hookrelay-Event-Id`
//! (the record id, stable across redeliveries, so the service can deduplicate: the
//! agent delivers at least once).
//!
//! Failures are sorted by whether trying again can help. Connection errors, 408, 425,
//! 429 and 5xx are the service being busy or down, so they are retried with
//! exponential backoff and full jitter (a `Retry-After` wins); any other non-2xx is
//! the service refusing this event, which no retry changes, so it is given up at once
//! and the stream goes on.
//!
//! The request goes out through hyper-util's pooled client (over hyper-rustls for an
//! https target), not a higher-level client, so that the request target is the stored
//! bytes: the path suffix and query are not re-parsed or re-encoded (`'` stays `'`,
//! `/./` stays `/./`), and nothing is added that the provider did not send (no default
//! `Accept` or `User-Agent`). It is also the cheapest path per request, which matters
//! when an agent drains a backlog.
//!
//! Known limits: header names reach the service in lower case and grouped by name
//! (values of one name keep their order; HTTP header names are case-insensitive), and
//! `Expect` is dropped (the relay already read the body).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use reqwest::Url;

use crate::agent::backoff::{Backoff, DELIVERY_BASE_DELAY, DELIVERY_MAX_DELAY};
use crate::agent::delivery::{DeliverySettings, ExtraHeader};
use crate::agent::metrics::{Answer, ChannelMetrics};
use crate::agent::quickack::QuickAckConnector;
use crate::common::event::Record;
use crate::common::shutdown::Shutdown;

/// Header naming the channel of the forwarded event.
pub const HEADER_CHANNEL: &str = "x-hookrelay-channel";
/// Header carrying the event's offset in its channel.
pub const HEADER_OFFSET: &str = "x-hookrelay-offset";
/// Header carrying the event id (an idempotency key, stable across redeliveries).
pub const HEADER_EVENT_ID: &str = "x-hookrelay-event-id";

/// How the detail of an attempt that got no response head in time starts
/// ([`Attempt::answer`] tells a timeout from other transport errors by it).
pub const TIMEOUT_DETAIL_PREFIX: &str = "timed out";

/// Default attempts per event before it is given up.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 10;
/// Longest one attempt may take (connect, send, response head) before it counts as a
/// connection error and is retried, unless `--timeout` says otherwise.
pub const ATTEMPT_TIMEOUT: Duration =
    Duration::from_secs(crate::agent::delivery::DEFAULT_TIMEOUT_SECS as u64);
/// Longest a connect to the local service may take, TCP and TLS handshake together.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// TCP keepalive on connections to the local service: idle time before the first
/// probe and between probes, so that a pooled connection to a vanished host is
/// noticed while idle rather than by a request that times out on it.
pub const TCP_KEEPALIVE: Duration = Duration::from_secs(15);
/// Unanswered keepalive probes before the connection is dropped.
pub const TCP_KEEPALIVE_RETRIES: u32 = 3;
/// Longest the agent reads a response body it throws away, once the status is in.
pub const RESPONSE_DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// How long an idle pooled connection to the local service is kept.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Response body bytes read (and dropped) so that the connection can be reused; a
/// service that answers with more is cut off and its connection closed instead.
pub const RESPONSE_DRAIN_LIMIT_BYTES: usize = 1024 * 1024;

/// Headers that describe one connection rather than the message (RFC 9110 §7.6.1),
/// plus the ones the forwarding connection sets itself.
const NOT_FORWARDED: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "expect",
    HEADER_CHANNEL,
    HEADER_OFFSET,
    HEADER_EVENT_ID,
];

/// A forward target that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// The `--forward` URL is not http(s) (its query and userinfo are redacted).
    #[error("forward URL {0:?} is not an http:// or https:// URL")]
    BadUrl(String),
    /// The HTTP client could not be built (TLS setup, CA file).
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// How one event's delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The service answered 2xx.
    Delivered {
        /// The 2xx status.
        status: u16,
        /// Attempts it took.
        attempts: u32,
    },
    /// Given up: a refusal (non-retryable status) or retries exhausted.
    Failed {
        /// Why, for a person (the dead letter's reason).
        reason: String,
        /// Attempts made.
        attempts: u32,
        /// The last status the service answered, if any.
        last_status: Option<u16>,
    },
    /// Shutdown came while waiting to retry; the event was not acknowledged.
    Abandoned,
    /// No route's filters took the event: acknowledged without a delivery.
    Filtered,
}

/// The result of a single attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// 2xx.
    Success(u16),
    /// Worth retrying: a connection error (`status` None) or 408/425/429/5xx.
    Retry {
        /// The status, or `None` for a connection error.
        status: Option<u16>,
        /// What happened, for the log.
        detail: String,
        /// The service's `Retry-After`, if it sent one.
        retry_after: Option<Duration>,
    },
    /// A refusal no retry will change (3xx, other 4xx, or an unbuildable request).
    Reject {
        /// The status, or `None` when the request could not be built.
        status: Option<u16>,
        /// What happened, for the log and the dead letter.
        detail: String,
    },
}

impl Attempt {
    /// What the service answered, for the metrics: a status, or a timeout or other
    /// error when it sent none.
    pub fn answer(&self) -> Answer {
        match self {
            Attempt::Success(s) => Answer::Status(*s),
            Attempt::Retry {
                status: Some(s), ..
            }
            | Attempt::Reject {
                status: Some(s), ..
            } => Answer::Status(*s),
            Attempt::Retry { detail, .. } if detail.starts_with(TIMEOUT_DETAIL_PREFIX) => {
                Answer::Timeout
            }
            Attempt::Retry { .. } | Attempt::Reject { .. } => Answer::Error,
        }
    }
}

/// Whether a status is worth retrying.
pub fn retryable_status(status: u16) -> bool {
    matches!(status, 408 | 425 | 429) || (500..600).contains(&status)
}

/// One request, ready to be sent (again).
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The event's method.
    pub method: Method,
    /// The forward URL joined with the event's path suffix and query, as stored.
    pub uri: Uri,
    /// The event's headers (hop-by-hop ones dropped) plus the `X-Hookrelay-*` ones.
    pub headers: HeaderMap,
    /// The exact body bytes.
    pub body: Bytes,
}

/// The forward URL, split once into the parts every request reuses.
#[derive(Debug, Clone)]
struct Base {
    scheme: Scheme,
    authority: Authority,
    /// The URL's path (as the URL parser normalised it: it is configuration, not an
    /// event).
    path: String,
    /// The URL's own query; it comes before the event's.
    query: Option<String>,
    /// `Authorization: Basic` from the URL's userinfo, sent when the event has no
    /// `Authorization` of its own.
    basic_auth: Option<HeaderValue>,
    /// Scheme, host, port and path, for logs: never userinfo or query.
    display: String,
}

type HttpClient = hyper_util::client::legacy::Client<Connector, Full<Bytes>>;

/// The http/https connector under one [`CONNECT_TIMEOUT`] for TCP connect and TLS
/// handshake together: `HttpConnector`'s own timeout stops at TCP, and a service that
/// accepts but never finishes the handshake would otherwise hold a connect (and, once
/// the pool hands the request another connection, a background task) indefinitely.
#[derive(Debug, Clone)]
struct Connector {
    inner: HttpsConnector<QuickAckConnector>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower_service::Service<Uri> for Connector {
    type Response = <HttpsConnector<QuickAckConnector> as tower_service::Service<Uri>>::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let connecting = self.inner.call(dst);
        Box::pin(async move {
            match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
                Ok(done) => done,
                Err(_) => Err(Box::new(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "connect timed out",
                )) as BoxError),
            }
        })
    }
}

/// Delivers events to one local service over a reused connection pool.
#[derive(Debug, Clone)]
pub struct Forwarder {
    client: HttpClient,
    base: Arc<Base>,
    max_attempts: u32,
    /// Longest one attempt may take.
    timeout: Duration,
    /// Headers set on every request (`--header`).
    extra: Arc<[ExtraHeader]>,
}

impl Forwarder {
    /// A forwarder to `base` (http:// or https://, trusting the web PKI roots)
    /// keeping up to `pool` idle connections.
    pub fn new(base: &str, max_attempts: u32, pool: usize) -> Result<Forwarder, ForwardError> {
        Self::with_settings(base, max_attempts, pool, &DeliverySettings::default())
    }

    /// Like [`Forwarder::new`], with a route's timeout, CA and extra headers.
    pub fn with_settings(
        base: &str,
        max_attempts: u32,
        pool: usize,
        settings: &DeliverySettings,
    ) -> Result<Forwarder, ForwardError> {
        let base = parse_base(base)?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        http.set_keepalive(Some(TCP_KEEPALIVE));
        http.set_keepalive_interval(Some(TCP_KEEPALIVE));
        http.set_keepalive_retries(Some(TCP_KEEPALIVE_RETRIES));
        let tls = crate::common::tls::client_config(&crate::common::tls::TlsFiles {
            ca_cert: settings.ca_cert.as_deref(),
            client_cert: None,
        })
        .map_err(|e| ForwardError::Client(format!("TLS setup: {e}")))?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(Arc::unwrap_or_clone(tls))
            .https_or_http()
            .enable_all_versions()
            .wrap_connector(QuickAckConnector { inner: http });
        let connector = Connector { inner: connector };
        let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_max_idle_per_host(pool.max(1))
            .build(connector);
        Ok(Forwarder {
            client,
            base: Arc::new(base),
            max_attempts: max_attempts.max(1),
            timeout: settings.timeout,
            extra: settings.headers.clone().into(),
        })
    }

    /// The configured target (for logs; userinfo and query are not shown).
    pub fn target(&self) -> String {
        self.base.display.clone()
    }

    /// Builds the request for `record` (delivered as event `offset`). A path suffix
    /// with a dot segment is refused (see [`leaves_prefix`]): the request would leave
    /// the forward URL's path.
    pub fn prepare(&self, record: Record, offset: u64) -> Result<Prepared, String> {
        if let Some(why) = leaves_prefix(&record.path) {
            return Err(format!(
                "the stored path suffix has {why}, which could leave the forward path {:?}: not sent",
                self.base.path
            ));
        }
        let method = Method::from_bytes(record.method.as_bytes())
            .map_err(|_| format!("stored method {:?} is not valid", record.method))?;
        let target = path_and_query(
            &self.base.path,
            self.base.query.as_deref(),
            &record.path,
            &record.query,
        );
        let target = PathAndQuery::try_from(target)
            .map_err(|_| "stored path or query is not a valid request target".to_string())?;
        let uri = Uri::builder()
            .scheme(self.base.scheme.clone())
            .authority(self.base.authority.clone())
            .path_and_query(target)
            .build()
            .map_err(|e| format!("cannot build the request URI: {e}"))?;
        let mut headers = forwarded_headers(&record.headers);
        if let Some(auth) = &self.base.basic_auth {
            if !headers.contains_key(http::header::AUTHORIZATION) {
                headers.insert(http::header::AUTHORIZATION, auth.clone());
            }
        }
        for h in self.extra.iter() {
            headers.insert(h.name.clone(), h.value.clone());
        }
        headers.insert(
            HeaderName::from_static(HEADER_CHANNEL),
            HeaderValue::from_str(&record.channel)
                .map_err(|_| "channel name is not a header value".to_string())?,
        );
        headers.insert(HeaderName::from_static(HEADER_OFFSET), offset.into());
        // Explicit even for an empty body, which the client would otherwise send bare.
        headers.insert(http::header::CONTENT_LENGTH, record.body.len().into());
        headers.insert(
            HeaderName::from_static(HEADER_EVENT_ID),
            HeaderValue::from_str(&record.id)
                .map_err(|_| "event id is not a header value".to_string())?,
        );
        Ok(Prepared {
            method,
            uri,
            headers,
            body: Bytes::from(record.body),
        })
    }

    /// Sends one attempt.
    pub async fn attempt(&self, p: &Prepared) -> Attempt {
        let mut req = Request::new(Full::new(p.body.clone()));
        *req.method_mut() = p.method.clone();
        *req.uri_mut() = p.uri.clone();
        *req.headers_mut() = p.headers.clone();
        let resp = match tokio::time::timeout(self.timeout, self.client.request(req)).await {
            Ok(Ok(resp)) => resp,
            Ok(Err(e)) => {
                return Attempt::Retry {
                    status: None,
                    detail: describe(&e),
                    retry_after: None,
                }
            }
            Err(_) => {
                return Attempt::Retry {
                    status: None,
                    detail: format!(
                        "{TIMEOUT_DETAIL_PREFIX}: no response head within {} s",
                        self.timeout.as_secs_f64()
                    ),
                    retry_after: None,
                }
            }
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| crate::agent::retry_after::parse(v, crate::common::time::now_unix_ms()));
        // The answer is the status. The body is read only so that the connection can be
        // reused: one that stalls or breaks costs the connection, never the verdict.
        let _ = tokio::time::timeout(RESPONSE_DRAIN_TIMEOUT, drain(resp.into_body())).await;
        if (200..300).contains(&status) {
            Attempt::Success(status)
        } else if retryable_status(status) {
            Attempt::Retry {
                status: Some(status),
                detail: format!("http {status}"),
                retry_after,
            }
        } else {
            Attempt::Reject {
                status: Some(status),
                detail: format!("http {status}"),
            }
        }
    }

    /// Delivers one event, retrying as long as it can help, up to the attempt limit,
    /// counting each attempt into `probe`. Shutdown during a wait between attempts
    /// abandons the event (it stays unacked and is redelivered later).
    pub async fn deliver(
        &self,
        record: Record,
        offset: u64,
        shutdown: &Shutdown,
        probe: Option<&ChannelMetrics>,
    ) -> Outcome {
        let event = EventLabel::of(&record);
        let prepared = match self.prepare(record, offset) {
            Ok(p) => p,
            Err(reason) => {
                return Outcome::Failed {
                    reason,
                    attempts: 0,
                    last_status: None,
                }
            }
        };
        let mut backoff = Backoff::new(DELIVERY_BASE_DELAY, DELIVERY_MAX_DELAY);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let started = std::time::Instant::now();
            let attempt = self.attempt(&prepared).await;
            if let Some(p) = probe {
                p.attempted(attempt.answer(), started.elapsed());
            }
            let (status, detail, retry_after) = match attempt {
                Attempt::Success(status) => {
                    if let Some(p) = probe {
                        p.delivered(event.received_at_ms);
                    }
                    return Outcome::Delivered { status, attempts };
                }
                Attempt::Reject { status, detail } => {
                    return Outcome::Failed {
                        reason: detail,
                        attempts,
                        last_status: status,
                    }
                }
                Attempt::Retry {
                    status,
                    detail,
                    retry_after,
                } => (status, detail, retry_after),
            };
            if attempts >= self.max_attempts {
                return Outcome::Failed {
                    reason: format!("{detail} after {attempts} attempts"),
                    attempts,
                    last_status: status,
                };
            }
            if let Some(p) = probe {
                p.retried();
            }
            let jittered = backoff.next_delay();
            let delay = retry_after.unwrap_or(jittered);
            event.log_retry(offset, &detail, attempts, delay, &prepared.body);
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = shutdown.wait() => return Outcome::Abandoned,
            }
        }
    }
}

/// What the log lines about one event carry besides its offset.
struct EventLabel {
    id: String,
    channel: String,
    received_at_ms: u64,
}

impl EventLabel {
    fn of(record: &Record) -> EventLabel {
        EventLabel {
            id: record.id.clone(),
            channel: record.channel.clone(),
            received_at_ms: record.received_at_ms,
        }
    }

    /// The info line of an attempt that failed and will be tried again.
    fn log_retry(&self, offset: u64, detail: &str, attempt: u32, delay: Duration, body: &[u8]) {
        tracing::info!(
            channel = %self.channel,
            offset,
            id = %self.id,
            status = %detail,
            attempt,
            delay_ms = delay.as_millis() as u64,
            body = crate::common::logs::body_field(body),
            "retrying"
        );
    }
}

/// Parses and splits the forward URL; only http and https make sense for a local
/// service.
fn parse_base(base: &str) -> Result<Base, ForwardError> {
    let bad = || ForwardError::BadUrl(crate::common::redact::redact(base));
    let url = Url::parse(base).map_err(|_| bad())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad());
    }
    let host = url.host_str().filter(|h| !h.is_empty()).ok_or_else(bad)?;
    let authority = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    };
    let display = format!("{}://{authority}{}", url.scheme(), url.path());
    let basic_auth = if url.username().is_empty() && url.password().is_none() {
        None
    } else {
        use base64::Engine as _;
        let decode = |s: &str| percent_encoding::percent_decode_str(s).collect::<Vec<u8>>();
        let mut pair = decode(url.username());
        pair.push(b':');
        pair.extend(decode(url.password().unwrap_or("")));
        let token = base64::engine::general_purpose::STANDARD.encode(pair);
        let mut value = HeaderValue::try_from(format!("Basic {token}")).map_err(|_| bad())?;
        value.set_sensitive(true);
        Some(value)
    };
    Ok(Base {
        scheme: Scheme::try_from(url.scheme()).map_err(|_| bad())?,
        authority: Authority::try_from(authority).map_err(|_| bad())?,
        path: url.path().to_string(),
        query: url.query().filter(|q| !q.is_empty()).map(str::to_string),
        basic_auth,
        display,
    })
}

/// Rounds of percent-decoding a path suffix is checked through: a service, or a proxy
/// in front of it, may decode more than once (`%252e` -> `%2e` -> `.`).
const PATH_DECODE_ROUNDS: usize = 3;

/// Why appending the stored path `suffix` to the forward path could reach outside it,
/// if it could: a segment that is `.` or `..` as the service may see it. That is also
/// after percent-decoding (up to [`PATH_DECODE_ROUNDS`] times, so `%2e%2e` and
/// `%252e%252e` count), with a backslash or a decoded `%2f`/`%5c` splitting segments
/// as some servers do, and without `;` path parameters, which some servers drop
/// (`..;x` is `..` to them). The suffix is otherwise sent as stored, so this only has
/// to catch the climb itself.
fn leaves_prefix(suffix: &str) -> Option<&'static str> {
    let mut text = std::borrow::Cow::Borrowed(suffix);
    for _ in 0..=PATH_DECODE_ROUNDS {
        if has_dot_segment(&text) {
            return Some("a dot segment (\".\" or \"..\", maybe percent-encoded)");
        }
        let decoded = percent_encoding::percent_decode_str(&text).decode_utf8_lossy();
        if decoded == text {
            return None;
        }
        text = std::borrow::Cow::Owned(decoded.into_owned());
    }
    Some("percent-encoding nested too deep to check for dot segments")
}

/// Whether `path`, split at `/` and `\`, has a `.` or `..` segment (ignoring `;params`).
fn has_dot_segment(path: &str) -> bool {
    path.split(['/', '\\']).any(|segment| {
        let name = segment.split(';').next().unwrap_or_default();
        name == "." || name == ".."
    })
}

/// The request target: the base path + the event's `path` suffix + the base query and
/// the event's `query`, joined by `&`. The suffix has a leading `/` or is empty; a
/// trailing `/` of the base is not doubled. The event's parts are copied as stored.
fn path_and_query(base_path: &str, base_query: Option<&str>, path: &str, query: &str) -> String {
    let mut out = String::with_capacity(base_path.len() + path.len() + query.len() + 2);
    out.push_str(base_path);
    if out.ends_with('/') && path.starts_with('/') {
        out.pop();
    }
    out.push_str(path);
    if out.is_empty() {
        out.push('/');
    }
    let queries = base_query
        .into_iter()
        .chain(Some(query).filter(|q| !q.is_empty()));
    for (i, q) in queries.enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(q);
    }
    out
}

/// Reads and drops a response body so that its connection goes back to the pool. A
/// body past [`RESPONSE_DRAIN_LIMIT_BYTES`] is abandoned: dropping it closes the
/// connection, which is cheaper than reading what nobody looks at.
async fn drain(mut body: hyper::body::Incoming) {
    let mut seen = 0usize;
    while let Some(Ok(frame)) = body.frame().await {
        if let Some(data) = frame.data_ref() {
            seen += data.len();
            if seen > RESPONSE_DRAIN_LIMIT_BYTES {
                return;
            }
        }
    }
}

/// The stored headers to forward, in order, without hop-by-hop ones (including any
/// named in `Connection`), `Host` and `Content-Length`.
pub fn forwarded_headers(stored: &[(String, Vec<u8>)]) -> HeaderMap {
    let named_by_connection: Vec<String> = stored
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
        .flat_map(|(_, v)| {
            String::from_utf8_lossy(v)
                .split(',')
                .map(|t| t.trim().to_ascii_lowercase())
                .filter(|t| !t.is_empty())
                .collect::<Vec<_>>()
        })
        .collect();
    let mut out = HeaderMap::with_capacity(stored.len() + 3);
    for (name, value) in stored {
        // Compared without allocating: this runs for every header of every delivery.
        if NOT_FORWARDED.iter().any(|h| h.eq_ignore_ascii_case(name))
            || named_by_connection
                .iter()
                .any(|h| h.eq_ignore_ascii_case(name))
        {
            continue;
        }
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value),
        ) {
            (Ok(n), Ok(v)) => {
                out.append(n, v);
            }
            _ => {
                tracing::warn!(header = %name.to_ascii_lowercase(), "stored header is not valid HTTP; not forwarded")
            }
        }
    }
    out
}

/// A connection-level error in a few words, without the URL. A failed TLS handshake
/// names its problem (an unknown issuer, a name mismatch), which is what a user needs
/// to fix a `--forward-ca-cert`.
fn describe(e: &hyper_util::client::legacy::Error) -> String {
    if let Some(tls) = tls_problem(e) {
        return format!("TLS handshake failed: {tls}");
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return io.kind().to_string();
        }
        source = s.source();
    }
    if e.is_connect() {
        "connect error".into()
    } else {
        "request error".into()
    }
}

/// The rustls error somewhere in `e`'s chain. An `io::Error`'s `source()` skips the
/// error it wraps, so wrapped errors are looked into as well.
fn tls_problem<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut at = e;
    loop {
        if let Some(tls) = at.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        let wrapped = at
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|inner| inner as &(dyn std::error::Error + 'static));
        at = match wrapped {
            Some(inner) => inner,
            None => at.source()?,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_tell_a_timeout_from_other_errors() {
        let retry = |status, detail: String| Attempt::Retry {
            status,
            detail,
            retry_after: None,
        };
        assert_eq!(Attempt::Success(201).answer(), Answer::Status(201));
        assert_eq!(
            retry(Some(503), "http 503".into()).answer(),
            Answer::Status(503)
        );
        let timeout = format!("{TIMEOUT_DETAIL_PREFIX}: no response head within 1 s");
        assert_eq!(retry(None, timeout).answer(), Answer::Timeout);
        assert_eq!(
            retry(None, "connection refused".into()).answer(),
            Answer::Error
        );
        let reject = Attempt::Reject {
            status: Some(400),
            detail: "http 400".into(),
        };
        assert_eq!(reject.answer(), Answer::Status(400));
    }

    /// A stored event with this path suffix and query, and nothing else of note.
    fn record(path: &str, query: &str) -> Record {
        Record {
            id: "id".into(),
            channel: "c".into(),
            offset: 1,
            received_at_ms: 0,
            method: "POST".into(),
            path: path.into(),
            query: query.into(),
            headers: Vec::new(),
            body: Vec::new(),
            peer: "127.0.0.1:1".into(),
            scheme: "none".into(),
        }
    }

    /// The URI the forwarder builds for `base` + `path` + `query`.
    fn uri(base: &str, path: &str, query: &str) -> String {
        let fwd = Forwarder::new(base, 1, 1).expect("forwarder");
        fwd.prepare(record(path, query), 1)
            .expect("prepare")
            .uri
            .to_string()
    }

    #[test]
    fn urls_join_suffix_and_query_without_reencoding() {
        let cases = [
            ("http://h:1", "", "", "http://h:1/"),
            (
                "http://h:1",
                "/a/b",
                "x=1&y=%20",
                "http://h:1/a/b?x=1&y=%20",
            ),
            ("http://h:1/", "/a", "", "http://h:1/a"),
            ("http://h:1/hook", "/a", "q", "http://h:1/hook/a?q"),
            ("http://h:1/hook/", "/a", "", "http://h:1/hook/a"),
            (
                "http://h:1/hook?k=v",
                "/a",
                "q=1",
                "http://h:1/hook/a?k=v&q=1",
            ),
            ("http://h:1/hook?k=v", "", "", "http://h:1/hook?k=v"),
            (
                "http://h:1/x",
                "/%E2%9C%93",
                "a=%2F&b",
                "http://h:1/x/%E2%9C%93?a=%2F&b",
            ),
            // What a URL parser would rewrite is sent as stored (dot segments are
            // refused instead: see `paths_that_leave_the_prefix_are_refused`).
            (
                "http://h:1/x",
                "/a//b/.c/d./..e/%7E",
                "q='it''s'&r=!$()*+,;:@/?&s=/../",
                "http://h:1/x/a//b/.c/d./..e/%7E?q='it''s'&r=!$()*+,;:@/?&s=/../",
            ),
            ("https://[::1]:8443/h", "/p", "", "https://[::1]:8443/h/p"),
            ("https://h/", "", "", "https://h/"),
        ];
        for (base, path, query, want) in cases {
            assert_eq!(uri(base, path, query), want, "{base} + {path} + {query}");
        }
    }

    #[test]
    fn paths_that_leave_the_prefix_are_refused() {
        let fwd = Forwarder::new("http://h:1/webhook", 1, 1).expect("forwarder");
        for path in [
            "/../../admin/delete",
            "/..",
            "/.",
            "/./a",
            "..",
            "../x",
            "/a/../../b",
            "/%2e%2e/admin",
            "/%2E%2e/admin",
            "/.%2E/admin",
            "/a/%2e",
            "/%252e%252e/admin",
            "/a/..%2fadmin",
            "/a/..%2Fadmin",
            "/a/%2e%2e%2f%2e%2e%2fadmin",
            "/a/..%5cadmin",
            "/a\\..\\admin",
            "/..;/admin",
            "/..;jsessionid=1/admin",
        ] {
            let reason = fwd.prepare(record(path, ""), 1).unwrap_err();
            assert!(reason.contains("dot segment"), "{path}: {reason}");
            assert!(reason.contains("\"/webhook\""), "{reason}");
        }
        let nested = fwd.prepare(record("/%2525252525", ""), 1).unwrap_err();
        assert!(nested.contains("too deep"), "{nested}");
        for path in [
            "", "/", "/a.b", "/..a/b..", "/a/.../b", "/%2e%2ea", "/a%2fb", "/;/x",
        ] {
            assert!(fwd.prepare(record(path, ""), 1).is_ok(), "{path}");
        }
    }

    #[tokio::test]
    async fn a_refused_path_fails_without_an_attempt() {
        // Port 1 refuses: an attempt would fail with a connection error instead.
        let fwd = Forwarder::new("http://127.0.0.1:1/webhook", 3, 1).expect("forwarder");
        let outcome = fwd
            .deliver(record("/../admin", ""), 1, &Shutdown::new(), None)
            .await;
        match outcome {
            Outcome::Failed {
                reason,
                attempts: 0,
                last_status: None,
            } => assert!(reason.contains("dot segment"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn userinfo_becomes_basic_auth_unless_the_event_has_its_own() {
        let fwd = Forwarder::new("http://us%40er:p%3Aw@h:1/x", 1, 1).expect("forwarder");
        assert_eq!(fwd.target(), "http://h:1/x");
        let mut record = record("", "");
        let p = fwd.prepare(record.clone(), 1).expect("prepare");
        // base64("us@er:p:w")
        assert_eq!(p.headers["authorization"], "Basic dXNAZXI6cDp3");
        assert!(p.headers["authorization"].is_sensitive());
        assert!(!p.uri.to_string().contains('@'));
        record.headers = vec![("Authorization".into(), b"Bearer event".to_vec())];
        let p = fwd.prepare(record, 1).expect("prepare");
        assert_eq!(p.headers["authorization"], "Bearer event");
    }

    #[test]
    fn hop_by_hop_headers_are_dropped_and_repeats_kept() {
        let stored: Vec<(String, Vec<u8>)> = [
            ("host", &b"relay.example"[..]),
            ("content-length", b"3"),
            ("connection", b"keep-alive, X-Secret-Hop"),
            ("x-secret-hop", b"1"),
            ("keep-alive", b"timeout=5"),
            ("transfer-encoding", b"chunked"),
            ("te", b"trailers"),
            ("upgrade", b"h2c"),
            ("proxy-authorization", b"Basic x"),
            ("x-a", b"1"),
            ("x-hookrelay-offset", b"999"),
            ("content-type", b"application/json"),
            ("x-a", b"2"),
            ("x-latin", b"caf\xe9"),
            ("bad name", b"v"),
        ]
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_vec()))
        .collect();
        let h = forwarded_headers(&stored);
        let names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, vec!["x-a", "content-type", "x-latin"]);
        let xa: Vec<&[u8]> = h.get_all("x-a").iter().map(|v| v.as_bytes()).collect();
        assert_eq!(xa, vec![&b"1"[..], b"2"]);
        assert_eq!(h["x-latin"].as_bytes(), b"caf\xe9");
    }

    #[test]
    fn statuses_are_sorted_by_retryability() {
        for s in [408, 425, 429, 500, 502, 503, 504, 599] {
            assert!(retryable_status(s), "{s}");
        }
        for s in [200, 301, 400, 401, 403, 404, 409, 410, 413, 422] {
            assert!(!retryable_status(s), "{s}");
        }
    }

    #[test]
    fn bad_forward_urls_are_refused_without_secrets() {
        for u in ["ftp://h/x", "not a url", "http://", "ws://h/"] {
            assert!(parse_base(u).is_err(), "{u}");
        }
        let e = parse_base("gopher://user:pw@h/?key=s3cret").unwrap_err();
        assert!(!e.to_string().contains("s3cret") && !e.to_string().contains("pw"));
    }
}
