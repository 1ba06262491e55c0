//! The refusals hyper writes itself carry the relay's JSON error too (finding 2): a
//! malformed request line or header (400), more than 100 headers, a head over 64 KiB
//! and a 70 KB query (431) — on a fresh connection and after a served request.

mod common;
mod hardening_common;
#[path = "common/hooks.rs"]
mod hooks;

use std::time::{Duration, Instant};

use hardening_common::*;
use hooks::{parse_response, RawResp};

/// Sends `bytes` on `s` and returns the responses read until the relay closes.
fn exchange(s: &mut std::net::TcpStream, bytes: &[u8]) -> Vec<RawResp> {
    send(s, bytes);
    let (mut buf, closed) = read_until_closed(s, Instant::now(), Duration::from_secs(30));
    assert!(closed.is_some(), "the relay kept the connection open");
    let mut out = Vec::new();
    while let Some((r, used)) = parse_response(&buf) {
        buf.drain(..used);
        out.push(r);
    }
    assert!(
        !out.is_empty(),
        "no answer: {:?}",
        String::from_utf8_lossy(&buf)
    );
    out
}

fn assert_json_error(what: &str, r: &RawResp, status: u16, code: &str) {
    assert_eq!(r.status, status, "{what}: {r:?}");
    assert_eq!(
        r.header("content-type"),
        Some("application/json"),
        "{what}: {r:?}"
    );
    let json = r.json();
    assert_eq!(json["error"], code, "{what}: {r:?}");
    assert!(
        json["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}"
    );
    assert_eq!(json.as_object().map(|o| o.len()), Some(2), "{what}: {json}");
}

fn cases() -> Vec<(&'static str, Vec<u8>, u16, &'static str)> {
    let many: String = (0..101).map(|i| format!("X-H{i}: v\r\n")).collect();
    vec![
        (
            "a malformed request line",
            b"GARBAGE\r\n\r\n".to_vec(),
            400,
            "bad_request",
        ),
        (
            "a header without a colon",
            b"POST /hooks/c HTTP/1.1\r\nHost: x\r\nNo-Colon-Header\r\n\r\n".to_vec(),
            400,
            "bad_request",
        ),
        (
            "101 headers",
            format!("POST /hooks/c HTTP/1.1\r\nHost: x\r\n{many}Content-Length: 0\r\n\r\n")
                .into_bytes(),
            431,
            "request_header_fields_too_large",
        ),
        (
            "a 70 KB header",
            format!(
                "POST /hooks/c HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nContent-Length: 0\r\n\r\n",
                "h".repeat(70_000)
            )
            .into_bytes(),
            431,
            "request_header_fields_too_large",
        ),
        (
            "a 70 KB query",
            format!(
                "GET /healthz?q={} HTTP/1.1\r\nHost: x\r\n\r\n",
                "q".repeat(70_000)
            )
            .into_bytes(),
            431,
            "request_header_fields_too_large",
        ),
    ]
}

#[test]
fn hyper_refusals_are_json_on_a_fresh_connection() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = relay(dir.path(), "");
    for (what, bytes, status, code) in cases() {
        let mut s = connect(relay.addr);
        let answers = exchange(&mut s, &bytes);
        assert_json_error(what, &answers[0], status, code);
    }
}

#[test]
fn hyper_refusals_are_json_after_a_served_request() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = relay(dir.path(), "");
    for (what, bytes, status, code) in cases() {
        let mut s = connect(relay.addr);
        // The first answer is read before the bad head goes out: not pipelined.
        send(&mut s, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        let first = hooks::read_responses(&mut s, 1);
        assert_eq!(first.first().map(|r| r.status), Some(200), "{what}");
        let answers = exchange(&mut s, &bytes);
        assert_json_error(what, &answers[0], status, code);
    }
}

#[test]
fn a_head_just_under_64_kib_is_still_served() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = relay(dir.path(), "");
    let big = format!(
        "POST /hooks/c HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nContent-Length: 2\r\n\r\n{{}}",
        "h".repeat(60_000)
    );
    let mut s = connect(relay.addr);
    // Twice on one connection: fresh, then after a served request.
    send(&mut s, big.as_bytes());
    let first = hooks::read_responses(&mut s, 1);
    assert_eq!(first.first().map(|r| r.status), Some(200), "{first:?}");
    send(&mut s, big.as_bytes());
    let second = hooks::read_responses(&mut s, 1);
    assert_eq!(second.first().map(|r| r.status), Some(200), "{second:?}");
}
