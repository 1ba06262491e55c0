//! A request body with a deadline: what handlers read instead of hyper's `Incoming`.
//!
//! The body must arrive whole within `body_timeout_secs` of its head (a total, not a
//! rate: a client dripping one byte every few seconds gets nowhere). Past it, the next
//! read fails with [`BodyTimeout`], which [`crate::relay::body::read_limited`] answers
//! with `408 request_timeout`; hyper then closes the connection, as the body was left
//! unread. The timer exists only once a read had to wait: bodies that arrive with
//! their head cost nothing.
//!
//! The body also takes its share of the in-flight budget
//! ([`crate::relay::listen::budget`]) as it arrives; when it does not fit, the read
//! fails with [`BudgetExceeded`] (`503 unavailable`, `Retry-After`).
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

use crate::relay::listen::budget::Reservation;
use crate::relay::listen::watch::ConnState;

/// The error a handler's read gets once the body deadline has passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the request body did not arrive within {} s", .0.as_secs())]
pub struct BodyTimeout(pub Duration);

/// The error a handler's read gets when the body does not fit the in-flight budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the in-flight body budget is full")]
pub struct BudgetExceeded;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A body's share of the in-flight budget.
pub struct Share {
    reservation: Arc<Reservation>,
    /// A declared length up to this is reserved whole at the first read.
    upfront_max: u64,
    started: bool,
    reserved: u64,
    received: u64,
}

impl Share {
    /// A body's share of `reservation`; up to `upfront_max` bytes may be reserved at once
    /// from its declared length.
    pub fn new(reservation: Arc<Reservation>, upfront_max: u64) -> Share {
        Share {
            reservation,
            upfront_max,
            started: false,
            reserved: 0,
            received: 0,
        }
    }

    /// Before the first read: the whole declared length, if any (and not over the body
    /// limit, which the handler refuses without reading).
    fn start(&mut self, hint: &SizeHint) -> Result<(), BudgetExceeded> {
        self.started = true;
        match hint.exact() {
            Some(n) if n > 0 && n <= self.upfront_max => self.reserve_up_to(n),
            _ => Ok(()),
        }
    }

    /// `n` more bytes arrived.
    fn add(&mut self, n: u64) -> Result<(), BudgetExceeded> {
        self.received = self.received.saturating_add(n);
        self.reserve_up_to(self.received)
    }

    fn reserve_up_to(&mut self, total: u64) -> Result<(), BudgetExceeded> {
        if total > self.reserved {
            if !self.reservation.grow(total - self.reserved) {
                return Err(BudgetExceeded);
            }
            self.reserved = total;
        }
        Ok(())
    }
}

/// hyper's body with the relay's limits.
pub struct RequestBody {
    inner: Incoming,
    deadline: Instant,
    timeout: Duration,
    timer: Option<Pin<Box<Sleep>>>,
    conn: Arc<ConnState>,
    share: Share,
    ended: bool,
}

impl RequestBody {
    /// `timeout` counts from now (the head has just been read).
    pub fn new(
        inner: Incoming,
        timeout: Duration,
        conn: Arc<ConnState>,
        share: Share,
    ) -> RequestBody {
        RequestBody {
            inner,
            deadline: Instant::now() + timeout,
            timeout,
            timer: None,
            conn,
            share,
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
        if !this.share.started {
            if let Err(e) = this.share.start(&this.inner.size_hint()) {
                return Poll::Ready(Some(Err(e.into())));
            }
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(None) => {
                this.ended = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Ok(frame))) => {
                let n = frame.data_ref().map_or(0, |d| d.len() as u64);
                match this.share.add(n) {
                    Ok(()) => Poll::Ready(Some(Ok(frame))),
                    Err(e) => Poll::Ready(Some(Err(e.into()))),
                }
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
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
