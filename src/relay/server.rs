//! The relay process: binding, the accept loop, graceful stop, and the routes.
//!
//! warp 0.4 has no TLS of its own, so the routes become a `warp::service` served by
//! hyper-util's connection builder over plain TCP or tokio-rustls
//! ([`crate::relay::listen`], which also bounds what each connection may hold). Serving
//! ourselves also lets each request carry its connection's facts (peer address, whether
//! a client certificate was shown) as a request extension that filters read.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use warp::Filter;

use crate::common::config::Config;
use crate::common::shutdown::Shutdown;
use crate::relay::api_error::ApiError;
use crate::relay::listen::accept::Acceptor;
use crate::relay::listen::conn::Shared;
use crate::relay::listen::limits::ConnLimits;
use crate::relay::state::Relay;
use crate::storage::StorageError;

/// Largest request head (request line and headers) accepted over HTTP/1; larger ones
/// get 431 (exactly: see `listen::io::HEAD_READ_CHUNK_BYTES`). Headers are stored with
/// the event, and `max_body_bytes` does not cover them.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// How long a graceful stop waits for open HTTP requests before closing them.
pub const GRACEFUL_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the relay could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    // The causes are fields named `cause`, not `source`: a `source` would be both in
    // the message and in the error chain, and `{:#}` would print it twice.
    /// The log could not be opened.
    #[error("cannot open the log in {dir}: {cause}")]
    Log {
        /// The data directory.
        dir: String,
        /// Why.
        cause: StorageError,
    },
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {cause}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        cause: std::io::Error,
    },
    /// The TLS files cannot be used (exit 2).
    #[error("TLS: {0}")]
    Tls(String),
}

/// A bound, ready relay.
pub struct Server {
    /// The shared state, also reachable by the caller (tests, bench).
    pub relay: Arc<Relay>,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
}

impl Server {
    /// Opens the log and binds the listen address (port 0 picks a free port).
    pub async fn bind(config: Config, shutdown: Shutdown) -> Result<Server, StartError> {
        let dir = config.server.data_dir.clone();
        let reserve = config.server.disk_reserve_bytes;
        let channels: Vec<_> = config
            .channels
            .iter()
            .map(|c| (c.name.clone(), c.dedup_window))
            .collect();
        let log = crate::storage::open_configured(&config.storage, &dir, reserve, &channels)
            .await
            .map_err(|cause| StartError::Log {
                dir: crate::storage::location(&config.storage, &dir),
                cause,
            })?;
        let tls = match &config.server.tls {
            Some(t) => {
                let cfg = crate::common::tls::server_config(t).map_err(|e| StartError::Tls(e.0))?;
                Some(TlsAcceptor::from(cfg))
            }
            None => None,
        };
        crate::relay::listen::rlimit::raise_and_log();
        let addr = config.server.listen;
        let listener = crate::relay::listen::accept::bind(addr)
            .map_err(|cause| StartError::Bind { addr, cause })?;
        for c in &config.channels {
            if c.verifier.kind == crate::common::verify::SchemeKind::None {
                tracing::warn!(channel = %c.name, "scheme \"none\": this channel accepts unsigned webhooks from anyone who can reach it");
            }
            let meta = crate::common::verify::HandshakeKind::MetaSubscribe;
            if c.handshakes.kind == Some(meta) && c.handshakes.verify_token.is_none() {
                tracing::warn!(channel = %c.name, "no verify_token: Meta's subscription handshake (GET hub.challenge) will be refused");
            }
        }
        let relay = Arc::new(Relay::new(config, log, shutdown));
        relay.load().await.map_err(|cause| StartError::Log {
            dir: crate::storage::location(&relay.config.storage, &dir),
            cause,
        })?;
        Ok(Server {
            relay,
            listener,
            tls,
        })
    }

    /// The bound address (with the real port when the config asked for port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// `http` or `https`, for the readiness line.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// Serves until the shutdown signal, then drains requests and flushes the log.
    pub async fn run(self) -> Result<(), StorageError> {
        let relay = self.relay.clone();
        let limits = ConnLimits::from_config(&relay.config.server);
        let shared = Arc::new(Shared {
            builder: http_builder(),
            routes: warp::service(routes(relay.clone())),
            tls: self.tls,
            limits,
            budget: relay.body_budget.clone(),
        });
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut acceptor = Acceptor::new(self.listener, limits.max_connections);
        let sweeper = tokio::spawn(crate::relay::maintenance::run(relay.clone()));
        let sampler = tokio::spawn(crate::relay::console::stats::run(relay.clone()));
        // Resets and redrives made through other relay nodes on the same storage.
        let control = tokio::spawn({
            let relay = relay.clone();
            async move { relay.hub.follow_control(relay.log.clone()).await }
        });
        loop {
            let (tcp, peer, permit) = tokio::select! {
                next = acceptor.next() => next,
                _ = relay.shutdown.wait() => break,
            };
            let _ = tcp.set_nodelay(true);
            let conn = crate::relay::listen::conn::serve(
                shared.clone(),
                tcp,
                peer,
                permit,
                graceful.watcher(),
            );
            tokio::spawn(conn);
        }
        drop(acceptor);
        tracing::info!("stopping: no new connections; finishing open requests");
        if tokio::time::timeout(GRACEFUL_STOP_TIMEOUT, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("open requests did not finish in time; closing them");
        }
        // Stream connections were upgraded out of hyper's sight; they close on the signal.
        if !relay.hub.wait_closed(GRACEFUL_STOP_TIMEOUT).await {
            tracing::warn!("agent connections did not close in time");
        }
        sweeper.abort();
        sampler.abort();
        control.abort();
        relay.log.close().await
    }
}

/// hyper's connection builder (HTTP/1 and HTTP/2), configured as every listener uses it.
fn http_builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // The connection's watchdog times heads (`relay::listen::watch`); hyper's
        // own timer would also cut idle keep-alive connections at that bound.
        .header_read_timeout(None)
        .max_buf_size(MAX_HEADER_BYTES)
        // A client may shut its write side once the request is sent; without this,
        // hyper drops the request (and the client never hears its offset).
        .half_close(true);
    builder
}

/// Serves one connection that is already a byte stream (no TLS, no accept loop), with
/// the same hyper settings, limits and routes as [`Server::run`]: how the fuzzer feeds
/// raw request bytes to the relay in-process.
pub async fn serve_stream<T>(relay: Arc<Relay>, io: T, peer: std::net::SocketAddr)
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let shared = Shared {
        builder: http_builder(),
        routes: warp::service(routes(relay.clone())),
        tls: None,
        limits: ConnLimits::from_config(&relay.config.server),
        budget: relay.body_budget.clone(),
    };
    crate::relay::listen::conn::serve_stream(&shared, io, peer).await
}

/// All routes; every outcome, rejections included, is a finished response.
pub fn routes(
    relay: Arc<Relay>,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Infallible> + Clone {
    let health = warp::path!("healthz")
        .and(warp::get())
        .map(|| crate::relay::api_error::json_ok(&serde_json::json!({"status": "ok"})));
    let metrics = {
        let relay = relay.clone();
        warp::path!("metrics").and(warp::get()).then(move || {
            let relay = relay.clone();
            async move {
                let text = relay.render_metrics().await;
                let mut resp = http::Response::new(text.into());
                resp.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("text/plain; version=0.0.4"),
                );
                resp
            }
        })
    };
    let ready = {
        let relay = relay.clone();
        warp::path!("readyz").and(warp::get()).then(move || {
            let relay = relay.clone();
            async move { readyz(&relay).await }
        })
    };
    crate::relay::ingest::route(relay.clone())
        .or(crate::relay::stream::route(relay.clone()))
        .unify()
        .or(crate::relay::console::routes(relay.clone()))
        .unify()
        .or(crate::relay::admin::routes(relay.clone()))
        .unify()
        .or(health)
        .unify()
        .or(metrics)
        .unify()
        .or(ready)
        .unify()
        .recover(|rejection: warp::Rejection| async move {
            Ok::<_, Infallible>(rejection_to_error(rejection))
        })
        .unify()
        .map(|r: warp::reply::Response| r)
}

/// `GET /readyz`: 200 `{"status":"ready"}`, or 503 `unavailable` saying why not.
async fn readyz(relay: &Relay) -> warp::reply::Response {
    use warp::Reply;
    match relay.ready().await {
        Ok(()) => crate::relay::api_error::json_ok(&serde_json::json!({"status": "ready"})),
        Err(why) => {
            ApiError::new(http::StatusCode::SERVICE_UNAVAILABLE, "unavailable", why).into_response()
        }
    }
}

fn rejection_to_error(r: warp::Rejection) -> warp::reply::Response {
    use warp::Reply;
    let err = if r.is_not_found() {
        ApiError::not_found()
    } else if r.find::<warp::reject::MethodNotAllowed>().is_some() {
        ApiError::method_not_allowed("GET")
    } else if r.find::<warp::reject::PayloadTooLarge>().is_some() {
        ApiError::new(
            http::StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the body is too large",
        )
    } else {
        ApiError::bad_request("the request could not be understood")
    };
    err.into_response()
}
