//! Helpers for the relay-core tests (ingest, crash, garbage, TLS, CLI): a reusable
//! blocking HTTP client that keeps response headers, hand-built signatures with a chosen
//! timestamp, reading a channel back through the admin API, raw TCP exchanges and a
//! tmpfs mount guard for storage-failure tests.
//!
//! Signatures here are computed with `hmac`/`sha2` directly from the provider docs, not
//! with `hookrelay::common::verify::sign`, so a test signed here checks the relay against the
//! conventions rather than against its own code.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::common::{install_crypto, RelayProc, DEADLINE};

/// The admin token every relay-core test config uses.
pub const ADMIN: &str = "admin-token-for-tests";

/// A response with everything a test may look at.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub json: serde_json::Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts a spec error: status, JSON content type, `{"error": code, "message": ...}`.
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(
            self.status, status,
            "expected {status} {code}, got {self:?}"
        );
        assert_eq!(
            self.json["error"],
            code,
            "expected error code {code}: {}",
            self.text()
        );
        let message = self.json["message"].as_str().unwrap_or("");
        assert!(
            !message.is_empty(),
            "error without a message: {}",
            self.text()
        );
        assert_eq!(
            self.json.as_object().map(|o| o.len()),
            Some(2),
            "an error is exactly {{error, message}}: {}",
            self.text()
        );
        assert!(
            self.header("content-type")
                .is_some_and(|c| c.starts_with("application/json")),
            "error without a JSON content type: {self:?}"
        );
    }
}

/// A blocking HTTP client with its own small runtime; cheap to reuse in loops.
pub struct Http {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
}

impl Default for Http {
    fn default() -> Self {
        Self::new()
    }
}

impl Http {
    pub fn new() -> Http {
        install_crypto();
        Self::with_client(reqwest::Client::new())
    }

    pub fn with_client(client: reqwest::Client) -> Http {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        Http { rt, client }
    }

    /// Sends a request; `Err` only for transport failures (refused, reset, TLS).
    pub fn try_send(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<Resp, reqwest::Error> {
        self.rt.block_on(async {
            let mut req = self.client.request(
                http::Method::from_bytes(method.as_bytes()).expect("method"),
                url,
            );
            for (n, v) in headers {
                req = req.header(n.as_str(), v.as_str());
            }
            let resp = req.body(body.to_vec()).timeout(DEADLINE).send().await?;
            let status = resp.status().as_u16();
            let headers = resp
                .headers()
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let body = resp.bytes().await?.to_vec();
            let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
            Ok(Resp {
                status,
                headers,
                body,
                json,
            })
        })
    }

    pub fn send(&self, method: &str, url: &str, headers: &[(String, String)], body: &[u8]) -> Resp {
        self.try_send(method, url, headers, body)
            .unwrap_or_else(|e| panic!("{method} {url}: {e:?}"))
    }

    pub fn post(&self, url: &str, headers: &[(String, String)], body: &[u8]) -> Resp {
        self.send("POST", url, headers, body)
    }

    /// GET with an optional bearer token.
    pub fn get(&self, url: &str, token: Option<&str>) -> Resp {
        let headers: Vec<(String, String)> = token
            .map(|t| ("authorization".to_string(), format!("Bearer {t}")))
            .into_iter()
            .collect();
        self.send("GET", url, &headers, b"")
    }
}

fn mac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().to_vec()
}

fn h(name: &str, value: impl Into<String>) -> (String, String) {
    (name.to_string(), value.into())
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// GitHub: `X-Hub-Signature-256: sha256=<hex(HMAC(secret, body))>`.
pub fn github(secret: &str, body: &[u8], delivery: Option<&str>) -> Vec<(String, String)> {
    let mut v = vec![h(
        "x-hub-signature-256",
        format!("sha256={}", hex::encode(mac(secret.as_bytes(), &[body]))),
    )];
    if let Some(d) = delivery {
        v.push(h("x-github-delivery", d));
    }
    v
}

/// Stripe: `Stripe-Signature: t=<ts>,v1=<hex(HMAC(secret, "{ts}.{body}"))>`.
pub fn stripe(secret: &str, body: &[u8], ts: i64) -> Vec<(String, String)> {
    let t = ts.to_string();
    let sig = hex::encode(mac(secret.as_bytes(), &[t.as_bytes(), b".", body]));
    vec![h("stripe-signature", format!("t={t},v1={sig}"))]
}

/// Slack: `X-Slack-Signature: v0=<hex(HMAC(secret, "v0:{ts}:{body}"))>` + timestamp.
pub fn slack(secret: &str, body: &[u8], ts: i64) -> Vec<(String, String)> {
    let t = ts.to_string();
    let sig = hex::encode(mac(secret.as_bytes(), &[b"v0:", t.as_bytes(), b":", body]));
    vec![
        h("x-slack-signature", format!("v0={sig}")),
        h("x-slack-request-timestamp", t),
    ]
}

/// Standard Webhooks: key = base64 after `whsec_`; `v1,<base64(HMAC("{id}.{ts}.{body}"))>`.
/// `prefix` is `webhook` or `svix`.
pub fn standard(
    secret: &str,
    body: &[u8],
    ts: i64,
    id: &str,
    prefix: &str,
) -> Vec<(String, String)> {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .expect("whsec_ base64");
    let t = ts.to_string();
    let sig = base64::engine::general_purpose::STANDARD
        .encode(mac(&key, &[id.as_bytes(), b".", t.as_bytes(), b".", body]));
    vec![
        h(&format!("{prefix}-id"), id),
        h(&format!("{prefix}-timestamp"), t),
        h(&format!("{prefix}-signature"), format!("v1,{sig}")),
    ]
}

/// Generic HMAC: `<header>: <prefix><hex or base64 of HMAC(secret, body)>`.
pub fn hmac_sig(
    secret: &str,
    body: &[u8],
    header: &str,
    prefix: &str,
    base64_encoding: bool,
) -> Vec<(String, String)> {
    let tag = mac(secret.as_bytes(), &[body]);
    let encoded = if base64_encoding {
        base64::engine::general_purpose::STANDARD.encode(tag)
    } else {
        hex::encode(tag)
    };
    vec![h(header, format!("{prefix}{encoded}"))]
}

/// The stored body of an event in the admin/tail JSON shape.
pub fn body_of(event: &serde_json::Value) -> Vec<u8> {
    match (event.get("body"), event.get("body_base64")) {
        (Some(serde_json::Value::String(s)), _) => s.as_bytes().to_vec(),
        (_, Some(serde_json::Value::String(b))) => base64::engine::general_purpose::STANDARD
            .decode(b)
            .expect("body_base64"),
        _ => panic!("event without a body: {event}"),
    }
}

/// A channel's head as the admin API reports it.
pub fn head(http: &Http, relay: &RelayProc, channel: &str) -> u64 {
    let r = http.get(&relay.url("/v1/channels"), Some(ADMIN));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json["channels"]
        .as_array()
        .expect("channels")
        .iter()
        .find(|c| c["name"] == channel)
        .unwrap_or_else(|| panic!("channel {channel} not listed: {}", r.text()))["head"]
        .as_u64()
        .expect("head")
}

/// One stored event, if the admin API returns it.
pub fn event_at(
    http: &Http,
    relay: &RelayProc,
    channel: &str,
    offset: u64,
) -> Option<serde_json::Value> {
    let r = http.get(
        &relay.url(&format!(
            "/v1/channels/{channel}/events?from={offset}&limit=1"
        )),
        Some(ADMIN),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.json["events"]
        .as_array()
        .expect("events")
        .first()
        .filter(|e| e["offset"] == offset)
        .cloned()
}

/// Every stored event of a channel, page by page.
pub fn all_events(http: &Http, relay: &RelayProc, channel: &str) -> Vec<serde_json::Value> {
    let mut out: Vec<serde_json::Value> = Vec::new();
    let mut from = 1u64;
    loop {
        let r = http.get(
            &relay.url(&format!(
                "/v1/channels/{channel}/events?from={from}&limit=1000"
            )),
            Some(ADMIN),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        let page = r.json["events"].as_array().expect("events").clone();
        let Some(last) = page.last() else {
            return out;
        };
        from = last["offset"].as_u64().expect("offset") + 1;
        out.extend(page);
    }
}

/// Asserts `/healthz` answers 200.
pub fn assert_healthy(http: &Http, relay: &RelayProc) {
    let r = http.get(&relay.url("/healthz"), None);
    assert_eq!(r.status, 200, "healthz: {}", r.text());
}

/// Writes `bytes` on a fresh connection, half-closes, and returns everything read until
/// the peer closes (or the deadline; a test that needs an answer asserts on it).
pub fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(DEADLINE)).expect("timeout");
    // The relay may answer and close before reading everything; a failed write is fine.
    let _ = s.write_all(bytes);
    let _ = s.shutdown(std::net::Shutdown::Write);
    read_to_close(&mut s)
}

/// Reads until EOF, an error, or the deadline.
pub fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    let start = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    while start.elapsed() < DEADLINE {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    out
}

/// The status code of the first HTTP/1.x response in `bytes`, if any.
pub fn first_status(bytes: &[u8]) -> Option<u16> {
    let text = String::from_utf8_lossy(bytes);
    let rest = text.strip_prefix("HTTP/1.")?;
    rest.get(2..5)?.parse().ok()
}

/// A request as raw HTTP/1.1 bytes (with Content-Length).
pub fn raw_request(
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
    close: bool,
) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n").into_bytes();
    for (n, v) in headers {
        out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
    }
    out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// A tmpfs mounted on a fresh directory; unmounted on drop (lazily if still busy).
pub struct Tmpfs {
    pub path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. `"24m"`); `Err` with the reason when not allowed.
    pub fn mount(size: &str) -> Result<Tmpfs, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let path = dir.path().join("mnt");
        std::fs::create_dir(&path).map_err(|e| e.to_string())?;
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs { path, _dir: dir })
    }

    /// Changes the size of the mounted tmpfs (e.g. to give a full disk room again).
    pub fn resize(&self, size: &str) {
        let st = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.path)
            .status()
            .expect("run mount");
        assert!(st.success(), "remount {size} failed");
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = std::process::Command::new("umount")
            .arg(&self.path)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.path)
                .status();
        }
    }
}

/// A read-only bind mount of a directory over itself: new writes by path (creating a
/// file) fail with EROFS while files already open for writing keep working. This is
/// how a test makes a running relay's data directory read-only: `mount -o remount,ro`
/// of the whole filesystem is refused (EBUSY) while sled holds its files open for
/// writing. Unmounted (writable again) by [`ReadOnlyBind::release`] or on drop.
pub struct ReadOnlyBind {
    path: PathBuf,
    mounted: bool,
}

impl ReadOnlyBind {
    /// Binds `dir` read-only over itself; `Err` with the reason when not allowed.
    pub fn over(dir: &Path) -> Result<ReadOnlyBind, String> {
        let out = std::process::Command::new("mount")
            .args(["--bind", "-o", "ro"])
            .arg(dir)
            .arg(dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount --bind -o ro failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(ReadOnlyBind {
            path: dir.to_path_buf(),
            mounted: true,
        })
    }

    /// Makes the directory writable again.
    pub fn release(mut self) {
        let st = std::process::Command::new("umount")
            .arg(&self.path)
            .status()
            .expect("run umount");
        assert!(st.success(), "umount of the read-only bind failed");
        self.mounted = false;
    }
}

impl Drop for ReadOnlyBind {
    fn drop(&mut self) {
        if self.mounted {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.path)
                .status();
        }
    }
}

/// Polls `cond` every few milliseconds until it holds; panics past the deadline.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One parsed HTTP/1.1 response.
#[derive(Debug, Clone)]
pub struct RawResp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResp {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Parses one complete response at the start of `buf` (Content-Length or chunked
/// bodies); `None` until it is complete. Returns the response and the bytes it used.
pub fn parse_response(buf: &[u8]) -> Option<(RawResp, usize)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    if get("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        let mut body = Vec::new();
        let mut at = end;
        loop {
            let line_end = at + buf.get(at..)?.windows(2).position(|w| w == b"\r\n")?;
            let size_text = String::from_utf8_lossy(&buf[at..line_end]).into_owned();
            let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
            let data = line_end + 2;
            if size == 0 {
                let trailer_end =
                    data + buf.get(data..)?.windows(2).position(|w| w == b"\r\n")? + 2;
                return Some((
                    RawResp {
                        status,
                        headers,
                        body,
                    },
                    trailer_end,
                ));
            }
            body.extend_from_slice(buf.get(data..data + size)?);
            at = data + size + 2;
            if buf.len() < at {
                return None;
            }
        }
    }
    let len: usize = get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let body = buf.get(end..end + len)?.to_vec();
    Some((
        RawResp {
            status,
            headers,
            body,
        },
        end + len,
    ))
}

/// Reads until `n` complete responses arrived (or the peer closed / the deadline).
pub fn read_responses(s: &mut TcpStream, n: usize) -> Vec<RawResp> {
    let start = Instant::now();
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    while out.len() < n && start.elapsed() < DEADLINE {
        while let Some((r, used)) = parse_response(&buf) {
            buf.drain(..used);
            out.push(r);
            if out.len() == n {
                return out;
            }
        }
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(k) => buf.extend_from_slice(&chunk[..k]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) => {}
            Err(_) => break,
        }
    }
    while out.len() < n {
        match parse_response(&buf) {
            Some((r, used)) => {
                buf.drain(..used);
                out.push(r);
            }
            None => break,
        }
    }
    out
}
