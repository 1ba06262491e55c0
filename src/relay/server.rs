//! The relay process: shared state, routes, the accept loop, TLS and graceful stop.
//!
//! warp 0.4 has no TLS of its own, so the routes become a `warp::service` served by
//! hyper-util's connection builder over plain TCP or tokio-rustls. Serving ourselves
//! also lets each request carry its connection's facts (peer address, whether a client
//! certificate was shown) as a request extension that filters read.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use warp::Filter;

use crate::common::config::Config;
use crate::common::shutdown::Shutdown;
use crate::relay::api_error::ApiError;
use crate::relay::state::{ConnInfo, Relay};
use crate::storage::StorageError;

/// How long a client may take to send request headers (slowloris guard).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head (request line and headers) accepted over HTTP/1; larger ones
/// get 431. Headers are stored with the event, and `max_body_bytes` does not cover them.
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
    Log { dir: String, cause: StorageError },
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {cause}")]
    Bind {
        addr: SocketAddr,
        cause: std::io::Error,
    },
    #[error("TLS: {0}")]
    Tls(String),
}

/// A bound, ready relay.
pub struct Server {
    pub relay: Arc<Relay>,
    listener: TcpListener,
    tls: Option<(TlsAcceptor, bool)>,
}

impl Server {
    /// Opens the log and binds the listen address (port 0 picks a free port).
    pub async fn bind(config: Config, shutdown: Shutdown) -> Result<Server, StartError> {
        let dir = config.server.data_dir.clone();
        let reserve = config.server.disk_reserve_bytes;
        let log = crate::storage::open_configured(&config.storage, &dir, reserve)
            .await
            .map_err(|cause| StartError::Log {
                dir: crate::storage::location(&config.storage, &dir),
                cause,
            })?;
        let tls = match &config.server.tls {
            Some(t) => {
                let cfg = crate::common::tls::server_config(t).map_err(|e| StartError::Tls(e.0))?;
                Some((TlsAcceptor::from(cfg), t.client_ca.is_some()))
            }
            None => None,
        };
        let addr = config.server.listen;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|cause| StartError::Bind { addr, cause })?;
        for c in &config.channels {
            if c.verifier.kind == crate::common::verify::SchemeKind::None {
                tracing::warn!(channel = %c.name, "scheme \"none\": this channel accepts unsigned webhooks from anyone who can reach it");
            }
        }
        Ok(Server {
            relay: Arc::new(Relay::new(config, log, shutdown)),
            listener,
            tls,
        })
    }

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
        let routes = routes(relay.clone());
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .max_buf_size(MAX_HEADER_BYTES)
            // A client may shut its write side once the request is sent; without this,
            // hyper drops the request (and the client never hears its offset).
            .half_close(true);
        let builder = Arc::new(builder);

        let sweeper = tokio::spawn(crate::relay::maintenance::run(relay.clone()));
        loop {
            let (tcp, peer) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = relay.shutdown.wait() => break,
            };
            let _ = tcp.set_nodelay(true);
            let routes = routes.clone();
            let builder = builder.clone();
            let watcher = graceful.watcher();
            let tls = self.tls.clone();
            tokio::spawn(async move {
                match tls {
                    None => {
                        let info = ConnInfo {
                            peer,
                            client_cert: false,
                        };
                        let conn = builder.serve_connection_with_upgrades(
                            TokioIo::new(tcp),
                            ConnService {
                                inner: warp::service(routes),
                                info,
                            },
                        );
                        let _ = watcher.watch(conn.into_owned()).await;
                    }
                    Some((acceptor, _)) => {
                        let stream =
                            match tokio::time::timeout(HEADER_READ_TIMEOUT, acceptor.accept(tcp))
                                .await
                            {
                                Ok(Ok(s)) => s,
                                Ok(Err(e)) => {
                                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                    return;
                                }
                                Err(_) => return,
                            };
                        let client_cert = stream
                            .get_ref()
                            .1
                            .peer_certificates()
                            .is_some_and(|c| !c.is_empty());
                        let info = ConnInfo { peer, client_cert };
                        let conn = builder.serve_connection_with_upgrades(
                            TokioIo::new(stream),
                            ConnService {
                                inner: warp::service(routes),
                                info,
                            },
                        );
                        let _ = watcher.watch(conn.into_owned()).await;
                    }
                }
            });
        }
        drop(self.listener);
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
        relay.log.close().await
    }
}

/// The routes as a hyper service for one connection, tagging requests with [`ConnInfo`].
#[derive(Clone)]
struct ConnService<S> {
    inner: S,
    info: ConnInfo,
}

impl<S> hyper::service::Service<http::Request<hyper::body::Incoming>> for ConnService<S>
where
    S: tower_service::Service<http::Request<hyper::body::Incoming>> + Clone,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn call(&self, mut req: http::Request<hyper::body::Incoming>) -> Self::Future {
        req.extensions_mut().insert(self.info);
        if req.headers().contains_key(http::header::UPGRADE) {
            let on = hyper::upgrade::on(&mut req);
            req.extensions_mut()
                .insert(crate::relay::stream::socket::PendingUpgrade::new(on));
        }
        // warp's service is ready at all times and cheap to clone.
        self.inner.clone().call(req)
    }
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
        warp::path!("metrics").and(warp::get()).map(move || {
            let text = relay
                .metrics
                .render(relay.log.as_ref(), &relay.channel_names());
            let mut resp = http::Response::new(text.into());
            resp.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            resp
        })
    };
    crate::relay::ingest::route(relay.clone())
        .or(crate::relay::stream::route(relay.clone()))
        .unify()
        .or(crate::relay::admin::routes(relay.clone()))
        .unify()
        .or(health)
        .unify()
        .or(metrics)
        .unify()
        .recover(|rejection: warp::Rejection| async move {
            Ok::<_, Infallible>(rejection_to_error(rejection))
        })
        .unify()
        .map(|r: warp::reply::Response| r)
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
