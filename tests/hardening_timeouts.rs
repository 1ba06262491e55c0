//! Connections that say nothing are closed (finding 1): a silent socket, a dripping
//! body, a trickled head, an idle keep-alive, h2c after its preface, TLS after (or
//! without) its handshake; `max_connections` refuses the excess at once; a relay out
//! of file descriptors keeps serving without spinning; agent streams are untouched.
//!
//! The relays here use 1–2 s limits. A bound is checked from both sides: the close
//! comes no earlier than the limit (it is the limit acting, not a refusal) and well
//! before [`WITHIN`], far less than what the connections held before (≥ 70 s).

mod common;
mod hardening_common;
#[path = "common/hooks.rs"]
mod hooks;
#[path = "common/ws.rs"]
mod ws;

use std::time::{Duration, Instant};

use common::RelayProc;
use hardening_common::*;
use hooks::{parse_response, Http};

/// How long a test waits for a close that a 1–2 s limit should cause.
const WITHIN: Duration = Duration::from_secs(15);
/// Timers fire a little early or late on a loaded machine.
const EARLY: Duration = Duration::from_millis(800);

const SHORT: &str = "first_byte_timeout_secs = 1\nbody_timeout_secs = 2\nidle_timeout_secs = 2";

fn assert_closed_after(what: &str, closed: Option<Duration>, limit: Duration) {
    let at = closed.unwrap_or_else(|| panic!("{what}: still open after {WITHIN:?}"));
    assert!(
        at + EARLY >= limit,
        "{what}: closed after {at:?}, before the {limit:?} limit"
    );
}

fn post_ok(relay: &RelayProc, body: &[u8]) {
    let r = Http::new().post(&relay.url("/hooks/c"), &[], body);
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn a_silent_socket_is_closed_after_first_byte_timeout() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = relay(dir.path(), SHORT);
    let start = Instant::now();
    let mut s = connect(relay.addr);
    let (bytes, closed) = read_until_closed(&mut s, start, WITHIN);
    assert_closed_after("silent socket", closed, Duration::from_secs(1));
    assert!(bytes.is_empty(), "{:?}", String::from_utf8_lossy(&bytes));
    post_ok(&relay, b"after");
}

#[test]
fn a_trickled_head_is_closed_and_an_idle_keep_alive_too() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = relay(dir.path(), SHORT);
    // Half a request line, then nothing: the head must be whole 1 s after its first byte.
    let mut s = connect(relay.addr);
    send(&mut s, b"POST /hooks/c HT");
    let start = Instant::now();
    let (_, closed) = read_until_closed(&mut s, start, WITHIN);
    assert_closed_after("trickled head", closed, Duration::from_secs(1));

    // A served keep-alive connection is idle for idle_timeout_secs (2 s), not 1 s.
    let mut s = connect(relay.addr);
    send(&mut s, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    let start = Instant::now();
    let (bytes, closed) = read_until_closed(&mut s, start, WITHIN);
    let (r, _) = parse_response(&bytes).expect("a response before the close");
    assert_eq!(r.status, 200);
    assert_closed_after("idle keep-alive", closed, Duration::from_secs(2));
}

#[test]
fn a_dripping_body_gets_408_json_and_the_connection_closes() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = relay(
        dir.path(),
        &format!("{SHORT}\nadmin_token = \"{}\"", hooks::ADMIN),
    );
    let mut s = connect(relay.addr);
    send(
        &mut s,
        b"POST /hooks/c HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n",
    );
    let start = Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    // One byte every 300 ms, as the attacker did (every 2 s), until the relay answers.
    while parse_response(&answer).is_none() {
        assert!(start.elapsed() < WITHIN, "no answer to a dripping body");
        send(&mut s, b"x");
        if let Ok(n) = std::io::Read::read(&mut s, &mut buf) {
            answer.extend_from_slice(&buf[..n]);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let answered = start.elapsed();
    assert!(
        answered + EARLY >= Duration::from_secs(2),
        "answered after {answered:?}"
    );
    let (r, _) = parse_response(&answer).expect("response");
    assert_eq!(r.status, 408, "{r:?}");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.json()["error"], "request_timeout", "{r:?}");
    let (_, closed) = read_until_closed(&mut s, start, WITHIN);
    assert!(closed.is_some(), "the connection stayed open after the 408");
    assert_eq!(
        hooks::head(&Http::new(), &relay, "c"),
        0,
        "a 408 stored something"
    );
}

#[test]
fn h2c_silent_after_its_preface_is_closed() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = relay(dir.path(), SHORT);
    let mut s = connect(relay.addr);
    // The preface and an empty SETTINGS frame: a valid HTTP/2 start, then silence.
    send(
        &mut s,
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00",
    );
    let start = Instant::now();
    let (bytes, closed) = read_until_closed(&mut s, start, WITHIN);
    assert!(!bytes.is_empty(), "the relay did not speak HTTP/2");
    assert_closed_after("h2c after preface", closed, Duration::from_secs(1));
}

#[test]
fn tls_without_a_handshake_or_silent_after_it_is_closed() {
    let dir = tempfile::tempdir().expect("tmp");
    let pki = make_pki(dir.path());
    let relay = relay(dir.path(), &format!("{SHORT}{}", tls_section(&pki)));
    // Never starts the handshake.
    let start = Instant::now();
    let mut s = connect(relay.addr);
    let (_, closed) = read_until_closed(&mut s, start, WITHIN);
    assert_closed_after("no TLS handshake", closed, Duration::from_secs(1));
    // Starts it and stops halfway: a ClientHello record header with no body.
    let start = Instant::now();
    let mut s = connect(relay.addr);
    send(&mut s, b"\x16\x03\x01\x02\x00");
    let (_, closed) = read_until_closed(&mut s, start, WITHIN);
    assert_closed_after("half a TLS handshake", closed, Duration::from_secs(1));
    // Completes it, then says nothing.
    let start = Instant::now();
    let mut tls = tls_connect(relay.addr, &pki);
    let (_, closed) = read_until_closed(&mut tls, start, WITHIN);
    assert_closed_after("silent after TLS handshake", closed, Duration::from_secs(1));
}

#[test]
fn past_max_connections_new_ones_are_closed_at_once() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = relay(
        dir.path(),
        "max_connections = 3\nfirst_byte_timeout_secs = 2",
    );
    let silent: Vec<_> = (0..3).map(|_| connect(relay.addr)).collect();
    // The fourth is accepted after them and closed without waiting for anything.
    let start = Instant::now();
    let mut extra = connect(relay.addr);
    let (_, closed) = read_until_closed(&mut extra, start, WITHIN);
    let at = closed.expect("the extra connection stayed open");
    assert!(at < Duration::from_secs(1), "refused only after {at:?}");
    // A real request meanwhile is refused the same way.
    let refused = Http::new().try_send("POST", &relay.url("/hooks/c"), &[], b"x");
    assert!(refused.is_err(), "served past max_connections: {refused:?}");
    // Once the silent ones time out, the relay serves again.
    for mut s in silent {
        let (_, closed) = read_until_closed(&mut s, start, WITHIN);
        assert!(closed.is_some(), "a silent connection stayed open");
    }
    post_ok(&relay, b"after the flood");
}

#[test]
fn out_of_file_descriptors_the_relay_recovers_without_spinning() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = relay_with_nofile(dir.path(), "first_byte_timeout_secs = 1", 64, 64);
    let cpu_before = cpu_time(relay.pid());
    let start = Instant::now();
    // More silent sockets than the relay has descriptors: most wait in the backlog.
    let silent: Vec<_> = (0..200).map(|_| connect(relay.addr)).collect();
    // A real request queued behind them is served once they have timed out.
    post_ok(&relay, b"after the fd flood");
    let elapsed = start.elapsed();
    drop(silent);
    let cpu = cpu_time(relay.pid()).saturating_sub(cpu_before);
    assert!(
        cpu < Duration::from_secs(2),
        "the relay used {cpu:?} of CPU in {elapsed:?}: spinning?"
    );
    let log = relay.stderr_text();
    let warnings = log.matches("accept failed").count();
    assert!(
        warnings >= 1,
        "no warning about the descriptor limit:\n{log}"
    );
    assert!(
        warnings <= 1 + elapsed.as_secs() as usize / 10,
        "{warnings} warnings in {elapsed:?}"
    );
}

#[test]
fn the_soft_open_file_limit_is_raised_to_the_hard_one() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = relay_with_nofile(dir.path(), "", 64, 4096);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", relay.pid())).expect("limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("open files line");
    let numbers: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(numbers, ["4096", "4096"], "{line}");
}

#[test]
fn agent_streams_outlive_the_http_timeouts() {
    use hookrelay::common::protocol::{ClientMsg, ServerMsg, Start};
    let dir = tempfile::tempdir().expect("tmp");
    let relay = relay(
        dir.path(),
        &format!("{SHORT}\nstream_heartbeat_secs = 1\nstream_idle_timeout_secs = 5"),
    );
    let mut agent = ws::WsClient::open(&relay, "t");
    agent.subscribe(1, "c", "g", Start::Latest, 10);
    // Four relay heartbeats: over 3 s on a connection whose HTTP limits are 1–2 s.
    let mut pings = 0;
    while pings < 4 {
        match agent.next_frame_unanswered(WITHIN) {
            Some(ServerMsg::Ping { nonce }) => {
                agent.send(&ClientMsg::Pong { nonce });
                pings += 1;
            }
            Some(ServerMsg::CaughtUp { .. }) => {}
            Some(other) => panic!("unexpected frame {other:?}"),
            None => panic!("the relay closed the agent stream after {pings} heartbeats"),
        }
    }
    post_ok(&relay, b"still streaming");
    let (offset, _) = agent.recv_event(1);
    assert_eq!(offset, 1);
}
