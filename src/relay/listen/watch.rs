//! One connection's deadline, and the watchdog that closes the connection when it passes.
//!
//! The state is fed from three places: the socket wrapper ([`crate::relay::listen::io`])
//! reports bytes read and writes that block, the connection service
//! ([`crate::relay::listen::service`]) reports requests starting and finishing. From
//! that, [`ConnState::deadline`] is, at any time, the earliest of:
//!
//! - no request in progress, nothing served yet: accept + `first_byte`;
//! - no request in progress afterwards: end of the last response + `idle`;
//! - HTTP/1 with the first byte of a head read: that byte + `first_byte` (the head
//!   must be complete by then; this replaces hyper's `header_read_timeout`, which
//!   would also cut idle keep-alive connections at that bound);
//! - a write blocked (the client does not read): blocked since + `idle`.
//!
//! While a request is in progress and its response flows, there is no deadline here:
//! the body has its own ([`crate::relay::listen::request_body`]), and a handler's time
//! is not the client's fault.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit};
use tokio::time::Instant;

use crate::relay::listen::limits::ConnLimits;

/// The first bytes of every HTTP/2 connection (RFC 9113 §3.4).
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Why a watchdog closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// No first request within `first_byte_timeout_secs` of the accept.
    FirstRequest,
    /// An HTTP/1 request head still incomplete `first_byte_timeout_secs` after its first byte.
    Head,
    /// No new request within `idle_timeout_secs` of the last response.
    Idle,
    /// The client read nothing of a response for `idle_timeout_secs`.
    WriteStall,
}

impl Expiry {
    /// The phase's name, for log lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Expiry::FirstRequest => "no request within first_byte_timeout_secs",
            Expiry::Head => "request head incomplete after first_byte_timeout_secs",
            Expiry::Idle => "idle for idle_timeout_secs",
            Expiry::WriteStall => "response unread for idle_timeout_secs",
        }
    }
}

/// Which protocol the connection speaks, from its first bytes (as hyper decides it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// Fewer than 24 bytes seen, all matching the HTTP/2 preface so far.
    Unknown(usize),
    Http1,
    Http2,
}

impl Protocol {
    fn feed(&mut self, bytes: &[u8]) {
        if let Protocol::Unknown(seen) = *self {
            let take = bytes.len().min(H2_PREFACE.len() - seen);
            *self = if bytes[..take] != H2_PREFACE[seen..seen + take] {
                Protocol::Http1
            } else if seen + take == H2_PREFACE.len() {
                Protocol::Http2
            } else {
                Protocol::Unknown(seen + take)
            };
        }
    }
}

#[derive(Debug)]
struct Timing {
    /// Requests whose response has not been fully handed to hyper yet.
    active: usize,
    /// The accept, or the end of the last response.
    idle_since: Instant,
    served: bool,
    /// The first byte read since `idle_since`, while no request was active.
    head_started: Option<Instant>,
    write_blocked_since: Option<Instant>,
    protocol: Protocol,
    upgraded: bool,
}

/// What one connection's pieces share.
#[derive(Debug)]
pub struct ConnState {
    timing: Mutex<Timing>,
    wake: Notify,
    first_byte: Duration,
    idle: Duration,
    /// The connection's slot in `max_connections`.
    permit: Mutex<Option<OwnedSemaphorePermit>>,
    /// The client may still be sending when hyper closes: close lingering.
    linger: AtomicBool,
    /// The watchdog closed the connection: no lingering for a client that stalled.
    expired: AtomicBool,
}

impl ConnState {
    /// The watchdog state of a new connection.
    pub fn new(
        accepted_at: Instant,
        limits: &ConnLimits,
        permit: Option<OwnedSemaphorePermit>,
    ) -> ConnState {
        ConnState {
            timing: Mutex::new(Timing {
                active: 0,
                idle_since: accepted_at,
                served: false,
                head_started: None,
                write_blocked_since: None,
                protocol: Protocol::Unknown(0),
                upgraded: false,
            }),
            wake: Notify::new(),
            first_byte: limits.first_byte,
            idle: limits.idle,
            permit: Mutex::new(permit),
            linger: AtomicBool::new(false),
            expired: AtomicBool::new(false),
        }
    }

    fn timing(&self) -> MutexGuard<'_, Timing> {
        // Nothing panics while holding the lock; a poisoned one still holds valid data.
        self.timing.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes arrived (an empty slice is the end of the stream, and changes nothing).
    pub fn on_read(&self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let mut t = self.timing();
        t.protocol.feed(bytes);
        if t.active == 0 && t.head_started.is_none() {
            t.head_started = Some(Instant::now());
            drop(t);
            self.wake.notify_one();
        }
    }

    /// A write could not proceed (`blocked`) or did.
    pub fn on_write(&self, blocked: bool) {
        let mut t = self.timing();
        match (blocked, t.write_blocked_since) {
            (true, None) => {
                t.write_blocked_since = Some(Instant::now());
                drop(t);
                self.wake.notify_one();
            }
            (false, Some(_)) => t.write_blocked_since = None,
            _ => {}
        }
    }

    /// A request's head arrived: its body timer starts, the idle timer stops.
    pub fn request_started(&self) {
        let mut t = self.timing();
        t.active += 1;
        t.head_started = None;
    }

    /// A response went out: the connection is idle until the next request.
    pub fn request_finished(&self) {
        let mut t = self.timing();
        t.active = t.active.saturating_sub(1);
        if t.active == 0 {
            t.idle_since = Instant::now();
            t.served = true;
            t.head_started = None;
            drop(t);
            self.wake.notify_one();
        }
    }

    /// The response switches protocols: the connection is about to leave hyper.
    pub fn mark_upgraded(&self) {
        self.timing().upgraded = true;
    }

    /// The connection became a WebSocket: HTTP timeouts no longer apply.
    pub fn upgraded(&self) -> bool {
        self.timing().upgraded
    }

    /// HTTP/1 with no request in progress: what arrives now is a request head (never
    /// on a WebSocket, whose upgrade request has finished too).
    pub fn reading_http1_head(&self) -> bool {
        let t = self.timing();
        t.protocol == Protocol::Http1 && t.active == 0 && !t.upgraded
    }

    /// The connection speaks HTTP/1 (not yet known to be HTTP/2).
    pub fn is_http1(&self) -> bool {
        self.timing().protocol == Protocol::Http1
    }

    /// A request body was left unread (refused early, or timed out).
    pub fn set_linger(&self) {
        self.linger.store(true, Ordering::Relaxed);
    }

    /// Whether closing should linger: HTTP/1 only (HTTP/2 resets the stream instead),
    /// and not after the watchdog gave up on the client.
    pub fn wants_linger(&self) -> bool {
        self.linger.load(Ordering::Relaxed)
            && !self.expired.load(Ordering::Relaxed)
            && self.is_http1()
    }

    /// The watchdog is closing the connection.
    pub fn mark_expired(&self) {
        self.expired.store(true, Ordering::Relaxed);
    }

    /// Frees the connection's slot in `max_connections` before the connection ends.
    pub fn release_permit(&self) {
        let permit = self.permit.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(permit);
    }

    /// The earliest deadline now, and what passing it means.
    pub fn deadline(&self) -> Option<(Instant, Expiry)> {
        let t = self.timing();
        let stall = t
            .write_blocked_since
            .map(|at| (at + self.idle, Expiry::WriteStall));
        if t.active > 0 {
            return stall;
        }
        let waiting = match (t.protocol, t.head_started) {
            (Protocol::Http1, Some(at)) => (at + self.first_byte, Expiry::Head),
            _ if t.served => (t.idle_since + self.idle, Expiry::Idle),
            _ => (t.idle_since + self.first_byte, Expiry::FirstRequest),
        };
        Some(match stall {
            Some(s) if s.0 < waiting.0 => s,
            _ => waiting,
        })
    }

    /// Resolves once the deadline has passed.
    pub async fn expired(&self) -> Expiry {
        loop {
            // Created before reading the state: a change in between still wakes us
            // (`notify_one` keeps a permit when nobody waits).
            let changed = self.wake.notified();
            match self.deadline() {
                Some((at, why)) if at <= Instant::now() => return why,
                Some((at, _)) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(at) => {}
                        _ = changed => {}
                    }
                }
                None => changed.await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ConnLimits {
        ConnLimits::for_tests()
    }

    #[test]
    fn protocol_is_told_from_the_first_bytes() {
        let mut p = Protocol::Unknown(0);
        p.feed(b"PRI * HTTP/2.0\r\n");
        assert_eq!(p, Protocol::Unknown(16));
        p.feed(b"\r\nSM\r\n\r\n\x00\x00");
        assert_eq!(p, Protocol::Http2);
        let mut p = Protocol::Unknown(0);
        p.feed(b"P");
        p.feed(b"OST / HTTP/1.1\r\n");
        assert_eq!(p, Protocol::Http1);
    }

    /// The deadline, checked to be `after` past a moment between `lo` and now.
    fn assert_deadline(s: &ConnState, lo: Instant, after: Duration, why: Expiry) {
        let (at, got) = s.deadline().expect("a deadline");
        assert_eq!(got, why);
        assert!(at >= lo + after && at <= Instant::now() + after, "{why:?}");
    }

    #[test]
    fn deadlines_follow_the_connection() {
        let start = Instant::now();
        let s = ConnState::new(start, &limits(), None);
        let (ten, sixty) = (Duration::from_secs(10), Duration::from_secs(60));
        assert_eq!(s.deadline(), Some((start + ten, Expiry::FirstRequest)));

        let before = Instant::now();
        s.on_read(b"GET / HT");
        assert_deadline(&s, before, ten, Expiry::Head);

        s.request_started();
        assert_eq!(
            s.deadline(),
            None,
            "a request in progress has no deadline here"
        );
        let before = Instant::now();
        s.on_write(true);
        assert_deadline(&s, before, sixty, Expiry::WriteStall);
        s.on_write(false);
        let before = Instant::now();
        s.request_finished();
        assert_deadline(&s, before, sixty, Expiry::Idle);
    }

    #[tokio::test]
    async fn http2_bytes_do_not_start_a_head_timer() {
        let start = Instant::now() - Duration::from_secs(9);
        let s = ConnState::new(start, &limits(), None);
        s.on_read(H2_PREFACE);
        let d = s.deadline().expect("deadline");
        assert_eq!(d, (start + Duration::from_secs(10), Expiry::FirstRequest));
        assert_eq!(s.expired().await, Expiry::FirstRequest);
        assert!(Instant::now() >= start + Duration::from_secs(10));
    }
}
