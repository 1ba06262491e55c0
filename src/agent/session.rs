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

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;

use super::dial::Ws;
use crate::agent::forward::{Forwarder, Outcome};
use crate::common::config::MAX_STREAM_TIMER_SECS;
use crate::common::event::Record;
use crate::common::protocol::{
    codes, ClientMsg, ServerMsg, Start, ACK_RANGE_VERSION, HEARTBEAT_INTERVAL_SECS,
    IDLE_TIMEOUT_SECS, SUPPORTED_VERSIONS,
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
/// tail's stdout buffer, in bytes.
const STDOUT_BUFFER_BYTES: usize = 64 * 1024;

/// Subscription refusals that no reconnect can fix.
const FATAL_SUB_CODES: &[&str] = &[
    "unauthorized",
    codes::FORBIDDEN_CHANNEL,
    codes::UNKNOWN_CHANNEL,
    codes::INVALID_GROUP,
    codes::OFFSET_COMPACTED,
    codes::OFFSET_OUT_OF_RANGE,
];
/// Connection refusals that no reconnect can fix.
const FATAL_CONN_CODES: &[&str] = &["unauthorized", codes::UNSUPPORTED_VERSION];

/// What a subscription is.
#[derive(Debug, Clone)]
pub enum SubKind {
    /// A consumer group member: the relay keeps the cursor.
    Group { group: String },
    /// A group-less read (replay, tail): moves no cursor and ends with `End`.
    Read { to: Option<u64>, follow: bool },
}

/// What happens to each event.
#[derive(Debug, Clone)]
pub enum Handler {
    /// Forward to a local service.
    Forward(Arc<Forwarder>),
    /// Print as one JSON line on stdout.
    Print,
}

/// One subscription and its progress, kept across reconnects.
#[derive(Debug, Clone)]
pub struct Sub {
    pub channel: String,
    pub kind: SubKind,
    /// Where to (re)start; updated as events complete so that a reconnect resumes.
    pub start: Start,
    /// The window asked of the relay.
    pub window: u32,
    /// Deliveries run at once (at most the window).
    pub concurrency: u32,
    pub handler: Handler,
    /// Events still to take (tail `--limit`).
    pub limit: Option<u64>,
    /// Events delivered (2xx) or printed.
    pub delivered: u64,
    /// Events given up (dead-lettered, or failed in a replay).
    pub failed: u64,
    /// Nothing more to do for this subscription.
    pub finished: bool,
    /// A read ends before the first event received after this time (unix ms): replay
    /// `--until`, checked here because received-at is in the record, not the frame.
    pub until_ms: Option<u64>,
    /// Counts finished events, and learns the total when a read is subscribed.
    pub progress: Option<crate::agent::progress::Progress>,
}

impl Sub {
    fn group(&self) -> Option<&str> {
        match &self.kind {
            SubKind::Group { group } => Some(group),
            SubKind::Read { .. } => None,
        }
    }
}

/// Settings shared by every session of a run.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub shutdown: Shutdown,
    /// Print the machine-readable `hookrelay agent subscribed ...` lines on stdout.
    pub announce: bool,
    /// The relay, for logs.
    pub relay: String,
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEnd {
    /// Every subscription finished (reads ended, limits reached).
    Finished,
    /// Shutdown was requested and the session drained.
    Shutdown,
    /// Stdout was closed (tail into `head`).
    OutputClosed,
    /// The relay refused something no retry fixes.
    Fatal(String),
    /// The connection was lost; reconnecting may help.
    Lost(String),
}

/// A session's end, and whether it got as far as a subscription (which resets the
/// reconnect backoff).
#[derive(Debug)]
pub struct SessionResult {
    pub end: SessionEnd,
    pub established: bool,
}

/// Per-connection state of one subscription.
#[derive(Default)]
struct Live {
    subscribed: bool,
    window: u32,
    pending: VecDeque<(u64, Vec<u8>)>,
    in_flight: u32,
    ended: bool,
    /// Acks of consecutive offsets not sent yet, as `(first, last)`: sent as one
    /// `AckRange` when the loop flushes (see [`Session::ack`]).
    acks: Option<(u64, u64)>,
}

type Jobs = JoinSet<(usize, u64, Outcome)>;

struct Session<'a> {
    ws: Ws,
    subs: &'a mut [Sub],
    live: Vec<Live>,
    ctx: &'a Ctx,
    jobs: Jobs,
    job_tags: HashMap<tokio::task::Id, (usize, u64)>,
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
    /// tail's output, buffered; flushed with the acks, before the loop waits.
    stdout: Option<std::io::BufWriter<std::io::Stdout>>,
}

/// Runs one session on a connected socket.
pub async fn run(ws: Ws, subs: &mut [Sub], ctx: &Ctx) -> SessionResult {
    let live = subs.iter().map(|_| Live::default()).collect();
    let mut s = Session {
        ws,
        subs,
        live,
        ctx,
        jobs: JoinSet::new(),
        job_tags: HashMap::new(),
        established: false,
        next_nonce: 1,
        heartbeat: Duration::from_secs(HEARTBEAT_INTERVAL_SECS),
        version: 1,
        relay_gone: false,
        unflushed: false,
        stdout: None,
    };
    let end = match s.handshake().await {
        Ok(()) => s.main_loop().await,
        Err(end) => end,
    };
    // Dropping the JoinSet aborts deliveries still running; they were not acked.
    s.jobs.abort_all();
    s.close().await;
    SessionResult {
        end,
        established: s.established,
    }
}

fn sub_id(index: usize) -> u32 {
    u32::try_from(index + 1).unwrap_or(u32::MAX)
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
        if self.version < ACK_RANGE_VERSION {
            return self
                .send(ClientMsg::Ack {
                    sub: sub_id(i),
                    offset,
                })
                .await;
        }
        match &mut self.live[i].acks {
            Some((_, last)) if last.checked_add(1) == Some(offset) => {
                *last = offset;
                Ok(())
            }
            run => {
                let previous = run.replace((offset, offset));
                self.send_acks(i, previous).await
            }
        }
    }

    /// Sends a run of gathered acks.
    async fn send_acks(&mut self, i: usize, run: Option<(u64, u64)>) -> Result<(), SessionEnd> {
        let sub = sub_id(i);
        match run {
            None => Ok(()),
            Some((offset, last)) if offset == last => {
                self.send(ClientMsg::Ack { sub, offset }).await
            }
            Some((first, last)) => self.send(ClientMsg::AckRange { sub, first, last }).await,
        }
    }

    /// Queues every gathered ack.
    async fn send_all_acks(&mut self) -> Result<(), SessionEnd> {
        for i in 0..self.live.len() {
            let run = self.live[i].acks.take();
            self.send_acks(i, run).await?;
        }
        Ok(())
    }

    /// Writes out printed lines, then queued frames. Lines first: an ack tells the relay
    /// the event was handled, which for tail means printed.
    async fn flush_out(&mut self) -> Result<(), SessionEnd> {
        if let Some(out) = &mut self.stdout {
            if let Err(e) = out.flush() {
                tracing::debug!(error = %e, "stdout closed");
                return Err(SessionEnd::OutputClosed);
            }
        }
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

    /// Receives the next protocol frame, answering transport pings on the way.
    async fn recv(&mut self) -> Result<ServerMsg, SessionEnd> {
        // Whatever was queued (Hello, subscriptions, pongs) must be on the wire before
        // waiting for the answer.
        self.flush_out().await?;
        loop {
            match self.ws.next().await {
                None => {
                    self.relay_gone = true;
                    return Err(SessionEnd::Lost("the relay closed the connection".into()));
                }
                Some(Err(e)) => {
                    self.relay_gone = true;
                    return Err(SessionEnd::Lost(format!("connection error: {e}")));
                }
                Some(Ok(Message::Binary(b))) => {
                    return ServerMsg::decode(&b).map_err(|e| {
                        SessionEnd::Lost(format!("the relay sent an undecodable frame ({e})"))
                    })
                }
                Some(Ok(Message::Close(_))) => {
                    return Err(SessionEnd::Lost("the relay closed the connection".into()))
                }
                // Transport-level pings are answered by tungstenite; text is not ours.
                Some(Ok(_)) => continue,
            }
        }
    }

    async fn handshake(&mut self) -> Result<(), SessionEnd> {
        self.send(ClientMsg::Hello {
            versions: SUPPORTED_VERSIONS.to_vec(),
            agent: format!("hookrelay-agent/{}", env!("CARGO_PKG_VERSION")),
        })
        .await?;
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
                    break;
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
        for i in 0..self.subs.len() {
            let sub = &self.subs[i];
            if sub.finished {
                continue;
            }
            let msg = match &sub.kind {
                SubKind::Group { group } => ClientMsg::Subscribe {
                    sub: sub_id(i),
                    channel: sub.channel.clone(),
                    group: group.clone(),
                    start: sub.start,
                    window: sub.window,
                },
                SubKind::Read { to, follow } => ClientMsg::Read {
                    sub: sub_id(i),
                    channel: sub.channel.clone(),
                    start: sub.start,
                    to: *to,
                    follow: *follow,
                    window: sub.window,
                },
            };
            self.send(msg).await?;
        }
        Ok(())
    }

    /// Maps an `Error` frame to how the session ends.
    fn refusal(&self, sub: Option<u32>, code: &str, message: &str) -> SessionEnd {
        let target = sub
            .and_then(|s| usize::try_from(s).ok())
            .and_then(|s| s.checked_sub(1))
            .and_then(|i| self.subs.get(i));
        match target {
            Some(t) if FATAL_SUB_CODES.contains(&code) => SessionEnd::Fatal(match t.group() {
                Some(g) => format!(
                    "the relay refused channel {:?} (group {g:?}): {code}: {message}",
                    t.channel
                ),
                None => format!(
                    "the relay refused channel {:?}: {code}: {message}",
                    t.channel
                ),
            }),
            None if FATAL_CONN_CODES.contains(&code) => SessionEnd::Fatal(format!(
                "the relay refused the connection: {code}: {message}"
            )),
            _ => SessionEnd::Lost(format!("the relay reported {code}: {message}")),
        }
    }

    fn all_finished(&self) -> bool {
        self.subs.iter().all(|s| s.finished)
    }

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
            if drain_until.is_some() && self.jobs.is_empty() {
                return SessionEnd::Shutdown;
            }
            let drain_deadline = drain_until.unwrap_or_else(Instant::now);
            if let Err(end) = self.flush_out().await {
                return end;
            }
            tokio::select! {
                biased;
                _ = shutdown.wait(), if drain_until.is_none() => {
                    tracing::info!(in_flight = self.jobs.len(), "stopping: finishing deliveries in flight");
                    drain_until = Some(Instant::now() + DRAIN_TIMEOUT);
                    for l in &mut self.live {
                        l.pending.clear();
                    }
                }
                _ = tokio::time::sleep_until(drain_deadline), if drain_until.is_some() => {
                    tracing::warn!(abandoned = self.jobs.len(), "deliveries still running at shutdown; they will be redelivered");
                    return SessionEnd::Shutdown;
                }
                Some(done) = self.jobs.join_next_with_id(), if !self.jobs.is_empty() => {
                    // Deliveries that finished meanwhile are handled in one go too, so
                    // their acks share a flush (and, if consecutive, one AckRange).
                    let mut done = Some(done);
                    let mut burst = 0;
                    while let Some(finished) = done.take() {
                        let (id, result) = match finished {
                            Ok((id, r)) => (id, Some(r)),
                            Err(e) => (e.id(), None),
                        };
                        if let Some((idx, offset)) = self.job_tags.remove(&id) {
                            let outcome = result.map(|r| r.2).unwrap_or(Outcome::Abandoned);
                            if let Err(end) = self.completed(idx, offset, outcome).await {
                                return end;
                            }
                        }
                        burst += 1;
                        if burst < COMPLETION_BURST {
                            done = self.jobs.try_join_next_with_id();
                        }
                    }
                }
                frame = self.ws.next() => {
                    last_heard = Instant::now();
                    // Frames that are already here are handled in one go, before the
                    // flush at the top of the loop.
                    let mut queued = Some(frame);
                    let mut burst = 0;
                    while let Some(frame) = queued.take() {
                    let msg = match frame {
                        None => {
                            self.relay_gone = true;
                            return SessionEnd::Lost("the relay closed the connection".into());
                        }
                        Some(Err(e)) => {
                            self.relay_gone = true;
                            return SessionEnd::Lost(format!("connection error: {e}"));
                        }
                        Some(Ok(Message::Binary(b))) => match ServerMsg::decode(&b) {
                            Ok(m) => m,
                            Err(e) => return SessionEnd::Lost(format!("the relay sent an undecodable frame ({e})")),
                        },
                        Some(Ok(Message::Close(_))) => return SessionEnd::Lost("the relay closed the connection".into()),
                        Some(Ok(_)) => continue,
                    };
                    if let Err(end) = self.on_frame(msg, drain_until.is_some()).await {
                        return end;
                    }
                    burst += 1;
                    if burst < FRAME_BURST {
                        queued = self.ws.next().now_or_never();
                    }
                    }
                }
                _ = heartbeat.tick() => {
                    let nonce = self.next_nonce;
                    self.next_nonce += 1;
                    if let Err(end) = self.send(ClientMsg::Ping { nonce }).await {
                        return end;
                    }
                }
                _ = tokio::time::sleep_until(last_heard + idle_after) => {
                    self.relay_gone = true;
                    return SessionEnd::Lost(format!(
                        "the relay was silent for {} s ({IDLE_HEARTBEATS} of its heartbeats)",
                        idle_after.as_secs()
                    ));
                }
            }
        }
    }

    fn index_of(&self, sub: u32) -> Option<usize> {
        let i = usize::try_from(sub).ok()?.checked_sub(1)?;
        (i < self.subs.len()).then_some(i)
    }

    /// Closes the connection with a close handshake, within
    /// [`CLOSE_HANDSHAKE_TIMEOUT`]: sends the WebSocket close (flushing every frame
    /// queued before it, the last acks included), then reads and discards frames until
    /// the relay's close reply ends the stream, so that no unread data makes the kernel
    /// reset the connection under the acks. A relay that is already gone gets no wait.
    async fn close(&mut self) {
        if let Some(out) = &mut self.stdout {
            let _ = out.flush();
        }
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
                let Some(i) = self.index_of(sub) else {
                    return Ok(());
                };
                self.established = true;
                let live = &mut self.live[i];
                live.subscribed = true;
                live.window = window.max(1);
                let s = &mut self.subs[i];
                s.concurrency = s.concurrency.min(live.window).max(1);
                match &mut s.kind {
                    SubKind::Group { group } => {
                        let forward = match &s.handler {
                            Handler::Forward(f) => f.target(),
                            Handler::Print => String::from("stdout"),
                        };
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
                        // A group without a cursor would re-evaluate "latest" on a
                        // reconnect and skip what arrived meanwhile.
                        if s.start == Start::Latest {
                            s.start = Start::Offset(next);
                        }
                    }
                    SubKind::Read { to, follow } => {
                        tracing::debug!(channel = %s.channel, next, head, "reading");
                        // Pin "the head as of the subscription" for reconnects.
                        if to.is_none() && !*follow {
                            *to = Some(head);
                        }
                        if let (Some(p), Some(last), false) = (&s.progress, *to, *follow) {
                            p.set_total(p.done() + (last.min(head) + 1).saturating_sub(next));
                        }
                        if s.start == Start::Latest {
                            s.start = Start::Offset(next);
                        }
                    }
                }
            }
            ServerMsg::Active { sub, next } => {
                let Some(i) = self.index_of(sub) else {
                    return Ok(());
                };
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
            ServerMsg::CaughtUp { sub, head } => {
                if let Some(i) = self.index_of(sub) {
                    tracing::info!(channel = %self.subs[i].channel, head, "caught up");
                }
            }
            ServerMsg::End { sub, last } => {
                if let Some(i) = self.index_of(sub) {
                    tracing::debug!(channel = %self.subs[i].channel, last, "end of range");
                    self.live[i].ended = true;
                    self.check_done(i);
                }
            }
            ServerMsg::Event {
                sub,
                offset,
                record,
            } => {
                let Some(i) = self.index_of(sub) else {
                    return Ok(());
                };
                if draining || self.subs[i].finished || self.live[i].ended {
                    return Ok(());
                }
                if self.past_until(i, &record) {
                    // Received after `--until`: the range ends before this event.
                    self.live[i].ended = true;
                    self.check_done(i);
                    return Ok(());
                }
                match self.subs[i].handler {
                    Handler::Print => self.print(i, offset, &record).await?,
                    Handler::Forward(_) => {
                        let live = &mut self.live[i];
                        // The relay keeps at most `window` unacknowledged; anything
                        // past twice that is a broken relay, not a reason to buffer.
                        if live.pending.len() + live.in_flight as usize
                            >= 2 * live.window.max(1) as usize
                        {
                            return Err(SessionEnd::Lost("the relay exceeded the window".into()));
                        }
                        live.pending.push_back((offset, record));
                        self.pump(i).await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Prints one event (tail) and acknowledges it.
    async fn print(&mut self, i: usize, offset: u64, bytes: &[u8]) -> Result<(), SessionEnd> {
        match Record::decode(bytes) {
            Ok(record) => {
                let out = self.stdout.get_or_insert_with(|| {
                    std::io::BufWriter::with_capacity(STDOUT_BUFFER_BYTES, std::io::stdout())
                });
                let written = serde_json::to_writer(&mut *out, &record.to_json())
                    .map_err(std::io::Error::from)
                    .and_then(|()| out.write_all(b"\n"));
                if let Err(e) = written {
                    tracing::debug!(error = %e, "stdout closed");
                    return Err(SessionEnd::OutputClosed);
                }
                self.subs[i].delivered += 1;
            }
            Err(e) => {
                tracing::warn!(offset, error = %e, "undecodable event skipped");
                self.subs[i].failed += 1;
            }
        }
        self.ack(i, offset).await?;
        self.advance(i, offset);
        Ok(())
    }

    /// Whether a read with `until_ms` reached an event received after it.
    fn past_until(&self, i: usize, record: &[u8]) -> bool {
        self.subs[i]
            .until_ms
            .is_some_and(|until| Record::decode(record).is_ok_and(|r| r.received_at_ms > until))
    }

    /// Records that `offset` is done for a read: a reconnect starts after it, and the
    /// limit counts it.
    fn advance(&mut self, i: usize, offset: u64) {
        let s = &mut self.subs[i];
        if let Some(p) = &s.progress {
            p.add(1);
        }
        if matches!(s.kind, SubKind::Read { .. }) {
            s.start = Start::Offset(offset.saturating_add(1));
        }
        if let Some(left) = &mut s.limit {
            *left = left.saturating_sub(1);
            if *left == 0 {
                s.finished = true;
            }
        }
        self.check_done(i);
    }

    fn check_done(&mut self, i: usize) {
        let l = &self.live[i];
        if l.ended && l.in_flight == 0 && l.pending.is_empty() {
            self.subs[i].finished = true;
        }
    }

    /// Starts deliveries while the subscription has room.
    async fn pump(&mut self, i: usize) -> Result<(), SessionEnd> {
        let Handler::Forward(fwd) = self.subs[i].handler.clone() else {
            return Ok(());
        };
        while self.live[i].in_flight < self.subs[i].concurrency {
            let Some((offset, bytes)) = self.live[i].pending.pop_front() else {
                break;
            };
            match Record::decode(&bytes) {
                Ok(record) => {
                    drop(bytes);
                    let fwd = fwd.clone();
                    let shutdown = self.ctx.shutdown.clone();
                    let handle = self.jobs.spawn(async move {
                        let outcome = fwd.deliver(record, offset, &shutdown).await;
                        (i, offset, outcome)
                    });
                    self.job_tags.insert(handle.id(), (i, offset));
                    self.live[i].in_flight += 1;
                }
                Err(e) => {
                    self.live[i].in_flight += 1;
                    let outcome = Outcome::Failed {
                        reason: format!("undecodable record ({e})"),
                        attempts: 0,
                        last_status: None,
                    };
                    Box::pin(self.completed(i, offset, outcome)).await?;
                }
            }
        }
        Ok(())
    }

    /// A delivery finished: acknowledge (or dead-letter) it and start the next.
    async fn completed(
        &mut self,
        i: usize,
        offset: u64,
        outcome: Outcome,
    ) -> Result<(), SessionEnd> {
        self.live[i].in_flight = self.live[i].in_flight.saturating_sub(1);
        let is_group = self.subs[i].group().is_some();
        let channel = self.subs[i].channel.clone();
        match outcome {
            Outcome::Delivered { status, attempts } => {
                tracing::debug!(%channel, offset, status, attempts, "delivered");
                self.subs[i].delivered += 1;
                self.ack(i, offset).await?;
            }
            Outcome::Failed {
                reason,
                attempts,
                last_status,
            } => {
                self.subs[i].failed += 1;
                if is_group {
                    tracing::warn!(%channel, offset, %reason, attempts, "dead-lettered");
                    self.send(ClientMsg::Nack {
                        sub: sub_id(i),
                        offset,
                        reason,
                        attempts,
                        last_status,
                    })
                    .await?;
                } else {
                    tracing::warn!(%channel, offset, %reason, attempts, "delivery failed");
                    // A read's nack is ignored; the ack returns the window credit.
                    self.ack(i, offset).await?;
                }
            }
            // Not acknowledged: the relay redelivers it to the group later.
            Outcome::Abandoned => return Ok(()),
        }
        self.advance(i, offset);
        self.pump(i).await
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
}
