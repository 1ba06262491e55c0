//! The in-process local service the e2e and drain phases deliver to.
//!
//! A minimal hyper server on 127.0.0.1:0: it reads each request's whole body (arrival
//! means the full request is here), waits `delay` (a slow service), calls `on_arrival`
//! with the request's headers, and answers 200 with no body.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

/// Starts the service; returns its base URL and the accept task (abort it when done).
pub(crate) async fn start<F>(
    delay: Duration,
    on_arrival: F,
) -> std::io::Result<(String, tokio::task::JoinHandle<()>)>
where
    F: Fn(&http::HeaderMap) + Send + Sync + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let on_arrival = Arc::new(on_arrival);
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let on_arrival = on_arrival.clone();
            tokio::spawn(async move {
                let svc =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let on_arrival = on_arrival.clone();
                        async move {
                            let (parts, body) = req.into_parts();
                            let _ = http_body_util::BodyExt::collect(body).await;
                            if !delay.is_zero() {
                                tokio::time::sleep(delay).await;
                            }
                            on_arrival(&parts.headers);
                            Ok::<_, Infallible>(http::Response::new(http_body_util::Empty::<
                                bytes::Bytes,
                            >::new(
                            )))
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    Ok((format!("http://{addr}"), task))
}
