//! The socket under hyper (plain TCP or TLS), reporting what it does to the
//! connection's [`ConnState`], and closing lingering when a body was left unread
//! ([`crate::relay::listen::linger`]).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::relay::listen::watch::ConnState;

/// A connection's byte stream, watched.
pub struct WatchedIo<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> {
    /// Always `Some` until dropped: `Drop` may hand it to a lingering close.
    inner: Option<T>,
    state: Arc<ConnState>,
    linger_bytes: u64,
}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> WatchedIo<T> {
    pub fn new(inner: T, state: Arc<ConnState>, linger_bytes: u64) -> WatchedIo<T> {
        WatchedIo {
            inner: Some(inner),
            state,
            linger_bytes,
        }
    }

    fn io(&mut self) -> io::Result<Pin<&mut T>> {
        match self.inner.as_mut() {
            Some(io) => Ok(Pin::new(io)),
            None => Err(io::ErrorKind::NotConnected.into()),
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> AsyncRead for WatchedIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = this.io()?.poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r {
            this.state.on_read(&buf.filled()[before..]);
        }
        r
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> AsyncWrite for WatchedIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = this.io()?.poll_write(cx, buf);
        this.state.on_write(r.is_pending());
        r
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().io()?.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().io()?.poll_shutdown(cx)
    }

    // hyper then flattens each response into one buffer, which keeps writes simple to
    // follow here (and costs nothing on TLS, which copies anyway).
    fn is_write_vectored(&self) -> bool {
        false
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Drop for WatchedIo<T> {
    fn drop(&mut self) {
        if !self.state.wants_linger() {
            return;
        }
        let (Some(io), Ok(rt)) = (self.inner.take(), tokio::runtime::Handle::try_current()) else {
            return;
        };
        let linger =
            crate::relay::listen::linger::linger(io, self.linger_bytes, self.state.clone());
        rt.spawn(linger);
    }
}
