//! A userspace delay stage for the network-fault tests, used when the kernel has no
//! `sch_netem` (then `tc qdisc ... netem` answers "Specified qdisc kind is unknown").
//!
//! A TCP proxy: each connection to it opens one to `upstream`, and every chunk read in
//! either direction is written on after `delay` — a delay, not a bandwidth limit, since
//! chunks queue with their arrival time and the writer only waits for each one's due
//! moment. The proxy listens on an address the agent reaches through the router, so
//! packet loss in the router still applies to the agent's side of it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Bytes read at once from either side.
const CHUNK_BYTES: usize = 16 * 1024;

/// A running delay proxy; `Drop` stops it and closes its connections.
pub struct DelayProxy {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    /// Every socket it opened, to shut down on drop.
    sockets: Arc<Mutex<Vec<TcpStream>>>,
}

impl DelayProxy {
    /// Listens on `bind` (e.g. `10.x.y.2:0`) and forwards to `upstream`.
    pub fn start(bind: &str, upstream: SocketAddr, delay: Duration) -> DelayProxy {
        let listener = TcpListener::bind(bind).expect("bind delay proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let stop = Arc::new(AtomicBool::new(false));
        let sockets: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (st, socks) = (stop.clone(), sockets.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                if let Ok(mut s) = socks.lock() {
                    s.extend(client.try_clone().ok());
                    s.extend(server.try_clone().ok());
                }
                pipe(&client, &server, delay);
                pipe(&server, &client, delay);
            }
        });
        DelayProxy {
            addr,
            stop,
            sockets,
        }
    }
}

/// Copies `from` to `to`, each chunk `delay` after it was read.
fn pipe(from: &TcpStream, to: &TcpStream, delay: Duration) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
        return;
    };
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; CHUNK_BYTES];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx
                        .send((Instant::now() + delay, buf[..n].to_vec()))
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
        // Dropping `tx` tells the writer the stream ended (after the queued chunks).
    });
    std::thread::spawn(move || {
        for (due, chunk) in rx {
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            if to.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees `stop`.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Ok(sockets) = self.sockets.lock() {
            for s in sockets.iter() {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }
}
