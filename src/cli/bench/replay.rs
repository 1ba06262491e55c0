//! Replay phase: read the channel back from offset 1 as fast as the relay sends it.
//!
//! It uses a group-less `Read` subscription with the largest window, acks every event
//! as it arrives (like `hookrelay tail > /dev/null`: one `AckRange` per burst of frames
//! already received), and stops at the relay's `End`.

use std::time::Instant;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use super::report::PhaseResult;
use super::target::{relay_error, BenchError, Target, Ws};
use crate::agent::progress::Progress;
use crate::common::protocol::{ClientMsg, ServerMsg, Start, MAX_WINDOW};

fn err(message: impl std::fmt::Display) -> BenchError {
    BenchError::Phase {
        phase: "replay",
        message: message.to_string(),
    }
}

type Tx = SplitSink<Ws, Message>;
type Rx = SplitStream<Ws>;

fn frame(m: ClientMsg) -> Message {
    Message::Binary(m.encode().into())
}

/// Connects and opens a read of the whole channel with the largest window.
async fn open(target: &Target) -> Result<(Tx, Rx), BenchError> {
    let ws = super::target::connect(target, "hookrelay-bench")
        .await
        .map_err(err)?;
    let (mut tx, rx) = ws.split();
    tx.send(frame(ClientMsg::Read {
        sub: 1,
        channel: target.channel.clone(),
        start: Start::Earliest,
        to: None,
        follow: false,
        window: MAX_WINDOW,
    }))
    .await
    .map_err(err)?;
    Ok((tx, rx))
}

/// What has been read so far.
struct Tally {
    progress: Progress,
    /// The first event's arrival: the measurement starts there, not at the connect.
    started: Option<Instant>,
    events: u64,
    bytes: u64,
}

/// A run of consecutive offsets `(sub, first, last)` to acknowledge in one frame.
type AckRun = Option<(u32, u64, u64)>;

/// Adds `offset` of `sub` to `run`; returns the run it ends, to send first.
fn push_ack(run: &mut AckRun, sub: u32, offset: u64) -> AckRun {
    match run {
        Some((s, _, last)) if *s == sub && last.checked_add(1) == Some(offset) => {
            *last = offset;
            None
        }
        run => run.replace((sub, offset, offset)),
    }
}

/// How a burst of frames ended.
enum Burst {
    /// Every frame that was here is handled; these acks are still to send.
    More(AckRun),
    /// The read ended (`End`, or the relay closed).
    End,
}

/// Handles `first` and every frame already here, gathering the acks of consecutive
/// events so that they go out as one frame: a syscall (or a relay wake-up) per ack
/// would dominate the measurement.
async fn burst(
    first: Result<Message, tokio_tungstenite::tungstenite::Error>,
    tx: &mut Tx,
    rx: &mut Rx,
    tally: &mut Tally,
) -> Result<Burst, BenchError> {
    let mut next = Some(first);
    let mut acks: AckRun = None;
    while let Some(f) = next.take() {
        let data = match f.map_err(err)? {
            Message::Binary(b) => b,
            Message::Close(_) => return Ok(Burst::End),
            _ => Default::default(),
        };
        if !data.is_empty() {
            match ServerMsg::decode(&data).map_err(err)? {
                ServerMsg::Event {
                    sub,
                    offset,
                    record,
                } => {
                    tally.started.get_or_insert_with(Instant::now);
                    tally.events += 1;
                    tally.bytes += record.len() as u64;
                    tally.progress.add(1);
                    if let Some((sub, first, last)) = push_ack(&mut acks, sub, offset) {
                        let ack = ClientMsg::AckRange { sub, first, last };
                        tx.feed(frame(ack)).await.map_err(err)?;
                    }
                }
                ServerMsg::End { .. } => return Ok(Burst::End),
                ServerMsg::Ping { nonce } => tx
                    .feed(frame(ClientMsg::Pong { nonce }))
                    .await
                    .map_err(err)?,
                ServerMsg::Error { code, message, .. } => {
                    return Err(err(relay_error(&code, &message)))
                }
                _ => {}
            }
        }
        next = rx.next().now_or_never().flatten();
    }
    Ok(Burst::More(acks))
}

pub async fn run(target: &Target) -> Result<PhaseResult, BenchError> {
    let (mut tx, mut rx) = open(target).await?;
    let mut tally = Tally {
        progress: Progress::start("replay", None),
        started: None,
        events: 0,
        bytes: 0,
    };
    while let Some(first) = rx.next().await {
        let Burst::More(acks) = burst(first, &mut tx, &mut rx, &mut tally).await? else {
            break;
        };
        if let Some((sub, first, last)) = acks {
            tx.feed(frame(ClientMsg::AckRange { sub, first, last }))
                .await
                .map_err(err)?;
        }
        tx.flush().await.map_err(err)?;
    }
    tally.progress.finish();
    let elapsed = tally.started.map(|s| s.elapsed()).unwrap_or_default();
    let _ = tx.send(Message::Close(None)).await;
    Ok(PhaseResult::new(
        "replay",
        tally.events,
        0,
        elapsed,
        tally.bytes,
        None,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_acks_of_one_sub_make_one_run() {
        let mut run: AckRun = None;
        assert_eq!(push_ack(&mut run, 1, 5), None);
        assert_eq!(push_ack(&mut run, 1, 6), None);
        assert_eq!(push_ack(&mut run, 1, 8), Some((1, 5, 6)), "gap");
        assert_eq!(push_ack(&mut run, 2, 9), Some((1, 8, 8)), "other sub");
        assert_eq!(run, Some((2, 9, 9)));
    }
}
