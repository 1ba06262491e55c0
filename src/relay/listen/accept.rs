//! The accept loop's two defences: a cap on open connections, and surviving the
//! process's descriptor limit; and a listen backlog deep enough for bursts.
//!
//! Past `max_connections`, a new connection is closed as soon as it is accepted: the
//! relay keeps accepting (so the backlog never fills with connections nobody will
//! serve) and serves the next one once a slot is free. When `accept` fails because the
//! process or the system is out of descriptors (`EMFILE`, `ENFILE`), the pending
//! connection stays in the kernel's backlog and the listener stays readable, so trying
//! again at once would spin; the loop sleeps [`ACCEPT_BACKOFF`] instead, until
//! connections that time out give descriptors back. Both are logged at most once per
//! [`LOG_INTERVAL`], with a count, rather than once per event.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Pending connections the kernel queues before `accept` (it caps this at
/// `net.core.somaxconn`). std's and tokio's `bind` use 128: a burst of new connections
/// faster than one accept loop iteration each then drops SYNs, and a real client waits
/// a second for its retransmission.
pub const LISTEN_BACKLOG: u32 = 4096;
/// Pause after an `accept` failure that is not about one connection.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// At most one warning per kind and interval.
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Binds `addr` (address reuse on, as std's `bind` does) and listens with
/// [`LISTEN_BACKLOG`].
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Counts events and says when to log them.
#[derive(Debug, Default)]
struct Throttle {
    last: Option<Instant>,
    count: u64,
}

impl Throttle {
    /// Counts one event; returns the count since the last log when it is time for one.
    fn hit(&mut self, now: Instant) -> Option<u64> {
        self.count += 1;
        if self.last.is_some_and(|at| now < at + LOG_INTERVAL) {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.count))
    }
}

/// The listener with its connection slots.
pub struct Acceptor {
    listener: TcpListener,
    slots: Arc<Semaphore>,
    refused: Throttle,
    failed: Throttle,
}

impl Acceptor {
    /// Accepts from `listener`, keeping at most `max_connections` open.
    pub fn new(listener: TcpListener, max_connections: usize) -> Acceptor {
        Acceptor {
            listener,
            slots: Arc::new(Semaphore::new(max_connections.min(Semaphore::MAX_PERMITS))),
            refused: Throttle::default(),
            failed: Throttle::default(),
        }
    }

    /// The next connection there is a slot for; the slot is freed when the permit drops.
    pub async fn next(&mut self) -> (TcpStream, SocketAddr, OwnedSemaphorePermit) {
        loop {
            match self.listener.accept().await {
                Ok((tcp, peer)) => match self.slots.clone().try_acquire_owned() {
                    Ok(permit) => return (tcp, peer, permit),
                    Err(_) => {
                        drop(tcp);
                        if let Some(n) = self.refused.hit(Instant::now()) {
                            tracing::warn!(
                                refused = n,
                                "max_connections reached: closing new connections"
                            );
                        }
                    }
                },
                Err(e) if about_one_connection(&e) => {}
                Err(e) => {
                    if let Some(n) = self.failed.hit(Instant::now()) {
                        tracing::warn!(error = %e, failures = n, "accept failed (out of file descriptors?); retrying");
                    }
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
    }
}

/// Errors that concern the connection being accepted, not the listener: skip it.
fn about_one_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_logs_once_per_interval_with_a_count() {
        let mut t = Throttle::default();
        let start = Instant::now();
        assert_eq!(t.hit(start), Some(1));
        assert_eq!(t.hit(start + Duration::from_secs(1)), None);
        assert_eq!(t.hit(start + Duration::from_secs(2)), None);
        assert_eq!(t.hit(start + LOG_INTERVAL), Some(2 + 1));
        assert_eq!(t.hit(start + LOG_INTERVAL), None);
    }
}
