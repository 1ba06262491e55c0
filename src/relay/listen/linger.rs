//! Lingering close: after answering a request whose body it did not read (a 413, a
//! 408), the relay reads and discards what the client still sends before closing.
//!
//! Closing a socket with unread data makes the kernel send a reset, and a client still
//! writing its body then sees "connection reset" instead of the answer waiting in its
//! receive buffer. So the write side is shut first (the client sees the whole answer
//! and the end of it), and the read side is drained until the client closes, up to
//! `linger_bytes` or [`LINGER_TIMEOUT`] (with [`LINGER_READ_IDLE`] between reads).
//! The connection keeps its `max_connections` slot meanwhile.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::relay::listen::limits::{LINGER_READ_IDLE, LINGER_TIMEOUT};
use crate::relay::listen::watch::ConnState;

/// Size of the discard buffer.
const DISCARD_CHUNK_BYTES: usize = 16 * 1024;

/// Shuts the write side, then discards input until EOF or a bound; `_state` is held
/// for the connection's slot.
pub async fn linger<T>(mut io: T, max_bytes: u64, _state: Arc<ConnState>)
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let drained = tokio::time::timeout(LINGER_TIMEOUT, async {
        // hyper has usually shut it already; a second shutdown is harmless.
        let _ = io.shutdown().await;
        let mut buf = vec![0u8; DISCARD_CHUNK_BYTES];
        let mut total = 0u64;
        while total < max_bytes {
            match tokio::time::timeout(LINGER_READ_IDLE, io.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => total += n as u64,
                _ => break,
            }
        }
        total
    })
    .await;
    tracing::debug!(discarded = ?drained.ok(), "lingering close done");
}
