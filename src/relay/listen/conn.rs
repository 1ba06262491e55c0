//! Serving one accepted connection: TLS handshake under the first-byte deadline, then
//! hyper (HTTP/1 or HTTP/2, with upgrades) raced against the connection's watchdog.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::Watcher;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use crate::relay::listen::budget::BodyBudget;
use crate::relay::listen::io::WatchedIo;
use crate::relay::listen::limits::ConnLimits;
use crate::relay::listen::request_body::RequestBody;
use crate::relay::listen::service::ConnService;
use crate::relay::listen::watch::ConnState;
use crate::relay::state::ConnInfo;

/// What every connection of a listener shares.
pub struct Shared<S> {
    /// hyper's HTTP/1 + HTTP/2 connection builder, configured once.
    pub builder: auto::Builder<TokioExecutor>,
    /// The routes as a service.
    pub routes: S,
    /// The TLS acceptor, when the relay serves HTTPS.
    pub tls: Option<TlsAcceptor>,
    /// Timeouts and sizes every connection is held to.
    pub limits: ConnLimits,
    /// The relay-wide budget of request body bytes.
    pub budget: Arc<BodyBudget>,
}

/// The routes as one connection serves them: the service's bounds in one place.
pub trait Routes<B>:
    tower_service::Service<
        http::Request<RequestBody>,
        Response = http::Response<B>,
        Error = std::convert::Infallible,
        Future: Send + 'static,
    > + Clone
    + Send
    + 'static
{
}

impl<S, B> Routes<B> for S where
    S: tower_service::Service<
            http::Request<RequestBody>,
            Response = http::Response<B>,
            Error = std::convert::Infallible,
            Future: Send + 'static,
        > + Clone
        + Send
        + 'static
{
}

/// A response body hyper can write: the bounds in one place.
pub trait ResponseBody:
    hyper::body::Body<Data: Send, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
    + Send
    + Unpin
    + 'static
{
}

impl<B> ResponseBody for B where
    B: hyper::body::Body<Data: Send, Error: Into<Box<dyn std::error::Error + Send + Sync>>>
        + Send
        + Unpin
        + 'static
{
}

/// Serves one connection until it closes, times out or the relay stops.
pub async fn serve<S, B>(
    shared: Arc<Shared<S>>,
    tcp: TcpStream,
    peer: SocketAddr,
    permit: OwnedSemaphorePermit,
    watcher: Watcher,
) where
    S: Routes<B>,
    B: ResponseBody,
{
    let accepted = Instant::now();
    let state = Arc::new(ConnState::new(accepted, &shared.limits, Some(permit)));
    let Some(acceptor) = &shared.tls else {
        let info = ConnInfo {
            peer,
            client_cert: false,
        };
        return run(&shared, tcp, info, state, watcher).await;
    };
    let handshake = acceptor.accept(tcp);
    let stream = match tokio::time::timeout_at(accepted + shared.limits.first_byte, handshake).await
    {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake not done within first_byte_timeout_secs");
            return;
        }
    };
    let client_cert = stream
        .get_ref()
        .1
        .peer_certificates()
        .is_some_and(|c| !c.is_empty());
    let info = ConnInfo { peer, client_cert };
    run(&shared, stream, info, state, watcher).await
}

/// Serves one plain byte stream with no accept permit and no graceful-stop watcher of
/// its own (see [`crate::relay::server::serve_stream`]).
pub async fn serve_stream<S, B, T>(shared: &Shared<S>, io: T, peer: SocketAddr)
where
    S: Routes<B>,
    B: ResponseBody,
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let state = Arc::new(ConnState::new(Instant::now(), &shared.limits, None));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let info = ConnInfo {
        peer,
        client_cert: false,
    };
    run(shared, io, info, state, graceful.watcher()).await
}

async fn run<S, B, T>(
    shared: &Shared<S>,
    io: T,
    info: ConnInfo,
    state: Arc<ConnState>,
    watcher: Watcher,
) where
    S: Routes<B>,
    B: ResponseBody,
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = ConnService::new(
        shared.routes.clone(),
        info,
        state.clone(),
        shared.budget.clone(),
        &shared.limits,
    );
    let io = TokioIo::new(WatchedIo::new(
        io,
        state.clone(),
        shared.limits.linger_bytes,
    ));
    let conn = shared.builder.serve_connection_with_upgrades(io, service);
    let mut conn = Box::pin(watcher.watch(conn.into_owned()));
    tokio::select! {
        done = &mut conn => {
            if let Err(e) = done {
                tracing::debug!(peer = %info.peer, error = %e, "connection ended with an error");
            }
            // An agent stream lives on outside hyper and is not counted.
            if state.upgraded() {
                state.release_permit();
            }
        }
        why = state.expired() => {
            tracing::debug!(peer = %info.peer, reason = why.as_str(), "closing connection");
            state.mark_expired();
            drop(conn);
        }
    }
}
