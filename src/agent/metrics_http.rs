//! The agent's `--metrics-listen` server: `GET /metrics` (Prometheus text) and
//! `GET /healthz` (200 `{"status":"connected"}` while every configured channel has a
//! live subscription on a relay, else 503 `{"status":"disconnected"}`), each with
//! the per-channel states. Plain HTTP/1.1 on hyper: one tiny handler, no routing
//! framework, nothing else is served.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::agent::metrics::AgentMetrics;

/// The metrics server could not start.
#[derive(Debug, thiserror::Error)]
#[error("--metrics-listen {addr}: {source}")]
pub struct ListenError {
    /// The address asked for.
    pub addr: SocketAddr,
    /// Why it could not be bound.
    pub source: std::io::Error,
}

/// Binds `addr`, says so on stdout (`hookrelay agent metrics on http://ADDR`, the real
/// port when 0 was asked for: stdout like the agent's other readiness lines, so that
/// stderr stays pure JSON with `--log-format json`), and serves in the background
/// until the task is aborted.
pub async fn serve(
    addr: SocketAddr,
    metrics: &'static AgentMetrics,
) -> Result<JoinHandle<()>, ListenError> {
    let err = |source| ListenError { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(err)?;
    let bound = listener.local_addr().map_err(err)?;
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "hookrelay agent metrics on http://{bound}");
        let _ = out.flush();
    }
    tracing::info!(listen = %bound, "metrics and health endpoint up");
    Ok(tokio::spawn(accept_loop(listener, metrics)))
}

async fn accept_loop(listener: TcpListener, metrics: &'static AgentMetrics) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| async move {
                Ok::<_, Infallible>(answer(&req, metrics))
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), svc)
                .await;
        });
    }
}

/// The response to one request.
fn answer(req: &Request<Incoming>, metrics: &AgentMetrics) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET only\n".into(),
        );
    }
    match req.uri().path() {
        "/metrics" => reply(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            metrics.render(),
        ),
        "/healthz" => health(metrics),
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    }
}

/// `/healthz`: connected (200) or not (503), with each channel's state.
fn health(metrics: &AgentMetrics) -> Response<Full<Bytes>> {
    let (up, channels) = metrics.health();
    let (status, word) = if up {
        (StatusCode::OK, "connected")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "disconnected")
    };
    let body = serde_json::json!({ "status": word, "channels": channels });
    reply(status, "application/json", body.to_string())
}

fn reply(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    resp
}
