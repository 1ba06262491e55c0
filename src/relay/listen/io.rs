//! The socket under hyper (plain TCP or TLS), reporting what it does to the
//! connection's [`ConnState`], giving hyper's own refusals a JSON body
//! ([`crate::relay::listen::hyper_errors`]), and closing lingering when a body was left
//! unread ([`crate::relay::listen::linger`]).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::relay::listen::watch::ConnState;

/// Largest read handed to hyper while it waits for an HTTP/1 head. hyper refuses a
/// head with 431 when its buffer reaches `max_buf_size` with the head still
/// incomplete; in reads this small, that happens for every head over the limit, also
/// when the whole head arrived at once (which hyper would otherwise parse whole).
pub const HEAD_READ_CHUNK_BYTES: usize = 8 * 1024;

/// A connection's byte stream, watched.
pub struct WatchedIo<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> {
    /// Always `Some` until dropped: `Drop` may hand it to a lingering close.
    inner: Option<T>,
    state: Arc<ConnState>,
    linger_bytes: u64,
    /// A replacement answer still to write, and how much of it is written.
    pending: Vec<u8>,
    pending_sent: usize,
    /// Where HTTP/1 heads are read in small pieces (see `poll_read`); allocated on the
    /// first head read and kept, so no read zeroes a fresh buffer, until the connection
    /// becomes a WebSocket (which reads no head again: 8 KiB per idle agent otherwise).
    head_chunk: Vec<u8>,
}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> WatchedIo<T> {
    /// Wraps `inner`, reporting activity to `state`; after a refusal, up to
    /// `linger_bytes` of the rest of the request are read and dropped before closing.
    pub fn new(inner: T, state: Arc<ConnState>, linger_bytes: u64) -> WatchedIo<T> {
        WatchedIo {
            inner: Some(inner),
            state,
            linger_bytes,
            pending: Vec::new(),
            pending_sent: 0,
            head_chunk: Vec::new(),
        }
    }

    fn io(&mut self) -> io::Result<Pin<&mut T>> {
        match self.inner.as_mut() {
            Some(io) => Ok(Pin::new(io)),
            None => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// Writes what is left of a replacement answer; ready once it is all out.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.pending_sent < self.pending.len() {
            let Some(io) = self.inner.as_mut() else {
                return Poll::Ready(Err(io::ErrorKind::NotConnected.into()));
            };
            let r = Pin::new(io).poll_write(cx, &self.pending[self.pending_sent..]);
            self.state.on_write(r.is_pending());
            match std::task::ready!(r)? {
                0 => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                n => self.pending_sent += n,
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> AsyncRead for WatchedIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() > HEAD_READ_CHUNK_BYTES && this.state.reading_http1_head() {
            let mut chunk = std::mem::take(&mut this.head_chunk);
            chunk.resize(HEAD_READ_CHUNK_BYTES, 0);
            let mut small = ReadBuf::new(&mut chunk);
            let r = this.io().map(|io| io.poll_read(cx, &mut small));
            if let Ok(Poll::Ready(Ok(()))) = &r {
                this.state.on_read(small.filled());
                buf.put_slice(small.filled());
            }
            this.head_chunk = chunk;
            return r?;
        }
        if this.head_chunk.capacity() > 0 && this.state.upgraded() {
            this.head_chunk = Vec::new();
        }
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
        std::task::ready!(this.poll_pending(cx))?;
        if let Some((used, answer)) = crate::relay::listen::hyper_errors::replacement(buf) {
            // hyper closes after these answers; the client may still be sending.
            this.pending = answer;
            this.pending_sent = 0;
            this.state.set_linger();
            return Poll::Ready(Ok(used));
        }
        let r = this.io()?.poll_write(cx, buf);
        this.state.on_write(r.is_pending());
        r
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_pending(cx))?;
        this.io()?.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_pending(cx))?;
        this.io()?.poll_shutdown(cx)
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

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::time::Instant;

    use super::*;
    use crate::relay::listen::limits::ConnLimits;

    fn state() -> Arc<ConnState> {
        let limits = ConnLimits::for_tests();
        Arc::new(ConnState::new(Instant::now(), &limits, None))
    }

    /// Reads into a buffer larger than a head chunk, as hyper does.
    async fn read_some(io: &mut WatchedIo<tokio::io::DuplexStream>) -> Vec<u8> {
        let mut buf = vec![0u8; 4 * HEAD_READ_CHUNK_BYTES];
        let n = io.read(&mut buf).await.expect("read");
        buf.truncate(n);
        buf
    }

    /// The head buffer serves every head of a keep-alive connection and is handed
    /// back once the connection is upgraded (10,000 idle agents held 80 MB of them).
    #[tokio::test]
    async fn the_head_buffer_is_released_when_the_connection_is_upgraded() {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let state = state();
        let mut io = WatchedIo::new(server, state.clone(), 0);
        client
            .write_all(b"GET / HTTP/1.1\r\n")
            .await
            .expect("write");
        assert_eq!(read_some(&mut io).await, b"GET / HTTP/1.1\r\n");
        client.write_all(b"Host: x\r\n\r\n").await.expect("write");
        assert_eq!(read_some(&mut io).await, b"Host: x\r\n\r\n");
        assert_eq!(
            io.head_chunk.capacity(),
            HEAD_READ_CHUNK_BYTES,
            "kept for heads"
        );
        // As in service.rs: the upgrade request starts, switches protocols and ends.
        state.request_started();
        state.mark_upgraded();
        state.request_finished();
        client.write_all(b"frame").await.expect("write");
        assert_eq!(read_some(&mut io).await, b"frame");
        assert_eq!(io.head_chunk.capacity(), 0, "released after the upgrade");
    }
}
