//! Idle phase: open many subscribed agent connections and hold them.
//!
//! It measures what an idle fleet costs the relay: each connection says Hello and
//! subscribes a group of its own at the head, then does nothing but answer pings. The
//! relay's memory is read from outside (`scripts/bench.sh` samples its VmRSS) while
//! this phase holds the connections, announced on stdout as
//! `bench idle: holding N connections`.

use std::time::{Duration, Instant};

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use super::report::PhaseResult;
use super::target::{relay_error, BenchError, Target, Ws};
use crate::common::protocol::{ClientMsg, ServerMsg, Start};

/// Connections being set up at once (a connect storm of 10,000 would hit the accept queue).
const CONNECT_PARALLELISM: usize = 256;

fn err(message: impl std::fmt::Display) -> BenchError {
    BenchError::Phase {
        phase: "idle",
        message: message.to_string(),
    }
}

type Tx = SplitSink<Ws, Message>;
type Rx = SplitStream<Ws>;

/// Opens connection `i` and subscribes a group of its own at the head; returns once the
/// relay confirmed (then it holds the full per-subscription state).
async fn subscribe(target: &Target, i: usize) -> Result<(Tx, Rx), BenchError> {
    let ws = super::target::connect(target, "hookrelay-bench-idle")
        .await
        .map_err(err)?;
    let (mut tx, mut rx) = ws.split();
    let subscribe = ClientMsg::Subscribe {
        sub: 1,
        channel: target.channel.clone(),
        group: format!("idle-{i}"),
        start: Start::Latest,
        window: 1,
    };
    tx.send(Message::Binary(subscribe.encode().into()))
        .await
        .map_err(err)?;
    loop {
        match rx.next().await {
            Some(Ok(Message::Binary(b))) => match ServerMsg::decode(&b).map_err(err)? {
                ServerMsg::Subscribed { .. } => return Ok((tx, rx)),
                ServerMsg::Error { code, message, .. } => {
                    return Err(err(relay_error(&code, &message)))
                }
                _ => {}
            },
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(err(e)),
            None => return Err(err("closed")),
        }
    }
}

/// Answers pings until `release` turns true or the connection ends, then closes.
async fn hold(mut tx: Tx, mut rx: Rx, mut release: tokio::sync::watch::Receiver<bool>) {
    loop {
        tokio::select! {
            // The guard `wait_for` returns is not Send: drop it inside.
            _ = async { let _ = release.wait_for(|&r| r).await; } => break,
            frame = rx.next() => match frame {
                Some(Ok(Message::Binary(b))) => {
                    if let Ok(ServerMsg::Ping { nonce }) = ServerMsg::decode(&b) {
                        let _ = tx.send(Message::Binary(ClientMsg::Pong { nonce }.encode().into())).await;
                    }
                }
                Some(Ok(_)) => {}
                _ => break,
            }
        }
    }
    let _ = tx.send(Message::Close(None)).await;
}

/// One idle agent: subscribes (reporting on `ready` whether it could), then holds the
/// connection until `release`.
async fn agent(
    target: &Target,
    i: usize,
    ready: tokio::sync::mpsc::Sender<bool>,
    release: tokio::sync::watch::Receiver<bool>,
) {
    match subscribe(target, i).await {
        Ok((tx, rx)) => {
            let _ = ready.send(true).await;
            hold(tx, rx, release).await;
        }
        Err(e) => {
            tracing::warn!(error = %e, "idle connection failed");
            let _ = ready.send(false).await;
        }
    }
}

pub async fn run(
    target: &std::sync::Arc<Target>,
    connections: usize,
    hold_secs: u64,
) -> Result<PhaseResult, BenchError> {
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(CONNECT_PARALLELISM);
    let (release_tx, release_rx) = tokio::sync::watch::channel(false);
    let started = Instant::now();
    let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(CONNECT_PARALLELISM));
    let mut tasks = Vec::with_capacity(connections);
    for i in 0..connections {
        let (target, ready, release, permits) = (
            target.clone(),
            ready_tx.clone(),
            release_rx.clone(),
            permits.clone(),
        );
        tasks.push(tokio::spawn(async move {
            // Held only while connecting.
            let permit = permits.acquire_owned().await;
            let (inner_ready, mut inner_rx) = tokio::sync::mpsc::channel(1);
            let run = tokio::spawn(async move { agent(&target, i, inner_ready, release).await });
            let ok = inner_rx.recv().await.unwrap_or(false);
            drop(permit);
            let _ = ready.send(ok).await;
            let _ = run.await;
        }));
    }
    drop(ready_tx);
    let (mut up, mut failed) = (0u64, 0u64);
    while up + failed < connections as u64 {
        match ready_rx.recv().await {
            Some(true) => up += 1,
            Some(false) => failed += 1,
            None => break,
        }
    }
    let setup = started.elapsed();
    println!("bench idle: holding {up} connections");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    tokio::time::sleep(Duration::from_secs(hold_secs)).await;
    let _ = release_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    if up == 0 {
        return Err(err(
            "no connection could be opened (file descriptor limit? token?)",
        ));
    }
    Ok(PhaseResult::new("idle", up, failed, setup, 0, None))
}
