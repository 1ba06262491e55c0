//! Replay phase: read the channel back from offset 1 as fast as the relay sends it.
//!
//! It uses a group-less `Read` subscription with the largest window, acks every event
//! as it arrives (like `hookrelay tail > /dev/null`: one `AckRange` per burst of frames
//! already received), and stops at the relay's `End`.

use std::time::Instant;

use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use super::report::PhaseResult;
use super::{BenchError, Target};
use crate::agent::progress::Progress;
use crate::common::protocol::{ClientMsg, ServerMsg, Start, MAX_WINDOW};

fn err(message: impl std::fmt::Display) -> BenchError {
    BenchError::Phase {
        phase: "replay",
        message: message.to_string(),
    }
}

pub async fn run(target: &Target) -> Result<PhaseResult, BenchError> {
    let ws = super::connect(target, "hookrelay-bench")
        .await
        .map_err(err)?;
    let (mut tx, mut rx) = ws.split();
    let send = |m: ClientMsg| Message::Binary(m.encode().into());
    tx.send(send(ClientMsg::Read {
        sub: 1,
        channel: target.channel.clone(),
        start: Start::Earliest,
        to: None,
        follow: false,
        window: MAX_WINDOW,
    }))
    .await
    .map_err(err)?;

    let progress = Progress::start("replay", None);
    let mut started = None;
    let (mut events, mut bytes) = (0u64, 0u64);
    'read: while let Some(frame) = rx.next().await {
        let mut frame = Some(frame);
        // Handle every frame that is already here, then ack them in one frame: a
        // syscall (or a relay wake-up) per ack would dominate the measurement.
        let mut acks: Option<(u32, u64, u64)> = None;
        while let Some(f) = frame.take() {
            let data = match f.map_err(err)? {
                Message::Binary(b) => b,
                Message::Close(_) => break 'read,
                _ => Default::default(),
            };
            if !data.is_empty() {
                match ServerMsg::decode(&data).map_err(err)? {
                    ServerMsg::Event {
                        sub,
                        offset,
                        record,
                    } => {
                        started.get_or_insert_with(Instant::now);
                        events += 1;
                        bytes += record.len() as u64;
                        progress.add(1);
                        match &mut acks {
                            Some((s, _, last)) if *s == sub && *last + 1 == offset => {
                                *last = offset
                            }
                            run => {
                                if let Some((sub, first, last)) = run.replace((sub, offset, offset))
                                {
                                    tx.feed(send(ClientMsg::AckRange { sub, first, last }))
                                        .await
                                        .map_err(err)?;
                                }
                            }
                        }
                    }
                    ServerMsg::End { .. } => break 'read,
                    ServerMsg::Ping { nonce } => tx
                        .feed(send(ClientMsg::Pong { nonce }))
                        .await
                        .map_err(err)?,
                    ServerMsg::Error { code, message, .. } => {
                        return Err(err(format!("{code}: {message}")))
                    }
                    _ => {}
                }
            }
            frame = rx.next().now_or_never().flatten();
        }
        if let Some((sub, first, last)) = acks {
            tx.feed(send(ClientMsg::AckRange { sub, first, last }))
                .await
                .map_err(err)?;
        }
        tx.flush().await.map_err(err)?;
    }
    progress.finish();
    let elapsed = started.map(|s| s.elapsed()).unwrap_or_default();
    let _ = tx.send(Message::Close(None)).await;
    Ok(PhaseResult::new("replay", events, 0, elapsed, bytes, None))
}
