//! One connection's worth of the agent protocol (see [`crate::common::protocol`]).
//!
//! A session says `Hello`, waits for `Welcome`, subscribes every route (or opens a
//! `Read` for replay/tail), then runs one loop that multiplexes incoming frames,
//! finished deliveries, heartbeats and shutdown. Deliveries run as tasks so that a slow
//! or retrying local service never stops the loop from answering pings; the relay's
//! window bounds how many there are, so memory stays flat however far behind the
//! agent is.
//!
//! The session ends when the connection is lost (the supervisor reconnects), when the
//! relay refuses something no retry will fix (fatal: exit code 2), when every `Read`
//! has ended, or on shutdown: new events are then ignored (unacknowledged, so the
//! relay redelivers them later), in-flight deliveries get [`DRAIN_TIMEOUT`] to finish
//! and be acknowledged, and the socket is closed.
//!
//! Heartbeats follow the relay: it announces its ping interval in `Welcome`, and the
//! agent pings on the same cadence and presumes the relay gone after
//! [`IDLE_HEARTBEATS`] intervals without any frame — so a relay configured with short
//! heartbeats is watched as closely as it watches its agents.
//!
//! Closing is a handshake, not a drop: the agent sends its WebSocket close (after its
//! last acks, which every send flushes) and reads until the relay's close arrives. A
//! socket closed with unread data in it makes the kernel answer with a TCP reset
//! instead of a clean end, and a reset can overtake, and so destroy, the last acks
//! still on their way to the relay — the events would then be delivered again.

use std::io::Write;
use std::time::Duration;

use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::{self, Message};

use super::dial::Ws;
use super::end::{refusal, SessionEnd, SessionResult};
use super::live::{ack_frame, Live};
use super::sink::{Deliveries, Done, Handler, Printed, Printer, Tag};
use super::sub::{sub_id, sub_index, Sub};
use crate::agent::forward::Outcome;
use crate::common::config::MAX_STREAM_TIMER_SECS;
use crate::common::protocol::{
    ClientMsg, ServerMsg, ACK_RANGE_VERSION, HEARTBEAT_INTERVAL_SECS, IDLE_TIMEOUT_SECS,
    SUPPORTED_VERSIONS,
};
use crate::common::shutdown::Shutdown;

/// How long in-flight deliveries may run after a shutdown signal.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest one frame may take to write before the connection counts as lost.
const SEND_TIMEOUT: Duration = Duration::from_secs(IDLE_TIMEOUT_SECS);
/// Longest wait for `Welcome` (the relay's heartbeat interval is not known before it).
const WELCOME_TIMEOUT: Duration = Duration::from_secs(IDLE_TIMEOUT_SECS);
/// The relay is presumed gone after this many of its heartbeat intervals
/// (`Welcome.heartbeat_secs`) without any frame from it: 30 s with the default 10 s.
pub const IDLE_HEARTBEATS: u32 = 3;
/// Longest wait, after sending the WebSocket close, for the relay's close reply.
pub const CLOSE_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);
/// Most frames handled back to back before queued acks are flushed.
const FRAME_BURST: usize = 256;
/// Most finished deliveries handled back to back before queued acks are flushed.
const COMPLETION_BURST: usize = 64;
/// Filtered-out events between two info lines counting them (each is logged at debug).
pub const FILTERED_SUMMARY_EVERY: u64 = 1000;

/// Settings shared by every session of a run.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// Stops the session (SIGINT/SIGTERM, or the bench's end).
    pub shutdown: Shutdown,
    /// Print the machine-readable `hookrelay agent subscribed ...` lines on stdout.
    pub announce: bool,
    /// The relay this session is connected to, for logs (the supervisor sets it per
    /// connection: with several relay URLs it changes on a switch).
    pub relay: String,
}

/// What the relay is told about an event that finished.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reply {
    /// Acknowledged: delivered, or a read's failure (a read's nack is ignored; the ack
    /// returns the window credit).
    Ack,
    /// Dead-lettered: a group's failure.
    Nack {
        reason: String,
        attempts: u32,
        last_status: Option<u16>,
    },
    /// Nothing: abandoned at shutdown, so the relay delivers it again later.
    Nothing,
}

/// The reply for `outcome` on a group member (`is_group`) or a read.
fn reply(outcome: Outcome, is_group: bool) -> Reply {
    match outcome {
        Outcome::Delivered { .. } => Reply::Ack,
        Outcome::Failed {
            reason,
            attempts,
            last_status,
        } if is_group => Reply::Nack {
            reason,
            attempts,
            last_status,
        },
        Outcome::Failed { .. } | Outcome::Filtered => Reply::Ack,
        Outcome::Abandoned => Reply::Nothing,
    }
}

/// A socket read, as the stream yields it.
type Frame = Option<Result<Message, tungstenite::Error>>;

struct Session<'a> {
    ws: Ws,
    subs: &'a mut [Sub],
    live: Vec<Live>,
    ctx: &'a Ctx,
    deliveries: Deliveries,
    printer: Printer,
    established: bool,
    next_nonce: u64,
    /// The relay's heartbeat interval, from `Welcome`.
    heartbeat: Duration,
    /// The protocol version the relay chose, from `Welcome`.
    version: u16,
    /// Nothing more will come from the relay (the stream ended, failed, or went
    /// silent): closing does not wait for its close reply.
    relay_gone: bool,
    /// Frames fed to the socket but not yet flushed (see [`Session::flush_out`]).
    unflushed: bool,
}

/// Runs one session on a connected socket.
pub async fn run(ws: Ws, subs: &mut [Sub], ctx: &Ctx) -> SessionResult {
    let live = subs.iter().map(|_| Live::default()).collect();
    let mut s = Session {
        ws,
        subs,
        live,
        ctx,
        deliveries: Deliveries::default(),
        printer: Printer::default(),
        established: false,
        next_nonce: 1,
        heartbeat: Duration::from_secs(HEARTBEAT_INTERVAL_SECS),
        version: 1,
        relay_gone: false,
        unflushed: false,
    };
    let end = match s.handshake().await {
        Ok(()) => s.main_loop().await,
        Err(end) => end,
    };
    // Deliveries still running are aborted; they were not acked.
    s.deliveries.abort_all();
    s.close().await;
    for sub in s.subs.iter() {
        if let Handler::Forward(d) = &sub.handler {
            if let Some(p) = d.metrics() {
                p.set_connected(false);
            }
        }
    }
    SessionResult {
        end,
        established: s.established,
    }
}

/// The heartbeat interval a relay announced, kept in a range every timer can use (a
/// broken relay's 0 would otherwise make the interval panic).
fn relay_heartbeat(heartbeat_secs: u32) -> Duration {
    Duration::from_secs(u64::from(heartbeat_secs).clamp(1, MAX_STREAM_TIMER_SECS))
}

impl Session<'_> {
    /// Queues a frame; [`Session::flush_out`] writes it before the loop next waits, so
    /// a burst of acks costs one write instead of one per event.
    async fn send(&mut self, msg: ClientMsg) -> Result<(), SessionEnd> {
        let frame = Message::binary(msg.encode());
        match tokio::time::timeout(SEND_TIMEOUT, self.ws.feed(frame)).await {
            Ok(Ok(())) => {
                self.unflushed = true;
                Ok(())
            }
            Ok(Err(e)) => Err(SessionEnd::Lost(format!("send failed: {e}"))),
            Err(_) => Err(SessionEnd::Lost("timed out sending to the relay".into())),
        }
    }

    /// Acknowledges `offset` on subscription `i`. Acks of consecutive offsets are
    /// gathered and go out as one `AckRange` when the loop flushes (or as soon as a
    /// non-consecutive ack breaks the run), so a burst of events costs the relay one
    /// frame to read, not one per event. A relay that speaks only version 1 gets one
    /// `Ack` per event.
    async fn ack(&mut self, i: usize, offset: u64) -> Result<(), SessionEnd> {
        let sub = sub_id(i);
        if self.version < ACK_RANGE_VERSION {
            return self.send(ClientMsg::Ack { sub, offset }).await;
        }
        match self.live[i].acks.push(offset) {
            Some(run) => self.send(ack_frame(sub, run)).await,
            None => Ok(()),
        }
    }

    /// Queues every gathered ack.
    async fn send_all_acks(&mut self) -> Result<(), SessionEnd> {
        for i in 0..self.live.len() {
            if let Some(run) = self.live[i].acks.take() {
                self.send(ack_frame(sub_id(i), run)).await?;
            }
        }
        Ok(())
    }

    /// Writes out printed lines, then queued frames. Lines first: an ack tells the relay
    /// the event was handled, which for tail means printed.
    async fn flush_out(&mut self) -> Result<(), SessionEnd> {
        self.printer.flush().map_err(|_| SessionEnd::OutputClosed)?;
        self.send_all_acks().await?;
        if self.unflushed {
            match tokio::time::timeout(SEND_TIMEOUT, self.ws.flush()).await {
                Ok(Ok(())) => self.unflushed = false,
                Ok(Err(e)) => return Err(SessionEnd::Lost(format!("send failed: {e}"))),
                Err(_) => return Err(SessionEnd::Lost("timed out sending to the relay".into())),
            }
        }
        Ok(())
    }

    /// Turns one socket read into a protocol frame: None for what is not one (transport
    /// pings, which tungstenite answers, and text, which is not ours); the end of the
    /// stream, an error or an undecodable frame ends the session.
    fn read_frame(&mut self, frame: Frame) -> Result<Option<ServerMsg>, SessionEnd> {
        match frame {
            None => {
                self.relay_gone = true;
                Err(SessionEnd::Lost("the relay closed the connection".into()))
            }
            Some(Err(e)) => {
                self.relay_gone = true;
                Err(SessionEnd::Lost(format!("connection error: {e}")))
            }
            Some(Ok(Message::Binary(b))) => ServerMsg::decode(&b).map(Some).map_err(|e| {
                SessionEnd::Lost(format!("the relay sent an undecodable frame ({e})"))
            }),
            Some(Ok(Message::Close(_))) => {
                Err(SessionEnd::Lost("the relay closed the connection".into()))
            }
            Some(Ok(_)) => Ok(None),
        }
    }

    /// Receives the next protocol frame, answering transport pings on the way.
    async fn recv(&mut self) -> Result<ServerMsg, SessionEnd> {
        // Whatever was queued (Hello, subscriptions, pongs) must be on the wire before
        // waiting for the answer.
        self.flush_out().await?;
        loop {
            let frame = self.ws.next().await;
            if let Some(msg) = self.read_frame(frame)? {
                return Ok(msg);
            }
        }
    }

    /// `Hello`, `Welcome`, then every unfinished subscription (re)opened.
    async fn handshake(&mut self) -> Result<(), SessionEnd> {
        self.send(ClientMsg::Hello {
            versions: SUPPORTED_VERSIONS.to_vec(),
            agent: format!("hookrelay-agent/{}", env!("CARGO_PKG_VERSION")),
        })
        .await?;
        self.await_welcome().await?;
        for i in 0..self.subs.len() {
            if !self.subs[i].finished {
                let msg = self.subs[i].open_msg(sub_id(i));
                self.send(msg).await?;
            }
        }
        Ok(())
    }

    /// Waits for `Welcome` within [`WELCOME_TIMEOUT`] and takes the relay's heartbeat
    /// interval and protocol version from it.
    async fn await_welcome(&mut self) -> Result<(), SessionEnd> {
        let deadline = Instant::now() + WELCOME_TIMEOUT;
        loop {
            let msg = match tokio::time::timeout_at(deadline, self.recv()).await {
                Ok(msg) => msg?,
                Err(_) => {
                    self.relay_gone = true;
                    return Err(SessionEnd::Lost("no Welcome from the relay".into()));
                }
            };
            match msg {
                ServerMsg::Welcome {
                    version,
                    heartbeat_secs,
                    ..
                } if SUPPORTED_VERSIONS.contains(&version) => {
                    self.heartbeat = relay_heartbeat(heartbeat_secs);
                    self.version = version;
                    tracing::debug!(heartbeat_secs, version, "welcome");
                    return Ok(());
                }
                ServerMsg::Welcome { version, .. } => {
                    return Err(SessionEnd::Fatal(format!(
                        "the relay chose protocol version {version}; this agent speaks {SUPPORTED_VERSIONS:?}"
                    )))
                }
                ServerMsg::Ping { nonce } => self.send(ClientMsg::Pong { nonce }).await?,
                ServerMsg::Error { sub, code, message } => {
                    return Err(self.refusal(sub, &code, &message))
                }
                _ => {}
            }
        }
    }

    /// Maps an `Error` frame about subscription `sub` (or the connection) to how the
    /// session ends.
    fn refusal(&self, sub: Option<u32>, code: &str, message: &str) -> SessionEnd {
        let target = sub
            .and_then(|s| sub_index(s, self.subs.len()))
            .map(|i| &self.subs[i]);
        refusal(target, code, message)
    }

    fn all_finished(&self) -> bool {
        self.subs.iter().all(|s| s.finished)
    }

    /// Frames in, deliveries out, heartbeats, and shutdown, until the session ends.
    async fn main_loop(&mut self) -> SessionEnd {
        let heartbeat_every = self.heartbeat;
        let idle_after = heartbeat_every * IDLE_HEARTBEATS;
        let mut heartbeat =
            tokio::time::interval_at(Instant::now() + heartbeat_every, heartbeat_every);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last_heard = Instant::now();
        let mut drain_until: Option<Instant> = None;
        let shutdown = self.ctx.shutdown.clone();
        loop {
            if self.all_finished() {
                return SessionEnd::Finished;
            }
            if drain_until.is_some() && self.deliveries.is_empty() {
                return SessionEnd::Shutdown;
            }
            let drain_deadline = drain_until.unwrap_or_else(Instant::now);
            if let Err(end) = self.flush_out().await {
                return end;
            }
            let step = tokio::select! {
                biased;
                _ = shutdown.wait(), if drain_until.is_none() => {
                    drain_until = Some(self.start_drain());
                    Ok(())
                }
                _ = tokio::time::sleep_until(drain_deadline), if drain_until.is_some() => {
                    tracing::warn!(abandoned = self.deliveries.len(), "deliveries still running at shutdown; they will be redelivered");
                    Err(SessionEnd::Shutdown)
                }
                Some(done) = self.deliveries.next(), if !self.deliveries.is_empty() => {
                    self.on_completions(done).await
                }
                frame = self.ws.next() => {
                    last_heard = Instant::now();
                    self.on_frames(frame, drain_until.is_some()).await
                }
                _ = heartbeat.tick() => self.ping().await,
                _ = tokio::time::sleep_until(last_heard + idle_after) => {
                    self.relay_gone = true;
                    Err(SessionEnd::Lost(format!(
                        "the relay was silent for {} s ({IDLE_HEARTBEATS} of its heartbeats)",
                        idle_after.as_secs()
                    )))
                }
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    /// Shutdown was requested: events not started are dropped (unacked, so the relay
    /// sends them again), deliveries in flight get [`DRAIN_TIMEOUT`]. Returns its end.
    fn start_drain(&mut self) -> Instant {
        tracing::info!(
            in_flight = self.deliveries.len(),
            "stopping: finishing deliveries in flight"
        );
        for l in &mut self.live {
            l.drop_pending();
        }
        Instant::now() + DRAIN_TIMEOUT
    }

    async fn ping(&mut self) -> Result<(), SessionEnd> {
        let nonce = self.next_nonce;
        self.next_nonce += 1;
        self.send(ClientMsg::Ping { nonce }).await
    }

    /// Handles `first` and the deliveries that finished meanwhile in one go, so that
    /// their acks share a flush (and, if consecutive, one `AckRange`).
    async fn on_completions(&mut self, first: Done) -> Result<(), SessionEnd> {
        let mut done = Some(first);
        let mut burst = 0;
        while let Some(d) = done.take() {
            self.completed(d).await?;
            burst += 1;
            if burst < COMPLETION_BURST {
                done = self.deliveries.try_next();
            }
        }
        Ok(())
    }

    /// Handles `first` and the frames already here in one go, before the flush at the
    /// top of the loop.
    async fn on_frames(&mut self, first: Frame, draining: bool) -> Result<(), SessionEnd> {
        let mut queued = Some(first);
        let mut burst = 0;
        while let Some(frame) = queued.take() {
            if let Some(msg) = self.read_frame(frame)? {
                self.on_frame(msg, draining).await?;
            }
            burst += 1;
            if burst < FRAME_BURST {
                queued = self.ws.next().now_or_never();
            }
        }
        Ok(())
    }

    /// Closes the connection with a close handshake, within
    /// [`CLOSE_HANDSHAKE_TIMEOUT`]: sends the WebSocket close (flushing every frame
    /// queued before it, the last acks included), then reads and discards frames until
    /// the relay's close reply ends the stream, so that no unread data makes the kernel
    /// reset the connection under the acks. A relay that is already gone gets no wait.
    async fn close(&mut self) {
        let _ = self.printer.flush();
        if self.relay_gone {
            return;
        }
        if self.send_all_acks().await.is_err() {
            return;
        }
        let ws = &mut self.ws;
        let handshake = async {
            if ws.close(None).await.is_err() {
                return;
            }
            while let Some(Ok(_)) = ws.next().await {}
        };
        if tokio::time::timeout(CLOSE_HANDSHAKE_TIMEOUT, handshake)
            .await
            .is_err()
        {
            tracing::debug!("the relay did not answer the close in time");
        }
    }

    async fn on_frame(&mut self, msg: ServerMsg, draining: bool) -> Result<(), SessionEnd> {
        match msg {
            ServerMsg::Ping { nonce } => {
                tracing::debug!(nonce, "heartbeat: ping from the relay");
                self.send(ClientMsg::Pong { nonce }).await?
            }
            ServerMsg::Pong { nonce } => tracing::debug!(nonce, "heartbeat: the relay answered"),
            ServerMsg::Welcome { .. } => {}
            ServerMsg::Error { sub, code, message } => {
                return Err(self.refusal(sub, &code, &message))
            }
            ServerMsg::Subscribed {
                sub,
                next,
                head,
                window,
                active,
            } => {
                if let Some(i) = sub_index(sub, self.subs.len()) {
                    self.on_subscribed(i, next, head, window, active);
                }
            }
            ServerMsg::Active { sub, next } => {
                if let Some(i) = sub_index(sub, self.subs.len()) {
                    self.on_active(i, next);
                }
            }
            ServerMsg::CaughtUp { sub, head } => {
                if let Some(i) = sub_index(sub, self.subs.len()) {
                    tracing::info!(channel = %self.subs[i].channel, head, "caught up");
                }
            }
            ServerMsg::End { sub, last } => {
                if let Some(i) = sub_index(sub, self.subs.len()) {
                    tracing::debug!(channel = %self.subs[i].channel, last, "end of range");
                    self.live[i].end();
                    self.check_done(i);
                }
            }
            ServerMsg::Event {
                sub,
                offset,
                record,
            } => {
                if let Some(i) = sub_index(sub, self.subs.len()) {
                    self.on_event(i, offset, record, draining).await?;
                }
            }
        }
        Ok(())
    }

    /// Subscription `i` is open: takes in the granted window and where it starts, and
    /// says so (a log line; for a group, the stdout lines scripts wait on).
    fn on_subscribed(&mut self, i: usize, next: u64, head: u64, window: u32, active: bool) {
        self.established = true;
        self.live[i].subscribed(window);
        let s = &mut self.subs[i];
        s.subscribed(next, head, window);
        let Some(group) = s.group() else {
            tracing::debug!(channel = %s.channel, next, head, "reading");
            return;
        };
        if let Handler::Forward(d) = &s.handler {
            if let Some(p) = d.metrics() {
                p.set_connected(true);
            }
        }
        let forward = s.handler.target();
        tracing::info!(relay = %self.ctx.relay, channel = %s.channel, %group, %forward, next, head, active, "connected");
        if self.ctx.announce {
            if !active {
                announce(&format!("standby channel={} group={group}", s.channel));
            }
            announce(&format!(
                "subscribed channel={} group={group} next={next}",
                s.channel
            ));
        }
    }

    /// This agent took over its group's stream (it was on standby).
    fn on_active(&self, i: usize, next: u64) {
        let s = &self.subs[i];
        let group = s.group().unwrap_or_default();
        tracing::info!(channel = %s.channel, %group, next, "active: this agent now receives the group's events");
        if self.ctx.announce {
            announce(&format!(
                "active channel={} group={group} next={next}",
                s.channel
            ));
        }
    }

    /// One event for subscription `i`: printed and acked at once, or queued for
    /// delivery within the window. Ignored while draining or after the range ended
    /// (unacked, so the relay sends it again).
    async fn on_event(
        &mut self,
        i: usize,
        offset: u64,
        record: Vec<u8>,
        draining: bool,
    ) -> Result<(), SessionEnd> {
        if draining || self.subs[i].finished || self.live[i].ended() {
            return Ok(());
        }
        if self.subs[i].past_until(&record) {
            // Received after `--until`: the range ends before this event.
            self.live[i].end();
            self.check_done(i);
            return Ok(());
        }
        match self.subs[i].handler {
            Handler::Print => self.print(i, offset, &record).await,
            Handler::Forward(_) => {
                self.live[i]
                    .queue(offset, record)
                    .map_err(|e| SessionEnd::Lost(e.to_string()))?;
                self.pump(i).await
            }
        }
    }

    /// Prints one event (tail) and acknowledges it.
    async fn print(&mut self, i: usize, offset: u64, bytes: &[u8]) -> Result<(), SessionEnd> {
        match self.printer.print(offset, bytes) {
            Ok(Printed::Line) => self.subs[i].delivered += 1,
            Ok(Printed::Skipped) => self.subs[i].failed += 1,
            Err(_) => return Err(SessionEnd::OutputClosed),
        }
        self.ack(i, offset).await?;
        self.advance(i, offset);
        Ok(())
    }

    /// Records that `offset` is done for subscription `i`.
    fn advance(&mut self, i: usize, offset: u64) {
        self.subs[i].advance(offset);
        self.check_done(i);
    }

    fn check_done(&mut self, i: usize) {
        if self.live[i].is_done() {
            self.subs[i].finished = true;
        }
    }

    /// Starts deliveries while the subscription has room. An event settled at once
    /// (filtered out, undecodable) frees its slot for the next without recursion, so a
    /// long run of filtered events costs no stack.
    async fn pump(&mut self, i: usize) -> Result<(), SessionEnd> {
        let Handler::Forward(dispatch) = self.subs[i].handler.clone() else {
            return Ok(());
        };
        while let Some((offset, bytes)) = self.live[i].start_next(self.subs[i].concurrency) {
            let shutdown = self.ctx.shutdown.clone();
            if let Err(n) = self.deliveries.start(i, offset, bytes, &dispatch, shutdown) {
                self.settle(i, offset, n.outcome, Duration::ZERO, &n.tag)
                    .await?;
            }
        }
        Ok(())
    }

    /// A delivery finished: acknowledge (or dead-letter) it and start the next.
    async fn completed(&mut self, done: Done) -> Result<(), SessionEnd> {
        let i = done.sub;
        self.settle(i, done.offset, done.outcome, done.elapsed, &done.tag)
            .await?;
        self.pump(i).await
    }

    /// Says how event `offset` of subscription `i` ended (a log line, the counters)
    /// and acknowledges or dead-letters it; starts nothing.
    async fn settle(
        &mut self,
        i: usize,
        offset: u64,
        outcome: Outcome,
        elapsed: Duration,
        tag: &Tag,
    ) -> Result<(), SessionEnd> {
        self.live[i].finish_one();
        let is_group = self.subs[i].group().is_some();
        self.log_outcome(i, offset, &outcome, elapsed, tag);
        match reply(outcome, is_group) {
            Reply::Ack => self.ack(i, offset).await?,
            Reply::Nack {
                reason,
                attempts,
                last_status,
            } => {
                let sub = sub_id(i);
                self.send(ClientMsg::Nack {
                    sub,
                    offset,
                    reason,
                    attempts,
                    last_status,
                })
                .await?
            }
            Reply::Nothing => return Ok(()),
        }
        self.advance(i, offset);
        Ok(())
    }

    /// The log line and counters of one finished event.
    fn log_outcome(
        &mut self,
        i: usize,
        offset: u64,
        outcome: &Outcome,
        elapsed: Duration,
        tag: &Tag,
    ) {
        let is_group = self.subs[i].group().is_some();
        let (log_deliveries, probe) = match &self.subs[i].handler {
            Handler::Forward(d) => (d.log_deliveries, d.metrics().cloned()),
            Handler::Print => (false, None),
        };
        let sub = &mut self.subs[i];
        let channel = &sub.channel;
        let (id, body) = (&tag.id, tag.body.as_deref());
        match outcome {
            Outcome::Delivered { status, attempts } => {
                let duration_ms = elapsed.as_secs_f64() * 1000.0;
                if log_deliveries {
                    tracing::info!(%channel, offset, %id, status, attempts, duration_ms, body, "delivered");
                } else {
                    tracing::debug!(%channel, offset, %id, status, attempts, duration_ms, body, "delivered");
                }
                sub.delivered += 1;
            }
            Outcome::Failed {
                reason, attempts, ..
            } => {
                let what = if is_group {
                    if let Some(p) = &probe {
                        p.dead_lettered();
                    }
                    "dead-lettered"
                } else {
                    "delivery failed"
                };
                tracing::warn!(%channel, offset, %id, %reason, attempts, body, "{what}");
                sub.failed += 1;
            }
            Outcome::Filtered => {
                let total = match &sub.handler {
                    Handler::Forward(d) => d.count_filtered(),
                    Handler::Print => 0,
                };
                if let Some(p) = &probe {
                    p.filtered();
                }
                tracing::debug!(%channel, offset, %id, "filtered out: acknowledged without delivery");
                if total % FILTERED_SUMMARY_EVERY == 0 {
                    tracing::info!(%channel, filtered = total, "events filtered out so far");
                }
            }
            Outcome::Abandoned => {}
        }
    }
}

/// One machine-readable line on stdout (`hookrelay agent <what>`), flushed at once so
/// that scripts and tests can wait on it.
fn announce(what: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "hookrelay agent {what}");
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relays_heartbeat_is_kept_usable() {
        assert_eq!(relay_heartbeat(10), Duration::from_secs(10));
        assert_eq!(relay_heartbeat(1), Duration::from_secs(1));
        // A broken relay's 0 would make the ping interval panic; a huge value is capped.
        assert_eq!(relay_heartbeat(0), Duration::from_secs(1));
        assert_eq!(
            relay_heartbeat(u32::MAX),
            Duration::from_secs(MAX_STREAM_TIMER_SECS)
        );
        // The default relay heartbeat gives the documented 30 s idle timeout.
        assert_eq!(
            relay_heartbeat(HEARTBEAT_INTERVAL_SECS as u32) * IDLE_HEARTBEATS,
            Duration::from_secs(IDLE_TIMEOUT_SECS)
        );
    }

    #[test]
    fn outcomes_become_acks_nacks_or_nothing() {
        let failed = || Outcome::Failed {
            reason: "http 400".into(),
            attempts: 1,
            last_status: Some(400),
        };
        let delivered = Outcome::Delivered {
            status: 200,
            attempts: 1,
        };
        assert_eq!(reply(delivered.clone(), true), Reply::Ack);
        assert_eq!(reply(delivered, false), Reply::Ack);
        assert_eq!(
            reply(failed(), true),
            Reply::Nack {
                reason: "http 400".into(),
                attempts: 1,
                last_status: Some(400)
            },
            "a group dead-letters"
        );
        assert_eq!(
            reply(failed(), false),
            Reply::Ack,
            "a read returns the credit"
        );
        assert_eq!(
            reply(Outcome::Filtered, true),
            Reply::Ack,
            "filtered: cursor moves"
        );
        assert_eq!(reply(Outcome::Abandoned, true), Reply::Nothing);
        assert_eq!(reply(Outcome::Abandoned, false), Reply::Nothing);
    }
}
