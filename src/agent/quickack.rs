//! Connections to the local service that acknowledge every segment at once.
//!
//! Python's `http.server` (and the Flask and Django development servers built on it)
//! writes a response's head and body in two writes on a socket without `TCP_NODELAY`,
//! so Nagle's algorithm holds the body until the head is acknowledged — and the
//! receiver's delayed ACK waits up to 40 ms for data to ride on. Every delivery would
//! stall 40 ms. Re-arming `TCP_QUICKACK` after each read (the kernel clears it by
//! itself) sends the pending ACK at once, which releases the body; it costs one
//! `setsockopt` per read. Elsewhere than on Linux this is a no-op.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// A TCP connection to the local service that re-arms quick ACKs after each read.
#[derive(Debug)]
pub struct QuickAck {
    inner: TokioIo<TcpStream>,
}

impl QuickAck {
    fn rearm(&self) {
        #[cfg(target_os = "linux")]
        {
            // Best effort: a socket that refuses it only loses the optimisation.
            let _ = socket2::SockRef::from(self.inner.inner()).set_tcp_quickack(true);
        }
    }
}

impl Read for QuickAck {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if polled.is_ready() {
            this.rearm();
        }
        polled
    }
}

impl Write for QuickAck {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<Result<usize, std::io::Error>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), std::io::Error>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), std::io::Error>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<Result<usize, std::io::Error>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }
}

impl Connection for QuickAck {
    fn connected(&self) -> Connected {
        self.inner.connected()
    }
}

/// [`HttpConnector`] whose connections are [`QuickAck`].
#[derive(Debug, Clone)]
pub struct QuickAckConnector {
    /// The connector that dials.
    pub inner: HttpConnector,
}

type ConnectError = <HttpConnector as tower_service::Service<http::Uri>>::Error;

impl tower_service::Service<http::Uri> for QuickAckConnector {
    type Response = QuickAck;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<QuickAck, ConnectError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, dst: http::Uri) -> Self::Future {
        let connecting = self.inner.call(dst);
        Box::pin(async move {
            let inner = connecting.await?;
            let conn = QuickAck { inner };
            conn.rearm();
            Ok(conn)
        })
    }
}
