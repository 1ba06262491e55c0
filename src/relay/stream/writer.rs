//! The one task that writes to a stream connection's socket.
//!
//! Two small bounded queues feed it: *control* frames from the connection (Welcome,
//! Pong, Ping, refusals, the close) and *subscription* frames (Subscribed, events,
//! CaughtUp, End). Control frames go first, so a heartbeat or the shutdown notice is not
//! stuck behind a window of large events. Every write awaits the socket, so a slow agent
//! stalls this task, the queues fill, and the subscriptions wait at their `send`: relay
//! memory per connection stays bounded by the queue sizes, whatever the agent does.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::socket::{Message, Socket};
use futures_util::stream::SplitSink;
use futures_util::SinkExt;
use tokio::sync::mpsc;

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
/// replay burst costs one queue hand-over per chunk instead of one per event.
pub(crate) struct SubFrame {
    pub frames: Vec<Vec<u8>>,
    /// While the subscription lives; a frame whose subscription was closed meanwhile is
    /// dropped unwritten, so an event never reaches a member that was already replaced
    /// in its group. `None` for the subscription's closing `Error`, which must go out.
    pub live: Option<Arc<AtomicBool>>,
}

impl SubFrame {
    pub fn one(bytes: Vec<u8>, live: Option<Arc<AtomicBool>>) -> SubFrame {
        SubFrame {
            frames: vec![bytes],
            live,
        }
    }
}

/// Writes frames until told to close, the queues close, or the socket fails.
///
/// Frames are *fed* (buffered) and the socket is flushed only when no further frame is
/// ready: a replay burst goes out in large writes instead of one syscall per event,
/// while a lone live event is flushed at once, so batching adds no latency.
pub(crate) async fn run(
    mut sink: SplitSink<Socket, Message>,
    mut control: mpsc::Receiver<Control>,
    mut frames: mpsc::Receiver<SubFrame>,
) {
    let mut frames_open = true;
    loop {
        let msgs = match next(&mut control, &mut frames, &mut frames_open, true).await {
            Next::Frames(m) => m,
            Next::Skip => continue,
            Next::Close => {
                let _ = sink.close().await;
                return;
            }
            Next::Idle => continue, // only reported when not waiting
        };
        for msg in msgs {
            if sink.feed(msg).await.is_err() {
                return;
            }
        }
        // Drain whatever is already queued without waiting, then flush once.
        loop {
            match next(&mut control, &mut frames, &mut frames_open, false).await {
                Next::Frames(msgs) => {
                    for m in msgs {
                        if sink.feed(m).await.is_err() {
                            return;
                        }
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
        if sink.flush().await.is_err() {
            return;
        }
    }
}

enum Next {
    Frames(Vec<Message>),
    /// A frame of a subscription that ended meanwhile: dropped.
    Skip,
    /// Nothing queued (only when not waiting).
    Idle,
    Close,
}

/// The next frame, control first; with `wait` false, `Idle` when nothing is queued.
async fn next(
    control: &mut mpsc::Receiver<Control>,
    frames: &mut mpsc::Receiver<SubFrame>,
    frames_open: &mut bool,
    wait: bool,
) -> Next {
    use futures_util::FutureExt;
    let pick = async {
        tokio::select! {
            biased;
            c = control.recv() => match c {
                Some(Control::Frame(m)) => Next::Frames(vec![Message::Binary(m.encode().into())]),
                Some(Control::Close) | None => Next::Close,
            },
            f = frames.recv(), if *frames_open => match f {
                Some(f) if f.live.as_ref().is_none_or(|l| l.load(Ordering::Acquire)) => {
                    Next::Frames(f.frames.into_iter().map(|b| Message::Binary(b.into())).collect())
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
