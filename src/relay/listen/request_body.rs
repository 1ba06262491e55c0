//! A request body with a deadline: what handlers read instead of hyper's `Incoming`.
//!
//! The body must arrive whole within `body_timeout_secs` of its head (a total, not a
//! rate: a client dripping one byte every few seconds gets nowhere). Past it, the next
//! read fails with [`BodyTimeout`], which [`crate::relay::body::read_limited`] answers
//! with `408 request_timeout`; hyper then closes the connection, as the body was left
//! unread. The timer exists only once a read had to wait: bodies that arrive with
//! their head cost nothing.
//!
//! A body dropped before its end (refused by size, timed out) marks the connection
//! for a lingering close ([`crate::relay::listen::linger`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::relay::listen::watch::ConnState;

/// The error a handler's read gets once the body deadline has passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the request body did not arrive within {} s", .0.as_secs())]
pub struct BodyTimeout(pub Duration);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// hyper's body with the relay's limits.
pub struct RequestBody {
    inner: Incoming,
    deadline: Instant,
    timeout: Duration,
    timer: Option<Pin<Box<Sleep>>>,
    conn: Arc<ConnState>,
    ended: bool,
}

impl RequestBody {
    /// `timeout` counts from now (the head has just been read).
    pub fn new(inner: Incoming, timeout: Duration, conn: Arc<ConnState>) -> RequestBody {
        RequestBody {
            inner,
            deadline: Instant::now() + timeout,
            timeout,
            timer: None,
            conn,
            ended: false,
        }
    }

    /// Ready once the deadline has passed; registers the waker otherwise.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = self.deadline;
        self.timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)))
            .as_mut()
            .poll(cx)
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(None) => {
                this.ended = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(frame)) => Poll::Ready(Some(frame.map_err(BoxError::from))),
            Poll::Pending => match this.poll_deadline(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(BodyTimeout(this.timeout).into()))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for RequestBody {
    fn drop(&mut self) {
        if !self.ended && !self.inner.is_end_stream() {
            self.conn.set_linger();
        }
    }
}
