//! The relay process: shared state, routes, the accept loop, TLS and graceful stop.
//!
//! warp 0.4 has no TLS of its own, so the routes become a `warp::service` served by
//! hyper-util's connection builder over plain TCP or tokio-rustls. Serving ourselves
//! also lets each request carry its connection's facts (peer address, whether a client
//! certificate was shown) as a request extension that filters read.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use warp::Filter;

use crate::api_error::ApiError;
use crate::config::{Config, TlsConfig};
use crate::log::{EventLog, LogError};
use crate::metrics::Metrics;
use crate::ratelimit::Bucket;
use crate::shutdown::Shutdown;

/// How long a client may take to send request headers (slowloris guard).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head (request line and headers) accepted over HTTP/1; larger ones
/// get 431. Headers are stored with the event, and `max_body_bytes` does not cover them.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// How long a graceful stop waits for open HTTP requests before closing them.
pub const GRACEFUL_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Facts about the connection a request came on.
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    /// A verified client certificate was presented (TLS with `client_ca` only).
    pub client_cert: bool,
}

/// Everything a request handler needs.
pub struct Relay {
    pub config: Config,
    pub log: EventLog,
    pub metrics: Metrics,
    pub limiters: HashMap<String, Bucket>,
    pub shutdown: Shutdown,
    pub hub: crate::stream::Hub,
}

impl Relay {
    pub fn new(config: Config, log: EventLog, shutdown: Shutdown) -> Relay {
        let limiters = config
            .channels
            .iter()
            .filter_map(|c| c.rate_limit.map(|r| (c.name.clone(), Bucket::new(r))))
            .collect();
        Relay {
            config,
            log,
            metrics: Metrics::new(),
            limiters,
            shutdown,
            hub: crate::stream::Hub::default(),
        }
    }

    /// Names of the configured channels.
    pub fn channel_names(&self) -> Vec<String> {
        self.config
            .channels
            .iter()
            .map(|c| c.name.clone())
            .collect()
    }
}

/// Why the relay could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the log in {dir}: {source}")]
    Log { dir: String, source: LogError },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
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
        let log = EventLog::open(&dir).map_err(|source| StartError::Log {
            dir: dir.display().to_string(),
            source,
        })?;
        let tls = match &config.server.tls {
            Some(t) => Some(tls_acceptor(t)?),
            None => None,
        };
        let addr = config.server.listen;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })?;
        for c in &config.channels {
            if c.verifier.kind == crate::verify::SchemeKind::None {
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
    pub async fn run(self) -> Result<(), LogError> {
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

        let sweeper = tokio::spawn(crate::maintenance::run(relay.clone()));
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
                .insert(crate::stream::socket::PendingUpgrade::new(on));
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
        .map(|| crate::api_error::json_ok(&serde_json::json!({"status": "ok"})));
    let metrics = {
        let relay = relay.clone();
        warp::path!("metrics").and(warp::get()).map(move || {
            let text = relay.metrics.render(&relay.log, &relay.channel_names());
            let mut resp = http::Response::new(text.into());
            resp.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            resp
        })
    };
    crate::ingest::route(relay.clone())
        .or(crate::stream::route(relay.clone()))
        .unify()
        .or(crate::admin::routes(relay.clone()))
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

/// Loads the `[server.tls]` files as `serve` would; `check` uses it so that a config
/// that passes the check also starts.
pub fn validate_tls(t: &TlsConfig) -> Result<(), StartError> {
    tls_acceptor(t).map(|_| ())
}

fn tls_acceptor(t: &TlsConfig) -> Result<(TlsAcceptor, bool), StartError> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    // Errors name the config key and the file, so a person knows which line to fix.
    let read = |key: &str, p: &std::path::Path| {
        std::fs::read(p)
            .map_err(|e| StartError::Tls(format!("{key}: cannot read {}: {e}", p.display())))
    };
    let certs: Vec<CertificateDer<'static>> =
        rustls_pemfile::certs(&mut read("server.tls.cert", &t.cert)?.as_slice())
            .collect::<Result<_, _>>()
            .map_err(|e| StartError::Tls(format!("server.tls.cert: {}: {e}", t.cert.display())))?;
    if certs.is_empty() {
        return Err(StartError::Tls(format!(
            "server.tls.cert: {}: no PEM certificate found",
            t.cert.display()
        )));
    }
    let key: PrivateKeyDer<'static> =
        rustls_pemfile::private_key(&mut read("server.tls.key", &t.key)?.as_slice())
            .map_err(|e| StartError::Tls(format!("server.tls.key: {}: {e}", t.key.display())))?
            .ok_or_else(|| {
                StartError::Tls(format!(
                    "server.tls.key: {}: no PEM private key found",
                    t.key.display()
                ))
            })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| StartError::Tls(e.to_string()))?;
    let builder = match &t.client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            let bad = |e: &dyn std::fmt::Display| {
                StartError::Tls(format!("server.tls.client_ca: {}: {e}", ca.display()))
            };
            for c in rustls_pemfile::certs(&mut read("server.tls.client_ca", ca)?.as_slice()) {
                roots.add(c.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
            }
            if roots.is_empty() {
                return Err(bad(&"no PEM certificate found"));
            }
            // Client certificates are optional at the TLS layer and required per route
            // (only /v1/stream), so providers can still post webhooks without one.
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .allow_unauthenticated()
            .build()
            .map_err(|e| StartError::Tls(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut cfg = builder.with_single_cert(certs, key).map_err(|e| {
        StartError::Tls(format!(
            "server.tls.key: {} does not fit {}: {e}",
            t.key.display(),
            t.cert.display()
        ))
    })?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((TlsAcceptor::from(Arc::new(cfg)), t.client_ca.is_some()))
}
