//! Test harness shared by the integration tests: real `hookrelay` processes on
//! `127.0.0.1:0` with temporary data directories, and a recording HTTP target.
//!
//! Readiness is always a signal, never a sleep: the relay prints
//! `hookrelay listening on <url>` once it accepts connections, and waits in tests are
//! "until this condition, or fail after a generous deadline".
#![allow(dead_code)]

pub mod keys;
pub mod metrics;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Upper bound for any wait in a test; reaching it is a failure, not a pass.
pub const DEADLINE: Duration = Duration::from_secs(30);

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_hookrelay")
}

/// A running relay process.
pub struct RelayProc {
    pub child: Child,
    pub addr: SocketAddr,
    pub base: String,
    pub dir: PathBuf,
    pub config_path: PathBuf,
    pub stderr: Arc<Mutex<String>>,
}

impl RelayProc {
    /// Starts a relay whose config is `[server]` defaults plus `channels` (TOML with
    /// `[[channel]]` tables), with `data_dir` in `dir`.
    pub fn start(dir: &Path, server_extra: &str, channels: &str) -> RelayProc {
        let config_path = dir.join("config.toml");
        let data = dir.join("data");
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\n{server_extra}\n\n{channels}\n",
            data.display().to_string()
        );
        std::fs::write(&config_path, text).expect("write config");
        Self::start_with(dir, &config_path, &[])
    }

    /// Starts `hookrelay serve --config <path>` with extra arguments.
    pub fn start_with(dir: &Path, config_path: &Path, extra: &[&str]) -> RelayProc {
        let mut child = Command::new(bin())
            .arg("serve")
            .arg("--config")
            .arg(config_path)
            .args(extra)
            .env("HOOKRELAY_LOG", "hookrelay=debug")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn relay");
        let stderr = Arc::new(Mutex::new(String::new()));
        drain(child.stderr.take().expect("stderr"), stderr.clone());
        let base = wait_for_line(
            child.stdout.take().expect("stdout"),
            "hookrelay listening on ",
        )
        .unwrap_or_else(|| {
            panic!(
                "relay did not become ready; stderr:\n{}",
                stderr.lock().map(|s| s.clone()).unwrap_or_default()
            )
        });
        let addr = base
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .parse()
            .expect("address");
        RelayProc {
            child,
            addr,
            base,
            dir: dir.to_path_buf(),
            config_path: config_path.to_path_buf(),
            stderr,
        }
    }

    /// Starts again on the same config and data directory (a new port).
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Assigning drops the old value, whose Drop reaps the already-dead child.
        *self = Self::start_with(&self.dir, &self.config_path, &[]);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn ws_url(&self) -> String {
        self.base.replacen("http", "ws", 1)
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        unsafe {
            libc::kill(self.pid(), libc::SIGTERM);
        }
        wait_exit(&mut self.child)
    }

    pub fn stderr_text(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// Sets the flag when dropped (also when the thread unwinds).
struct MarkOnDrop(Arc<std::sync::atomic::AtomicBool>);

impl Drop for MarkOnDrop {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Release);
    }
}

impl Drop for RelayProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for a child to exit, failing the test past the deadline.
pub fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return status;
        }
        assert!(start.elapsed() < DEADLINE, "process did not exit in time");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Copies a pipe into a shared string in the background.
pub fn drain(pipe: impl std::io::Read + Send + 'static, into: Arc<Mutex<String>>) {
    drain_tracked(
        pipe,
        into,
        Arc::new(std::sync::atomic::AtomicBool::new(false)),
    );
}

/// Like `drain`, and sets `done` once the pipe reached its end.
pub fn drain_tracked(
    pipe: impl std::io::Read + Send + 'static,
    into: Arc<Mutex<String>>,
    done: Arc<std::sync::atomic::AtomicBool>,
) {
    std::thread::spawn(move || {
        let _mark = MarkOnDrop(done);
        let reader = BufReader::new(pipe);
        for line in reader.lines().map_while(Result::ok) {
            if let Ok(mut s) = into.lock() {
                s.push_str(&line);
                s.push('\n');
            }
        }
    });
}

/// Reads lines until one starts with `prefix` and returns the rest of it; the rest of
/// the pipe keeps draining in the background. None if the pipe closes or the deadline
/// passes first.
pub fn wait_for_line(pipe: impl std::io::Read + Send + 'static, prefix: &str) -> Option<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let prefix = prefix.to_string();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut line = String::new();
        let mut sent = false;
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if !sent {
                        if let Some(rest) = line.trim_end().strip_prefix(&prefix) {
                            let _ = tx.send(rest.to_string());
                            sent = true;
                        }
                    }
                }
            }
        }
    });
    rx.recv_timeout(DEADLINE).ok()
}

/// A request the target received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    /// Path and query, as sent on the request line.
    pub uri: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }

    pub fn headers_named(&self, name: &str) -> Vec<Vec<u8>> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .collect()
    }
}

type Responder = dyn Fn(&Received, usize) -> (u16, Vec<(String, String)>) + Send + Sync;

/// A local HTTP service on 127.0.0.1:0 that records every request. The responder
/// chooses the status from the request and its index (0-based, over all requests).
pub struct Target {
    pub addr: SocketAddr,
    state: Arc<(Mutex<Vec<Received>>, Condvar)>,
    /// Requests being handled now, and the most ever handled at once.
    concurrency: Arc<(
        std::sync::atomic::AtomicUsize,
        std::sync::atomic::AtomicUsize,
    )>,
    /// TCP connections accepted so far.
    connections: Arc<std::sync::atomic::AtomicUsize>,
    _runtime: tokio::runtime::Runtime,
}

impl Target {
    /// Answers 200 to everything.
    pub fn ok() -> Target {
        Self::with(|_, _| (200, vec![]))
    }

    pub fn with(
        responder: impl Fn(&Received, usize) -> (u16, Vec<(String, String)>) + Send + Sync + 'static,
    ) -> Target {
        Self::with_delay(Duration::ZERO, responder)
    }

    /// Like `with`, but each answer waits `delay` first (a slow service).
    pub fn with_delay(
        delay: Duration,
        responder: impl Fn(&Received, usize) -> (u16, Vec<(String, String)>) + Send + Sync + 'static,
    ) -> Target {
        Self::bound_to("127.0.0.1:0", delay, responder)
    }

    /// Like `with_delay`, listening on `bind` (e.g. an address another network
    /// namespace can reach).
    pub fn bound_to(
        bind: &str,
        delay: Duration,
        responder: impl Fn(&Received, usize) -> (u16, Vec<(String, String)>) + Send + Sync + 'static,
    ) -> Target {
        use http_body_util::BodyExt;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let state: Arc<(Mutex<Vec<Received>>, Condvar)> =
            Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let responder: Arc<Responder> = Arc::new(responder);
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(bind))
            .expect("bind target");
        let addr = listener.local_addr().expect("addr");
        let st = state.clone();
        let concurrency: Arc<(
            std::sync::atomic::AtomicUsize,
            std::sync::atomic::AtomicUsize,
        )> = Arc::default();
        let conc = concurrency.clone();
        let connections: Arc<std::sync::atomic::AtomicUsize> = Arc::default();
        let accepted = connections.clone();
        runtime.spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                accepted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let st = st.clone();
                let responder = responder.clone();
                let conc = conc.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(
                        move |req: http::Request<hyper::body::Incoming>| {
                            let st = st.clone();
                            let responder = responder.clone();
                            let conc = conc.clone();
                            async move {
                                use std::sync::atomic::Ordering::SeqCst;
                                let now = conc.0.fetch_add(1, SeqCst) + 1;
                                conc.1.fetch_max(now, SeqCst);
                                let method = req.method().to_string();
                                let uri = req.uri().to_string();
                                let headers = req
                                    .headers()
                                    .iter()
                                    .map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec()))
                                    .collect();
                                let body = req
                                    .into_body()
                                    .collect()
                                    .await
                                    .map(|b| b.to_bytes().to_vec())
                                    .unwrap_or_default();
                                let rec = Received {
                                    method,
                                    uri,
                                    headers,
                                    body,
                                };
                                if !delay.is_zero() {
                                    tokio::time::sleep(delay).await;
                                }
                                let (status, extra) = {
                                    let (lock, cv) = &*st;
                                    let mut v = lock.lock().expect("lock");
                                    let idx = v.len();
                                    let answer = responder(&rec, idx);
                                    v.push(rec);
                                    cv.notify_all();
                                    answer
                                };
                                let mut resp = http::Response::new(http_body_util::Full::new(
                                    bytes::Bytes::from_static(b"ok"),
                                ));
                                *resp.status_mut() =
                                    http::StatusCode::from_u16(status).expect("status");
                                for (n, v) in extra {
                                    resp.headers_mut().insert(
                                        http::HeaderName::from_bytes(n.as_bytes()).expect("name"),
                                        http::HeaderValue::from_str(&v).expect("value"),
                                    );
                                }
                                conc.0.fetch_sub(1, SeqCst);
                                Ok::<_, std::convert::Infallible>(resp)
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc)
                        .await;
                });
            }
        });
        Target {
            addr,
            state,
            concurrency,
            connections,
            _runtime: runtime,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The most requests the target was handling at once.
    pub fn peak_concurrency(&self) -> usize {
        self.concurrency.1.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// How many TCP connections the target has accepted.
    pub fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Every request so far, in arrival order (failed attempts included).
    pub fn received(&self) -> Vec<Received> {
        self.state.0.lock().expect("lock").clone()
    }

    /// Waits until `pred` holds for the recorded requests; panics past the deadline.
    pub fn wait_until(&self, what: &str, pred: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let (lock, cv) = &*self.state;
        let start = Instant::now();
        let mut v = lock.lock().expect("lock");
        while !pred(&v) {
            let left = DEADLINE.checked_sub(start.elapsed()).unwrap_or_else(|| {
                panic!("timed out waiting for: {what} (have {} requests)", v.len())
            });
            v = cv
                .wait_timeout(v, left.min(Duration::from_millis(200)))
                .expect("lock")
                .0;
        }
        v.clone()
    }

    /// Waits for at least `n` requests.
    pub fn wait_for(&self, n: usize) -> Vec<Received> {
        self.wait_until(&format!("{n} requests"), |v| v.len() >= n)
    }
}

/// Posts `body` to `url` signed for `kind`, with extra headers; returns status and JSON.
pub fn post_signed(
    url: &str,
    kind: hookrelay::common::verify::SchemeKind,
    secret: &str,
    body: &[u8],
    delivery_id: Option<&str>,
    extra: &[(&str, &str)],
) -> (u16, serde_json::Value) {
    let secret = hookrelay::common::verify::Secret::for_scheme(kind, secret).expect("secret");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let mut headers: Vec<(String, String)> =
        hookrelay::common::verify::sign(kind, None, &secret, body, now, delivery_id)
            .into_iter()
            .map(|(n, v)| (n.as_str().to_string(), v))
            .collect();
    for (n, v) in extra {
        headers.push((n.to_string(), v.to_string()));
    }
    post_raw(url, "POST", &headers, body)
}

/// reqwest is built without a default TLS provider; the binary installs ring at start
/// and tests must do the same once per process.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A plain blocking HTTP request; returns status and parsed JSON (Null if not JSON).
pub fn post_raw(
    url: &str,
    method: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> (u16, serde_json::Value) {
    install_crypto();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(async {
        let client = reqwest::Client::new();
        let mut req = client.request(
            http::Method::from_bytes(method.as_bytes()).expect("method"),
            url,
        );
        for (n, v) in headers {
            req = req.header(n.as_str(), v.as_str());
        }
        let resp = req.body(body.to_vec()).send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.bytes().await.expect("body");
        (
            status,
            serde_json::from_slice(&text).unwrap_or(serde_json::Value::Null),
        )
    })
}

/// GET with an optional bearer token.
pub fn get(url: &str, token: Option<&str>) -> (u16, serde_json::Value) {
    let headers: Vec<(String, String)> = token
        .map(|t| ("authorization".to_string(), format!("Bearer {t}")))
        .into_iter()
        .collect();
    post_raw(url, "GET", &headers, b"")
}

/// A running `hookrelay agent|replay|tail` process whose stdout lines are recorded, so
/// tests wait on its machine-readable lines (`hookrelay agent subscribed ...`) instead
/// of sleeping.
pub struct AgentProc {
    pub child: Child,
    pub args: Vec<String>,
    stdout: Arc<(Mutex<Output>, Condvar)>,
    pub stderr: Arc<Mutex<String>>,
    /// Set when stderr reached its end (the process exited and the pipe is drained).
    stderr_done: Arc<std::sync::atomic::AtomicBool>,
}

/// The arguments of an agent that forwards `channel` from `relay` to `forward`.
pub fn forward_args<'a>(
    relay: &'a str,
    channel: &'a str,
    forward: &'a str,
    token: &'a str,
) -> Vec<&'a str> {
    vec![
        "--relay",
        relay,
        "--channel",
        channel,
        "--forward",
        forward,
        "--token",
        token,
    ]
}

impl AgentProc {
    /// Spawns `hookrelay <args...>` (the first argument is the subcommand) without
    /// waiting for anything.
    pub fn spawn(args: &[&str]) -> AgentProc {
        Self::spawn_env(args, &[])
    }

    /// Like `spawn`, with extra environment variables.
    pub fn spawn_env(args: &[&str], env: &[(&str, &str)]) -> AgentProc {
        Self::spawn_wrapped(&[], args, env)
    }

    /// Like `spawn_env`, run through `wrapper` (e.g. `ip netns exec NAME`, which execs
    /// the binary in place, so the child is still the hookrelay process).
    pub fn spawn_wrapped(wrapper: &[&str], args: &[&str], env: &[(&str, &str)]) -> AgentProc {
        let mut cmd = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(bin());
                c
            }
            None => Command::new(bin()),
        };
        cmd.args(args)
            .env("HOOKRELAY_LOG", "hookrelay=debug")
            .env_remove("HOOKRELAY_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn hookrelay");
        let stderr = Arc::new(Mutex::new(String::new()));
        let stderr_done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        drain_tracked(
            child.stderr.take().expect("stderr"),
            stderr.clone(),
            stderr_done.clone(),
        );
        let stdout: Arc<(Mutex<Output>, Condvar)> = Arc::new(Default::default());
        let out = child.stdout.take().expect("stdout");
        let st = stdout.clone();
        std::thread::spawn(move || {
            let (lock, cv) = &*st;
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(mut o) = lock.lock() {
                    o.lines.push(line);
                }
                cv.notify_all();
            }
            if let Ok(mut o) = lock.lock() {
                o.closed = true;
            }
            cv.notify_all();
        });
        AgentProc {
            child,
            args: args.iter().map(|s| s.to_string()).collect(),
            stdout,
            stderr,
            stderr_done,
        }
    }

    /// Spawns `hookrelay agent <args...>` and waits until every route is subscribed
    /// (one `hookrelay agent subscribed` line per route; pass the route count).
    pub fn start(args: &[&str]) -> AgentProc {
        Self::start_routes(args, 1)
    }

    pub fn start_routes(args: &[&str], routes: usize) -> AgentProc {
        let mut full = vec!["agent"];
        full.extend_from_slice(args);
        let a = Self::spawn(&full);
        a.wait_lines("hookrelay agent subscribed ", routes);
        a
    }

    /// Waits until `n` stdout lines start with `prefix`; returns them. Panics (with
    /// the process's stderr) past the deadline or if the process exits first.
    pub fn wait_lines(&self, prefix: &str, n: usize) -> Vec<String> {
        let (lock, cv) = &*self.stdout;
        let start = Instant::now();
        let mut v = lock.lock().expect("lock");
        loop {
            let hits: Vec<String> = v
                .lines
                .iter()
                .filter(|l| l.starts_with(prefix))
                .cloned()
                .collect();
            if hits.len() >= n {
                return hits;
            }
            if start.elapsed() >= DEADLINE || v.closed {
                panic!(
                    "{} waiting for {n} line(s) {prefix:?}; stdout: {:?}\nstderr:\n{}",
                    if v.closed {
                        "stdout closed"
                    } else {
                        "timed out"
                    },
                    v.lines,
                    self.stderr_text()
                );
            }
            v = cv
                .wait_timeout(v, Duration::from_millis(200))
                .expect("lock")
                .0;
        }
    }

    /// The first stdout line starting with `prefix` (waiting for it).
    pub fn wait_line(&self, prefix: &str) -> String {
        self.wait_lines(prefix, 1).remove(0)
    }

    /// Every stdout line so far.
    pub fn lines(&self) -> Vec<String> {
        self.stdout.0.lock().expect("lock").lines.clone()
    }

    /// Waits for the process to end by itself (panics past the deadline).
    /// Waits for exit and for stderr to be read to its end, so that `stderr_text`
    /// afterwards holds everything the process wrote.
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let status = wait_exit(&mut self.child);
        let start = Instant::now();
        while !self.stderr_done.load(std::sync::atomic::Ordering::Acquire) {
            assert!(start.elapsed() < DEADLINE, "stderr did not close");
            std::thread::sleep(Duration::from_millis(5));
        }
        status
    }

    /// Waits for exit and for stdout to be read to its end; returns status and lines.
    pub fn finish(&mut self) -> (std::process::ExitStatus, Vec<String>) {
        let status = self.wait_exit();
        let (lock, cv) = &*self.stdout;
        let start = Instant::now();
        let mut o = lock.lock().expect("lock");
        while !o.closed {
            assert!(start.elapsed() < DEADLINE, "stdout did not close");
            o = cv
                .wait_timeout(o, Duration::from_millis(200))
                .expect("lock")
                .0;
        }
        (status, o.lines.clone())
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        unsafe {
            libc::kill(self.pid(), libc::SIGTERM);
        }
        self.wait_exit()
    }

    /// Everything written to stderr so far (all of it after `wait_exit`/`finish`).
    pub fn stderr_text(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// What a process wrote on stdout so far, and whether the pipe closed.
#[derive(Default)]
pub struct Output {
    pub lines: Vec<String>,
    pub closed: bool,
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Resident memory of a process in KiB (VmRSS from /proc), if readable.
pub fn rss_kib(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// A local service that reports each request the moment it has read it, then takes
/// `delay` to answer 200: the test knows exactly when a delivery is in flight.
pub fn slow_service(delay: Duration) -> (String, std::sync::mpsc::Receiver<Vec<u8>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            // Read the head and a body of the declared length.
            while let Ok(n) = s.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_ascii_lowercase();
                if let Some(end) = text.find("\r\n\r\n") {
                    let len = text
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len {
                        break;
                    }
                }
            }
            let _ = tx.send(buf);
            std::thread::sleep(delay);
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (url, rx)
}
