//! Concurrent large bodies are bounded by `max_inflight_body_bytes` (finding 4): the
//! body that does not fit gets `503 unavailable` with `Retry-After`, the others are
//! stored, and once they are done a new one fits again.

mod common;
mod hardening_common;
#[path = "common/hooks.rs"]
mod hooks;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use hardening_common::*;
use hooks::{parse_response, Http, RawResp, ADMIN};

const MIB: usize = 1024 * 1024;
/// Room for two bodies of [`BODY_BYTES`], not three.
const BUDGET_BYTES: usize = 3 * MIB;
const BODY_BYTES: usize = 1200 * 1024;
const FIRST_PART_BYTES: usize = 1024;

/// Sends the head and the first bytes of a [`BODY_BYTES`] body.
fn start_post(relay: &common::RelayProc) -> TcpStream {
    let mut s = connect(relay.addr);
    let head = format!("POST /hooks/c HTTP/1.1\r\nHost: x\r\nContent-Length: {BODY_BYTES}\r\n\r\n");
    send(&mut s, head.as_bytes());
    send(&mut s, &vec![b'a'; FIRST_PART_BYTES]);
    s
}

/// Polls the connections until one has a complete answer: (its index, the answer).
fn first_answer(conns: &mut [TcpStream]) -> (usize, RawResp) {
    let start = Instant::now();
    let mut bufs = vec![Vec::new(); conns.len()];
    let mut chunk = [0u8; 4096];
    while start.elapsed() < Duration::from_secs(30) {
        for (i, s) in conns.iter_mut().enumerate() {
            if let Ok(n) = std::io::Read::read(s, &mut chunk) {
                bufs[i].extend_from_slice(&chunk[..n]);
            }
            if let Some((r, _)) = parse_response(&bufs[i]) {
                return (i, r);
            }
        }
    }
    panic!("no connection got an answer");
}

#[test]
fn the_body_that_does_not_fit_gets_503_and_the_others_are_stored() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = relay(
        dir.path(),
        &format!(
            "admin_token = \"{ADMIN}\"\nmax_body_bytes = {}\nmax_inflight_body_bytes = {BUDGET_BYTES}",
            2 * MIB
        ),
    );
    let mut conns: Vec<TcpStream> = (0..3).map(|_| start_post(&relay)).collect();
    let (refused, r) = first_answer(&mut conns);
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.json()["error"], "unavailable", "{r:?}");
    assert!(
        r.header("retry-after")
            .is_some_and(|v| v.parse::<u64>().is_ok()),
        "no Retry-After: {r:?}"
    );
    // The other two finish their bodies and are stored.
    conns.remove(refused);
    for s in &mut conns {
        send(s, &vec![b'a'; BODY_BYTES - FIRST_PART_BYTES]);
    }
    for s in &mut conns {
        let answer = hooks::read_responses(s, 1);
        assert_eq!(answer.first().map(|r| r.status), Some(200), "{answer:?}");
    }
    let http = Http::new();
    assert_eq!(hooks::head(&http, &relay, "c"), 2);
    // Their shares are back: a new large body fits.
    let r = http.post(&relay.url("/hooks/c"), &[], &vec![b'b'; BODY_BYTES]);
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn a_chunked_body_is_counted_as_it_arrives() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = relay(
        dir.path(),
        &format!(
            "max_body_bytes = {}\nmax_inflight_body_bytes = {BUDGET_BYTES}",
            2 * MIB
        ),
    );
    // Two declared bodies hold 2.4 MiB; a chunked one fits until it passes 0.6 MiB.
    let mut held: Vec<TcpStream> = (0..2).map(|_| start_post(&relay)).collect();
    // Wait until the relay holds their shares. (Probing with a request that takes a
    // share itself would race them: a probe that fits first gets one of them refused.)
    hooks::wait_until("the held bodies' shares", || {
        let m = common::metrics::scrape(&relay.url("/metrics"));
        common::metrics::value(&m, "hookrelay_inflight_body_bytes", &[])
            .is_some_and(|v| v >= (2 * BODY_BYTES) as f64)
    });
    let mut s = connect(relay.addr);
    send(
        &mut s,
        b"POST /hooks/c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    let part = vec![b'c'; 64 * 1024];
    let mut answer = Vec::new();
    let mut sent = 0;
    let start = Instant::now();
    while parse_response(&answer).is_none() {
        assert!(start.elapsed() < Duration::from_secs(30), "no answer");
        assert!(sent <= 2 * MIB, "sent {sent} bytes without a refusal");
        send(&mut s, format!("{:x}\r\n", part.len()).as_bytes());
        send(&mut s, &part);
        send(&mut s, b"\r\n");
        sent += part.len();
        let mut chunk = [0u8; 4096];
        if let Ok(n) = std::io::Read::read(&mut s, &mut chunk) {
            answer.extend_from_slice(&chunk[..n]);
        }
    }
    let (r, _) = parse_response(&answer).expect("answer");
    assert_eq!(r.status, 503, "{r:?}");
    assert!(
        sent > BUDGET_BYTES - 2 * BODY_BYTES,
        "refused at {sent} bytes"
    );
    // Nothing was refused because of the held connections' own bodies.
    for s in &mut held {
        send(s, &vec![b'a'; BODY_BYTES - FIRST_PART_BYTES]);
        let answer = hooks::read_responses(s, 1);
        assert_eq!(answer.first().map(|r| r.status), Some(200), "{answer:?}");
    }
}
