//! The one task that writes to a stream connection's socket.
//!
//! Two small bounded queues feed it: *control* frames from the connection (Welcome,
//! Pong, Ping, refusals, the close) and *subscription* frames (Subscribed, events,
//! CaughtUp, End). Control frames go first, so a heartbeat or the shutdown notice is not
//! stuck behind a window of large events. Every write awaits the socket, so a slow agent
//! stalls this task, the queues fill, and the subscriptions wait at their `send`; the
//! bytes of queued events stay held in the connection's budget ([`super::budget`]) until
//! they are handed to the socket, so the subscriptions stop reading the log first.
//!
//! A peer that accepts no bytes at all for the stall timeout (the idle timeout) is given
//! up: it holds budget that others need, and a peer that sends frames but never reads
//! would otherwise never time out.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::socket::{Message, Socket};
use futures_util::stream::SplitSink;
use futures_util::SinkExt;
use tokio::sync::mpsc;

use super::budget::Held;
use crate::common::protocol::ServerMsg;

/// Control frames that may wait for the writer; more means the agent sends requests but
/// does not read the answers, and the connection is dropped.
pub(crate) const CONTROL_QUEUE_FRAMES: usize = 64;

/// Subscription frames that may wait for the writer (shared by a connection's
/// subscriptions); beyond this, subscriptions wait for the socket.
pub(crate) const SUBSCRIPTION_QUEUE_FRAMES: usize = 16;

/// A frame from the connection itself.
pub(crate) enum Control {
    /// Boxed: `ServerMsg` is large, and a channel allocates its slots up front for every
    /// connection, idle or not.
    Frame(Box<ServerMsg>),
    /// Send a close and stop.
    Close,
}

/// Encoded frames from a subscription: one, or a whole read chunk of events, so that a
/// replay burst costs one queue hand-over per chunk instead of one per event. Queued
/// boxed: a queue allocates its first block of slots when it is made, and at 8 bytes a
/// slot instead of 64 that is ~1.8 KiB less for every connected agent, idle or not.
pub(crate) struct SubFrame {
    pub frames: Vec<Vec<u8>>,
    /// While the subscription lives; a frame whose subscription was closed meanwhile is
    /// dropped unwritten, so an event never reaches a member that was already replaced
    /// in its group. `None` for the subscription's closing `Error`, which must go out.
    pub live: Option<Arc<AtomicBool>>,
    /// The budget the frames' bytes hold, given back once they are handed to the socket.
    pub held: Option<Held>,
}

impl SubFrame {
    pub fn one(bytes: Vec<u8>, live: Option<Arc<AtomicBool>>) -> Box<SubFrame> {
        Box::new(SubFrame {
            frames: vec![bytes],
            live,
            held: None,
        })
    }
}

/// Writes frames until told to close, the queues close, the socket fails, or the peer
/// accepts nothing for `stall`.
///
/// Frames are *fed* (buffered) and the socket is flushed only when no further frame is
/// ready: a replay burst goes out in large writes instead of one syscall per event,
/// while a lone live event is flushed at once, so batching adds no latency.
pub(crate) async fn run(
    mut sink: SplitSink<Socket, Message>,
    mut control: mpsc::Receiver<Control>,
    mut frames: mpsc::Receiver<Box<SubFrame>>,
    stall: Duration,
) {
    let mut frames_open = true;
    loop {
        let (msgs, held) = match next(&mut control, &mut frames, &mut frames_open, true).await {
            Next::Frames(m, held) => (m, held),
            Next::Skip => continue,
            Next::Close => {
                let _ = sink.close().await;
                return;
            }
            Next::Idle => continue, // only reported when not waiting
        };
        if !feed(&mut sink, msgs, held, stall).await {
            return;
        }
        // Drain whatever is already queued without waiting, then flush once.
        loop {
            match next(&mut control, &mut frames, &mut frames_open, false).await {
                Next::Frames(msgs, held) => {
                    if !feed(&mut sink, msgs, held, stall).await {
                        return;
                    }
                }
                Next::Skip => {}
                Next::Idle => break,
                Next::Close => {
                    let _ = sink.close().await;
                    return;
                }
            }
        }
        if !within(stall, sink.flush()).await {
            return;
        }
    }
}

/// Hands `msgs` to the socket, then gives back the budget their bytes held; false if
/// the socket failed or stalled.
async fn feed(
    sink: &mut SplitSink<Socket, Message>,
    msgs: Vec<Message>,
    held: Option<Held>,
    stall: Duration,
) -> bool {
    for msg in msgs {
        if !within(stall, sink.feed(msg)).await {
            return false;
        }
    }
    drop(held);
    true
}

/// Whether a socket operation succeeded within `stall`.
async fn within<E>(stall: Duration, op: impl Future<Output = Result<(), E>>) -> bool {
    match tokio::time::timeout(stall, op).await {
        Ok(done) => done.is_ok(),
        Err(_) => {
            tracing::info!(
                stall_secs = stall.as_secs(),
                "stream: the agent accepts no data; giving up on the connection"
            );
            false
        }
    }
}

enum Next {
    /// Frames to write, with the budget their bytes hold.
    Frames(Vec<Message>, Option<Held>),
    /// A frame of a subscription that ended meanwhile: dropped.
    Skip,
    /// Nothing queued (only when not waiting).
    Idle,
    Close,
}

/// The next frame, control first; with `wait` false, `Idle` when nothing is queued.
async fn next(
    control: &mut mpsc::Receiver<Control>,
    frames: &mut mpsc::Receiver<Box<SubFrame>>,
    frames_open: &mut bool,
    wait: bool,
) -> Next {
    use futures_util::FutureExt;
    let pick = async {
        tokio::select! {
            biased;
            c = control.recv() => match c {
                Some(Control::Frame(m)) => Next::Frames(vec![Message::Binary(m.encode().into())], None),
                Some(Control::Close) | None => Next::Close,
            },
            f = frames.recv(), if *frames_open => match f {
                Some(f) if f.live.as_ref().is_none_or(|l| l.load(Ordering::Acquire)) => {
                    let f = *f;
                    let msgs = f.frames.into_iter().map(|b| Message::Binary(b.into())).collect();
                    Next::Frames(msgs, f.held)
                }
                Some(_) => Next::Skip,
                None => {
                    *frames_open = false;
                    Next::Skip
                }
            },
        }
    };
    if wait {
        pick.await
    } else {
        pick.now_or_never().unwrap_or(Next::Idle)
    }
}
