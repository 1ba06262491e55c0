//! The committer's thread: takes ops off the queue and commits them in batches.
//!
//! After each batch it waits at most [`CURSOR_LINGER_MS`] for the next op, so that
//! acks' cursor moves held meanwhile are written in time without waking it (see
//! [`super::linger::SharedLinger`]); once such a wait ends with nothing held, it
//! sleeps until the next op. At a trickle appends are committed by their own tasks
//! (see [`super::inline`]), which take the held moves along; the thread then only
//! writes moves that nobody took within their linger.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::commit::{Committer, Op, MAX_BATCH_OPS};
use super::linger::{recv_until, Received, SharedLinger, CURSOR_LINGER_MS};

/// What the thread does after a wait. One value per wait, moved once: boxing the op
/// would cost an allocation per batch.
#[allow(clippy::large_enum_variant)]
enum Next {
    /// Write a batch starting with this op.
    Op(Op),
    /// Write the held cursor moves: they are due.
    Write,
    /// Nothing to write yet: wait again.
    Wait,
    /// Every sender is gone.
    Closed,
}

/// Takes batches off the queue until every sender is gone, then flushes a last time.
pub(crate) fn run(
    committer: Arc<Mutex<Committer>>,
    linger: Arc<SharedLinger>,
    mut rx: mpsc::Receiver<Op>,
) {
    let mut ops = Vec::with_capacity(MAX_BATCH_OPS);
    let mut deadline: Option<Instant> = None;
    loop {
        let first = match next_op(&linger, &mut rx, &mut deadline) {
            Next::Op(op) => Some(op),
            Next::Write => None,
            Next::Wait => continue,
            Next::Closed => break,
        };
        // A panic while committing leaves the heads in doubt: stop writing (the
        // queue closes, and every later write is refused).
        let Ok(mut committer) = committer.lock() else {
            break;
        };
        // Held moves are taken before the queue is drained and staged first: no reset
        // queued before them is left behind (see `SharedLinger::reset_queued`).
        let held = linger.take();
        ops.extend(first);
        while ops.len() < MAX_BATCH_OPS {
            match rx.try_recv() {
                Ok(Op::Nudge) => {}
                Ok(op) => ops.push(op),
                Err(_) => break,
            }
        }
        if ops.is_empty() && held.is_empty() {
            continue;
        }
        let resets = ops.iter().filter(|op| is_reset(op)).count();
        committer.commit(held, &mut ops);
        // Only now may acks' moves be held again rather than queued behind a reset.
        (0..resets).for_each(|_| linger.reset_taken());
        linger.committer_will_look();
        deadline = Some(Instant::now() + Duration::from_millis(CURSOR_LINGER_MS));
    }
    if let Ok(mut committer) = committer.lock() {
        committer.finish(linger.take());
    }
}

/// A forced cursor write: see `SharedLinger::reset_queued`.
fn is_reset(op: &Op) -> bool {
    matches!(op, Op::Cursor { force: true, .. })
}

/// Waits for the next op: until `deadline` if one is set, else for good. A nudge moves
/// the deadline to when the held moves are due; a deadline passed with nothing held
/// clears it.
fn next_op(
    linger: &SharedLinger,
    rx: &mut mpsc::Receiver<Op>,
    deadline: &mut Option<Instant>,
) -> Next {
    let received = match *deadline {
        None => match rx.blocking_recv() {
            Some(op) => Received::Op(op),
            None => Received::Closed,
        },
        Some(d) => recv_until(rx, d),
    };
    match received {
        Received::Op(Op::Nudge) => match linger.deadline() {
            None => Next::Wait,
            Some(due) if due > Instant::now() => {
                linger.committer_will_look();
                *deadline = Some(deadline.map_or(due, |d| d.min(due)));
                Next::Wait
            }
            Some(_) => Next::Write,
        },
        Received::Op(op) => Next::Op(op),
        Received::Closed => Next::Closed,
        Received::TimedOut if linger.committer_may_sleep() => {
            *deadline = None;
            Next::Wait
        }
        Received::TimedOut => match linger.deadline() {
            // Held since an inline commit took the older ones (see `super::inline`):
            // not due yet, so wait for them rather than write them alone.
            Some(due) if due > Instant::now() => {
                linger.committer_will_look();
                *deadline = Some(due);
                Next::Wait
            }
            _ => Next::Write,
        },
    }
}
