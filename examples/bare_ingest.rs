//! The floor hookrelay's ingest is measured against: bare hyper plus a sled group
//! commit, and nothing else (no signature check, no headers kept, no JSON answer, no
//! limits). `scripts/bench-cost.sh` runs `wrk -c64` against it and against the relay in
//! turns; the cost-per-event issue asks the relay to stay at or above 0.9x its rate.
//!
//! Durability is the relay's: a POST is answered only after the sled flush covering its
//! body and an `fdatasync` of sled's log file (as `storage/sled/fsync.rs` does).
//!
//! usage: cargo run --release --example bare_ingest -- DATA_DIR
//! prints `listening on http://127.0.0.1:PORT` once it accepts.

use std::convert::Infallible;
use std::fs::File;
use std::sync::mpsc;

use anyhow::Context;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::oneshot;

/// One body to store and the way to tell its request that it is durable.
type Job = (Bytes, oneshot::Sender<bool>);

fn main() -> anyhow::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .context("usage: bare_ingest DATA_DIR")?;
    let db = sled::Config::new()
        .path(&dir)
        .flush_every_ms(Some(1000))
        .open()
        .context("opening sled")?;
    let log =
        File::open(std::path::Path::new(&dir).join("db")).context("opening sled's db file")?;
    let (tx, rx) = mpsc::channel::<Job>();
    std::thread::spawn(move || commit_loop(&db, &log, &rx));
    tokio::runtime::Runtime::new()?.block_on(serve(tx))
}

/// Group commit: everything queued while the last flush ran goes into one batch.
fn commit_loop(db: &sled::Db, log: &File, rx: &mpsc::Receiver<Job>) {
    let mut next: u64 = 1;
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        jobs.extend(rx.try_iter());
        let mut batch = sled::Batch::default();
        for (body, _) in &jobs {
            batch.insert(&next.to_be_bytes(), body.as_ref());
            next += 1;
        }
        let ok = db.apply_batch(batch).is_ok() && db.flush().is_ok() && log.sync_data().is_ok();
        for (_, done) in jobs {
            let _ = done.send(ok);
        }
    }
}

async fn serve(tx: mpsc::Sender<Job>) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("listening on http://{}", listener.local_addr()?);
    loop {
        let (socket, _) = listener.accept().await?;
        let _ = socket.set_nodelay(true);
        let tx = tx.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(req, tx.clone()));
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(socket), service)
                .await;
        });
    }
}

async fn handle(
    req: Request<Incoming>,
    tx: mpsc::Sender<Job>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let status = match req.into_body().collect().await {
        Ok(body) => {
            let (done, durable) = oneshot::channel();
            let stored = tx.send((body.to_bytes(), done)).is_ok() && durable.await == Ok(true);
            if stored {
                200
            } else {
                503
            }
        }
        Err(_) => 400,
    };
    let mut response = Response::new(Full::new(Bytes::from_static(b"{}")));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
    Ok(response)
}
