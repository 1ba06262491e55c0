//! Local services for the agent feature tests, included with
//! `#[path = "common/local_services.rs"] mod local_services;`: a Python
//! `http.server`-style target (scripts/python_target.py), an HTTPS service with a
//! private CA, and a service whose first answer is slow.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Upper bound for any wait here; reaching it is a failure.
const WAIT: Duration = Duration::from_secs(30);

/// The Python target, kept with the bench script that uses it too.
const PYTHON_TARGET: &str = include_str!("../../scripts/python_target.py");

/// `python3 scripts/python_target.py` on a free port, recording (offset, unix time)
/// per request in arrival order.
pub struct PyTarget {
    child: Child,
    pub port: u16,
    arrivals: Arc<Mutex<Vec<(u64, f64)>>>,
    _dir: tempfile::TempDir,
}

impl PyTarget {
    /// Starts it; panics with a clear message when python3 is missing (the test must
    /// not pass without having run).
    pub fn start() -> PyTarget {
        let dir = tempfile::tempdir().expect("tmp");
        let script = dir.path().join("python_target.py");
        std::fs::write(&script, PYTHON_TARGET).expect("write script");
        let mut child = match Command::new("python3")
            .arg(&script)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => {
                panic!("this test needs python3 on PATH (it runs a Python http.server target): {e}")
            }
        };
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let first = lines
            .next()
            .and_then(Result::ok)
            .unwrap_or_else(|| panic!("python3 target did not start"));
        let port = first
            .strip_prefix("listening ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from the python target: {first}"));
        let arrivals: Arc<Mutex<Vec<(u64, f64)>>> = Arc::default();
        let into = arrivals.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let mut parts = line.split_whitespace();
                if let (Some(Ok(o)), Some(Ok(t))) = (
                    parts.next().map(str::parse::<u64>),
                    parts.next().map(str::parse::<f64>),
                ) {
                    into.lock().expect("lock").push((o, t));
                }
            }
        });
        PyTarget {
            child,
            port,
            arrivals,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Waits for `n` answered requests; returns every arrival so far.
    pub fn wait_for(&self, n: usize, within: Duration) -> Vec<(u64, f64)> {
        let start = Instant::now();
        loop {
            let v = self.arrivals.lock().expect("lock").clone();
            if v.len() >= n {
                return v;
            }
            assert!(
                start.elapsed() < within,
                "only {} of {n} requests reached the python target within {within:?}",
                v.len()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn arrivals(&self) -> Vec<(u64, f64)> {
        self.arrivals.lock().expect("lock").clone()
    }
}

impl Drop for PyTarget {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request a raw service read: its head (lower-cased header names) and body.
#[derive(Debug, Clone)]
pub struct RawRequest {
    pub head: String,
    pub body: Vec<u8>,
}

impl RawRequest {
    /// The value of header `name` (lower case), if present.
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

/// Reads one HTTP/1.1 request with a Content-Length body; None at the end.
fn read_request(r: &mut impl Read) -> Option<RawRequest> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if r.read(&mut byte).ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut req = RawRequest {
        head,
        body: Vec::new(),
    };
    let len: usize = req
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    req.body = vec![0; len];
    r.read_exact(&mut req.body).ok()?;
    Some(req)
}

/// A plain HTTP service that answers 200, the `slow_first` first requests only after
/// `delay`. Returns its URL and every request it read (slow ones included).
pub fn slow_first_service(
    slow_first: usize,
    delay: Duration,
) -> (String, Arc<Mutex<Vec<RawRequest>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let seen: Arc<Mutex<Vec<RawRequest>>> = Arc::default();
    let count = Arc::new(AtomicUsize::new(0));
    let into = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let into = into.clone();
            let count = count.clone();
            std::thread::spawn(move || {
                while let Some(req) = read_request(&mut s) {
                    into.lock().expect("lock").push(req);
                    if count.fetch_add(1, Ordering::SeqCst) < slow_first {
                        std::thread::sleep(delay);
                    }
                    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                    if s.write_all(answer).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, seen)
}

/// A CA, and a certificate for 127.0.0.1 it signed: (ca.pem, cert PEM, key PEM).
pub fn private_ca(dir: &std::path::Path) -> (std::path::PathBuf, String, String) {
    let ca_key = rcgen::KeyPair::generate().expect("ca key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca cert");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .expect("params")
        .signed_by(&key, &issuer)
        .expect("cert");
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, ca_cert.pem()).expect("write");
    (ca, cert.pem(), key.serialize_pem())
}

/// An HTTPS service on 127.0.0.1 with `cert_pem`/`key_pem`, answering 200 to every
/// request; returns its URL and the requests it read. Runs on its own runtime, kept
/// alive by the returned guard.
pub fn https_service(
    cert_pem: &str,
    key_pem: &str,
) -> (String, Arc<Mutex<Vec<RawRequest>>>, tokio::runtime::Runtime) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certs: Vec<_> = rustls_pemfile::certs(&mut cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .expect("certs");
    let key = rustls_pemfile::private_key(&mut key_pem.as_bytes())
        .expect("key")
        .expect("a key");
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("rt");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let url = format!("https://{}", listener.local_addr().expect("addr"));
    let seen: Arc<Mutex<Vec<RawRequest>>> = Arc::default();
    let into = seen.clone();
    rt.spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            let into = into.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                serve_tls(tls, into).await;
            });
        }
    });
    (url, seen, rt)
}

/// Answers 200 to each request on one TLS connection.
async fn serve_tls(
    tls: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    into: Arc<Mutex<Vec<RawRequest>>>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tls = tls;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let Ok(n) = tls.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        while let Some(req) = complete_request(&mut buf) {
            into.lock().expect("lock").push(req);
            let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
            if tls.write_all(answer).await.is_err() {
                return;
            }
        }
    }
}

/// Takes one whole request off the front of `buf`, if it holds one.
fn complete_request(buf: &mut Vec<u8>) -> Option<RawRequest> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let probe = RawRequest {
        head,
        body: Vec::new(),
    };
    let len: usize = probe
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if buf.len() < end + len {
        return None;
    }
    let body = buf[end..end + len].to_vec();
    buf.drain(..end + len);
    Some(RawRequest {
        head: probe.head,
        body,
    })
}
