//! A body over the limit gets its 413, not a connection reset (finding 3): the relay
//! answers, then reads and discards the rest of the body before closing. The clients
//! here write the whole body before reading anything, as many HTTP clients do.

mod common;
mod hardening_common;
#[path = "common/hooks.rs"]
mod hooks;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use hardening_common::*;
use hooks::{parse_response, RawResp};

const LIMIT: usize = 1024 * 1024;
/// The body: the limit plus 5 MB.
const BODY_BYTES: usize = LIMIT + 5_000_000;

fn extra() -> String {
    format!("max_body_bytes = {LIMIT}")
}

/// Writes `head` and a body of [`BODY_BYTES`] (as one piece, or in `chunk`-sized HTTP
/// chunks), all of it, then reads the answer until the relay closes.
fn post_then_read(s: &mut (impl Read + Write), head: &str, chunk: Option<usize>) -> RawResp {
    s.write_all(head.as_bytes()).expect("head");
    let body = vec![b'z'; BODY_BYTES];
    match chunk {
        None => s
            .write_all(&body)
            .expect("the relay reset while the body was sent"),
        Some(size) => {
            for part in body.chunks(size) {
                s.write_all(format!("{:x}\r\n", part.len()).as_bytes())
                    .and_then(|()| s.write_all(part))
                    .and_then(|()| s.write_all(b"\r\n"))
                    .expect("the relay reset while the body was sent");
            }
            s.write_all(b"0\r\n\r\n").expect("last chunk");
        }
    }
    s.flush().expect("flush");
    let (bytes, closed) = read_until_closed(s, Instant::now(), Duration::from_secs(30));
    assert!(closed.is_some(), "the relay kept the connection open");
    let (r, _) = parse_response(&bytes)
        .unwrap_or_else(|| panic!("no answer, only {:?}", String::from_utf8_lossy(&bytes)));
    r
}

fn assert_413(r: &RawResp) {
    assert_eq!(r.status, 413, "{r:?}");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.json()["error"], "payload_too_large", "{r:?}");
}

fn declared_head() -> String {
    format!("POST /hooks/c HTTP/1.1\r\nHost: x\r\nContent-Length: {BODY_BYTES}\r\n\r\n")
}

const CHUNKED_HEAD: &str =
    "POST /hooks/c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";

fn blocking(mut s: std::net::TcpStream) -> std::net::TcpStream {
    s.set_write_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    s.flush().expect("flush");
    s
}

#[test]
fn an_oversized_body_over_plain_http_reads_413_not_a_reset() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = relay(dir.path(), &extra());
    // Refused from Content-Length, before the body.
    let mut s = blocking(connect(relay.addr));
    assert_413(&post_then_read(&mut s, &declared_head(), None));
    // Refused while reading a chunked body, once it passes the limit.
    let mut s = blocking(connect(relay.addr));
    assert_413(&post_then_read(&mut s, CHUNKED_HEAD, Some(64 * 1024)));
}

#[test]
fn an_oversized_body_over_tls_reads_413_not_a_reset() {
    let dir = tempfile::tempdir().expect("tmp");
    let pki = make_pki(dir.path());
    let relay = relay(dir.path(), &format!("{}{}", extra(), tls_section(&pki)));
    let mut s = tls_connect(relay.addr, &pki);
    s.sock
        .set_write_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    assert_413(&post_then_read(&mut s, &declared_head(), None));
    let mut s = tls_connect(relay.addr, &pki);
    assert_413(&post_then_read(&mut s, CHUNKED_HEAD, Some(64 * 1024)));
}
