//! One agent connection: hello, frame dispatch, heartbeats, idle timeout, graceful stop.
//!
//! The connection task only reads and dispatches; it never awaits the socket or a
//! subscription, so heartbeats, the idle timeout and the shutdown signal are honoured
//! whatever a slow agent or a busy subscription is doing. Frames it answers itself go
//! through the writer's control queue without waiting; while that queue is full, the
//! connection reads no further frame (every frame is answered with at most one), so an
//! agent may send requests as fast as it likes and still gets every answer, and one that
//! never reads them is dropped at the idle timeout. Acks go to their subscription's
//! bounded queue, which holds a window's worth — more acks than events in flight cannot
//! be legitimate.
//!
//! Anything malformed (a text frame, a frame before `Hello`, an undecodable or oversized
//! frame) gets an `Error` naming the problem and a close; the relay itself is never
//! affected (spec guarantee 6).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::socket::{Message, Socket, WsError};
use futures_util::stream::SplitStream;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, Id, JoinError, JoinSet};
use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::budget::Budget;
use super::frames::{self, Inbound};
use super::grant::Grant;
use super::subscription::{self, Kind, Nacked, SubCtrl, Subscription};
use super::writer::{self, Control, SubFrame, CONTROL_QUEUE_FRAMES, SUBSCRIPTION_QUEUE_FRAMES};
use crate::common::protocol::Refusal;
use crate::common::protocol::{
    codes, ClientMsg, ServerMsg, Start, MAX_CLIENT_FRAME_BYTES, MAX_WINDOW,
};
use crate::relay::groups::start;
use crate::relay::groups::OpenConnection;
use crate::relay::state::Relay;

/// How long a closing connection waits for its last frames to go out and for the
/// agent's close reply; a dead peer must not hold a task (or a graceful stop) longer.
pub const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Longest agent name written to the logs.
const MAX_AGENT_NAME_CHARS: usize = 128;

/// Why a connection ends.
#[derive(Debug)]
enum End {
    /// The agent closed it or it broke: nothing more can be said.
    Gone(String),
    /// The relay ends it and tells the agent why first.
    Refused(Refusal),
}

/// A running subscription as the connection sees it.
struct SubHandle {
    ctrl: mpsc::Sender<SubCtrl>,
    live: Arc<AtomicBool>,
    task: AbortHandle,
}

impl SubHandle {
    /// Ends the subscription. Its frames still queued are dropped unwritten from now on;
    /// dropping the handle closes the ack queue, so the task handles the acks already
    /// received, leaves its group (promoting a standby) and ends by itself.
    fn close(self) {
        self.live.store(false, Ordering::Release);
    }
}

struct Connection {
    relay: Arc<Relay>,
    grant: Grant,
    peer: String,
    control: mpsc::Sender<Control>,
    frames: mpsc::Sender<Box<SubFrame>>,
    subs: HashMap<u32, SubHandle>,
    tasks: JoinSet<()>,
    /// The agent's name once `Hello` was accepted.
    agent: Option<String>,
    nonce: u64,
    /// Bytes of events this connection may hold (see [`super::budget`]).
    budget: Budget,
}

/// Serves one upgraded WebSocket until it ends.
pub(crate) async fn run(
    relay: Arc<Relay>,
    socket: Socket,
    grant: Grant,
    peer: String,
    open: OpenConnection,
    budget: Budget,
) {
    let (sink, mut stream) = socket.split();
    let (control, control_rx) = mpsc::channel(CONTROL_QUEUE_FRAMES);
    let (frames, frames_rx) = mpsc::channel(SUBSCRIPTION_QUEUE_FRAMES);
    let stall = Duration::from_secs(relay.config.server.stream_idle_timeout_secs);
    let mut writer = tokio::spawn(writer::run(sink, control_rx, frames_rx, stall));
    tracing::info!(%peer, channels = ?grant.channels, "stream: agent connected");
    let mut conn = Connection::new(relay, grant, peer, control, frames, budget);
    let end = conn.serve(&mut stream, &mut writer).await;
    conn.finish(end, stream, writer).await;
    drop(open);
}

impl Connection {
    /// A connection writing through the writer's `control` and `frames` queues.
    fn new(
        relay: Arc<Relay>,
        grant: Grant,
        peer: String,
        control: mpsc::Sender<Control>,
        frames: mpsc::Sender<Box<SubFrame>>,
        budget: Budget,
    ) -> Connection {
        Connection {
            relay,
            grant,
            peer,
            control,
            frames,
            subs: HashMap::new(),
            tasks: JoinSet::new(),
            agent: None,
            nonce: 0,
            budget,
        }
    }

    async fn serve(
        &mut self,
        stream: &mut SplitStream<Socket>,
        writer: &mut tokio::task::JoinHandle<()>,
    ) -> End {
        let shutdown = self.relay.shutdown.clone();
        let stop = shutdown.wait();
        tokio::pin!(stop);
        let mut heartbeat = self.heartbeat();
        let idle_secs = self.relay.config.server.stream_idle_timeout_secs;
        let idle = Duration::from_secs(idle_secs);
        let idle_timer = tokio::time::sleep(idle);
        tokio::pin!(idle_timer);
        let control = self.control.clone();
        loop {
            tokio::select! {
                biased;
                _ = &mut stop => {
                    return End::Refused(Refusal::new(
                        codes::SHUTTING_DOWN,
                        "the relay is shutting down; reconnect later",
                    ));
                }
                // Only with room for the answer: the writer's pace paces the agent.
                msg = stream.next(), if self.control.capacity() > 0 => {
                    idle_timer.as_mut().reset(Instant::now() + idle);
                    let step = match msg {
                        None => Err(End::Gone("closed by the agent".into())),
                        Some(Err(e)) => Err(read_error(&e)),
                        // Boxed: handling a message (a subscribe joins a group) needs a
                        // larger state than waiting does, and an idle agent's connection
                        // would otherwise hold it for its whole life: 576 of the upgrade
                        // task's 2,192 bytes (docs/benchmarks.md, "An idle agent's
                        // connection made smaller").
                        Some(Ok(m)) => Box::pin(self.on_message(m)).await,
                    };
                    if let Err(end) = step {
                        return end;
                    }
                }
                // After the read: acks already in the socket are taken before a failed
                // writer ends the connection, so they still move the cursor.
                _ = &mut *writer => return End::Gone("the connection failed while sending".into()),
                // The control queue has room again: read on.
                room = control.reserve(), if control.capacity() == 0 => {
                    if room.is_err() {
                        return End::Gone("the connection is closed".into());
                    }
                }
                Some(done) = self.tasks.join_next_with_id() => self.reap(done),
                _ = heartbeat.tick() => self.ping(),
                _ = &mut idle_timer => return self.idle(idle_secs),
            }
        }
    }

    /// The relay's heartbeat, every `[server] stream_heartbeat_secs` (validated: > 0).
    fn heartbeat(&self) -> Interval {
        let every = Duration::from_secs(self.relay.config.server.stream_heartbeat_secs.max(1));
        let mut heartbeat = tokio::time::interval_at(Instant::now() + every, every);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        heartbeat
    }

    /// The idle timeout: nothing was read from the agent for `idle_secs`.
    fn idle(&self, idle_secs: u64) -> End {
        let why = if self.control.capacity() == 0 {
            format!("the agent read none of the relay's answers for {idle_secs} s")
        } else {
            format!("no frame from the agent for {idle_secs} s")
        };
        End::Refused(Refusal::new(codes::IDLE_TIMEOUT, why))
    }

    /// Sends the relay's `Ping`, once the agent said `Hello`.
    fn ping(&mut self) {
        if self.agent.is_some() {
            self.nonce += 1;
            // Skipped when the writer is busy: frames are flowing anyway.
            let _ = self
                .control
                .try_send(Control::Frame(Box::new(ServerMsg::Ping {
                    nonce: self.nonce,
                })));
        }
    }

    /// Forgets a subscription whose task ended.
    fn reap(&mut self, done: Result<(Id, ()), JoinError>) {
        let id = match done {
            Ok((id, ())) => id,
            Err(e) => e.id(),
        };
        self.subs.retain(|_, h| h.task.id() != id);
    }

    /// Stops the subscriptions, says why, closes, and waits (briefly) for the close.
    ///
    /// Order matters: the refusal goes out first (control frames jump the queue); then
    /// the subscriptions end by themselves — handling the acks already received, so an
    /// agent that acks and then closes loses nothing, and leaving their groups — and only
    /// then the close, so an agent that saw the close can resubscribe to a free group.
    async fn finish(
        mut self,
        end: End,
        mut stream: SplitStream<Socket>,
        mut writer: tokio::task::JoinHandle<()>,
    ) {
        let deadline = Instant::now() + CLOSE_GRACE;
        // Nothing waits for bytes that this connection will not give back any more.
        self.budget.close();
        for (_, h) in self.subs.drain() {
            h.close();
        }
        let reason = match &end {
            End::Gone(why) => why.clone(),
            End::Refused(r) => {
                let _ = self
                    .control
                    .try_send(Control::Frame(Box::new(r.frame(None))));
                r.code.to_string()
            }
        };
        let tasks = &mut self.tasks;
        let drained = tokio::time::timeout_at(deadline, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            // Stuck on a socket that does not drain: stop them the hard way.
            self.tasks.shutdown().await;
        }
        let _ = self.control.try_send(Control::Close);
        if !writer.is_finished() {
            let _ = tokio::time::timeout_at(deadline, &mut writer).await;
        }
        if matches!(end, End::Refused(_)) {
            // Read until the agent's close reply, so the error is not lost to a reset
            // caused by unread data.
            let _ = tokio::time::timeout_at(deadline, async {
                while let Some(Ok(_)) = stream.next().await {}
            })
            .await;
        }
        writer.abort();
        tracing::info!(peer = %self.peer, agent = ?self.agent, %reason, "stream: agent disconnected");
    }

    async fn on_message(&mut self, m: Message) -> Result<(), End> {
        match frames::decode(m).map_err(End::Refused)? {
            Inbound::Close => Err(End::Gone("closed by the agent".into())),
            // WebSocket-level heartbeats: they only reset the idle timer.
            Inbound::Heartbeat => Ok(()),
            Inbound::Frame(msg) => self.dispatch(msg).await,
        }
    }

    /// `Hello` first; then requests.
    async fn dispatch(&mut self, msg: ClientMsg) -> Result<(), End> {
        if self.agent.is_some() {
            return self.request(msg).await;
        }
        match msg {
            ClientMsg::Hello { versions, agent } => self.hello(&versions, agent),
            _ => Err(refused(codes::BAD_FRAME, "the first frame must be Hello")),
        }
    }

    /// A frame after `Hello`.
    async fn request(&mut self, msg: ClientMsg) -> Result<(), End> {
        match msg {
            ClientMsg::Hello { .. } => Err(refused(
                codes::BAD_FRAME,
                "Hello was already sent on this connection",
            )),
            ClientMsg::Subscribe {
                sub,
                channel,
                group,
                start,
                window,
            } => self.subscribe(sub, channel, group, start, window).await,
            ClientMsg::Read {
                sub,
                channel,
                start,
                to,
                follow,
                window,
            } => self.read(sub, channel, start, to, follow, window).await,
            ClientMsg::Ack { sub, offset } => self.route_ack(sub, offset, SubCtrl::Ack(offset)),
            ClientMsg::AckRange { sub, first, last } => {
                self.route_ack(sub, first, SubCtrl::AckRange { first, last })
            }
            ClientMsg::Nack {
                sub,
                offset,
                reason,
                attempts,
                last_status,
            } => self.route_ack(
                sub,
                offset,
                SubCtrl::Nack {
                    offset,
                    nacked: Box::new(Nacked {
                        reason,
                        attempts,
                        last_status,
                    }),
                },
            ),
            ClientMsg::Unsubscribe { sub } => {
                self.unsubscribe(sub);
                Ok(())
            }
            ClientMsg::Ping { nonce } => self.control(ServerMsg::Pong { nonce }),
            ClientMsg::Pong { .. } => Ok(()),
        }
    }

    fn unsubscribe(&mut self, sub: u32) {
        // Unknown ids are ignored: the subscription may have just ended by itself.
        if let Some(h) = self.subs.remove(&sub) {
            h.close();
            tracing::debug!(peer = %self.peer, sub, "stream: unsubscribed");
        }
    }

    fn hello(&mut self, versions: &[u16], agent: String) -> Result<(), End> {
        let version = frames::negotiate(versions).map_err(End::Refused)?;
        let agent: String = agent.chars().take(MAX_AGENT_NAME_CHARS).collect();
        tracing::info!(peer = %self.peer, agent = ?agent, version, "stream: hello");
        self.agent = Some(agent);
        self.control(ServerMsg::Welcome {
            version,
            relay: format!("hookrelay/{}", env!("CARGO_PKG_VERSION")),
            heartbeat_secs: u32::try_from(self.relay.config.server.stream_heartbeat_secs)
                .unwrap_or(u32::MAX),
        })
    }

    async fn subscribe(
        &mut self,
        sub: u32,
        channel: String,
        group: String,
        start: Start,
        window: u32,
    ) -> Result<(), End> {
        if let Err(r) = self.admit(sub, &channel) {
            return self.refuse(sub, r);
        }
        if !crate::common::config::valid_channel_name(&group) {
            return self.refuse(
                sub,
                Refusal::new(
                    codes::INVALID_GROUP,
                    "a group name is 1 to 64 characters of A-Z, a-z, 0-9, '_' and '-'",
                ),
            );
        }
        let log = &self.relay.log;
        let wanted = match start::wanted(log.as_ref(), &channel, start).await {
            Ok(w) => w,
            Err(r) => return self.refuse(sub, r),
        };
        let joined = self.relay.hub.join(log, &channel, &group, |cursor| {
            start::resolve(log.as_ref(), &channel, wanted, cursor)
        });
        match joined {
            Ok((member, joined)) => {
                member.announce(&self.peer);
                let kind = Kind::Group {
                    group,
                    member,
                    joined,
                };
                self.spawn(sub, channel, window, kind);
                Ok(())
            }
            Err(r) => self.refuse(sub, r),
        }
    }

    async fn read(
        &mut self,
        sub: u32,
        channel: String,
        start: Start,
        to: Option<u64>,
        follow: bool,
        window: u32,
    ) -> Result<(), End> {
        if let Err(r) = self.admit(sub, &channel) {
            return self.refuse(sub, r);
        }
        let start = match start {
            Start::Committed => Start::Earliest,
            s => s,
        };
        let log = self.relay.log.clone();
        let resolved = match start::wanted(log.as_ref(), &channel, start).await {
            Ok(w) => start::resolve(log.as_ref(), &channel, w, None),
            Err(r) => Err(r),
        };
        let head = log.head(&channel);
        let next = match resolved {
            Ok(n) => n,
            Err(r) => return self.refuse(sub, r),
        };
        // Without follow, a range never waits for events that do not exist yet.
        let stop = if follow {
            to
        } else {
            Some(to.map_or(head, |t| t.min(head)))
        };
        self.spawn(sub, channel, window, Kind::Read { next, stop });
        Ok(())
    }

    /// Checks a new subscription's id and channel.
    fn admit(&mut self, sub: u32, channel: &str) -> Result<(), Refusal> {
        if let Some(existing) = self.subs.remove(&sub) {
            // A subscription that already ended (a finished Read not yet reaped) frees its
            // id; otherwise the agent lost track of its ids, and the refusal closes both,
            // as its `sub` says.
            let ended = existing.ctrl.is_closed();
            existing.close();
            if ended {
                return self.admit(sub, channel);
            }
            return Err(Refusal::new(
                codes::DUPLICATE_SUBSCRIPTION,
                format!(
                    "subscription id {sub} was already in use on this connection; both are closed"
                ),
            ));
        }
        if self.relay.config.channel(channel).is_none() {
            return Err(Refusal::new(
                codes::UNKNOWN_CHANNEL,
                format!("no channel named {channel:?} is configured"),
            ));
        }
        if !self.grant.allows(channel) {
            return Err(Refusal::new(
                codes::FORBIDDEN_CHANNEL,
                format!("this connection's token does not grant channel {channel:?}"),
            ));
        }
        Ok(())
    }

    fn spawn(&mut self, sub: u32, channel: String, window: u32, kind: Kind) {
        let window = window.clamp(1, MAX_WINDOW);
        // At most one ack per event in flight can be legitimate.
        let (ctrl, ctrl_rx) = mpsc::channel(window as usize);
        let live = Arc::new(AtomicBool::new(true));
        let task = self.tasks.spawn(subscription::run(Subscription {
            relay: self.relay.clone(),
            sub,
            channel,
            window,
            kind,
            ctrl: ctrl_rx,
            out: self.frames.clone(),
            live: live.clone(),
            peer: self.peer.clone(),
            budget: self.budget.clone(),
        }));
        self.subs.insert(sub, SubHandle { ctrl, live, task });
    }

    /// Routes an ack or nack to its subscription.
    fn route_ack(&mut self, sub: u32, offset: u64, c: SubCtrl) -> Result<(), End> {
        let Some(h) = self.subs.get(&sub) else {
            return self.refuse(
                sub,
                Refusal::new(
                    codes::UNKNOWN_OFFSET,
                    format!("offset {offset}: there is no subscription {sub} on this connection"),
                ),
            );
        };
        match h.ctrl.try_send(c) {
            Ok(()) => Ok(()),
            Err(e) => {
                let why = match e {
                    mpsc::error::TrySendError::Full(_) => "more acks than events in flight",
                    mpsc::error::TrySendError::Closed(_) => "the subscription has ended",
                };
                if let Some(h) = self.subs.remove(&sub) {
                    h.close();
                }
                self.refuse(
                    sub,
                    Refusal::new(
                        codes::UNKNOWN_OFFSET,
                        format!("offset {offset} on subscription {sub}: {why}"),
                    ),
                )
            }
        }
    }

    fn refuse(&self, sub: u32, r: Refusal) -> Result<(), End> {
        tracing::debug!(peer = %self.peer, sub, code = r.code, "stream: request refused");
        self.control(r.frame(Some(sub)))
    }

    /// Queues a frame the connection answers itself.
    fn control(&self, msg: ServerMsg) -> Result<(), End> {
        self.control
            .try_send(Control::Frame(Box::new(msg)))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => {
                    End::Gone("the agent sends requests but does not read the answers".into())
                }
                mpsc::error::TrySendError::Closed(_) => {
                    End::Gone("the connection is closed".into())
                }
            })
    }
}

fn refused(code: &'static str, message: impl Into<String>) -> End {
    End::Refused(Refusal::new(code, message))
}

/// A read failure; an oversized WebSocket message is still answered.
fn read_error(e: &WsError) -> End {
    let too_large = matches!(e, WsError::Capacity(_));
    if too_large {
        refused(
            codes::FRAME_TOO_LARGE,
            format!("a frame exceeds the limit of {MAX_CLIENT_FRAME_BYTES} bytes"),
        )
    } else {
        End::Gone(format!("read failed: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::config::Config;
    use crate::common::protocol::PROTOCOL_VERSION;
    use crate::common::shutdown::Shutdown;
    use crate::relay::stream::budget::Shared;

    /// A connection to a relay with channels `a` and `b`, whose token grants `a` only,
    /// and the receiving end of its control queue.
    fn connection(dir: &std::path::Path) -> (Connection, mpsc::Receiver<Control>) {
        let config = Config::parse(
            "[server]\nstream_heartbeat_secs = 7\n\n\
             [[channel]]\nname = \"a\"\nscheme = \"none\"\ntokens = [\"ta\"]\n\n\
             [[channel]]\nname = \"b\"\nscheme = \"none\"\ntokens = [\"tb\"]\n",
            "test.toml",
        )
        .expect("config");
        let log = crate::storage::open(dir, 0).expect("log");
        let relay = Arc::new(Relay::new(config, log, Shutdown::new()));
        let grant = Grant {
            channels: vec!["a".into()],
        };
        let (control, control_rx) = mpsc::channel(CONTROL_QUEUE_FRAMES);
        let (frames, _) = mpsc::channel(1);
        let budget = Shared::new(1 << 20).connection(1 << 20);
        let conn = Connection::new(relay, grant, "test".into(), control, frames, budget);
        (conn, control_rx)
    }

    fn frame(msg: &ClientMsg) -> Message {
        Message::Binary(msg.encode().into())
    }

    fn hello(versions: Vec<u16>) -> Message {
        frame(&ClientMsg::Hello {
            versions,
            agent: "t".into(),
        })
    }

    /// The code of the `Error` frame a connection ends with.
    fn fatal(step: Result<(), End>) -> &'static str {
        match step {
            Err(End::Refused(r)) => {
                assert!(matches!(r.frame(None), ServerMsg::Error { sub: None, .. }));
                r.code
            }
            Err(End::Gone(why)) => panic!("ended without an Error frame: {why}"),
            Ok(()) => panic!("the connection goes on"),
        }
    }

    /// The next frame the connection answered with.
    fn answer(rx: &mut mpsc::Receiver<Control>) -> ServerMsg {
        match rx.try_recv() {
            Ok(Control::Frame(m)) => *m,
            Ok(Control::Close) => panic!("a close, not a frame"),
            Err(e) => panic!("no answer: {e}"),
        }
    }

    #[tokio::test]
    async fn hello_comes_first_and_picks_the_highest_shared_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut conn, mut rx) = connection(dir.path());
        let ping = frame(&ClientMsg::Ping { nonce: 1 });
        assert_eq!(fatal(conn.on_message(ping).await), codes::BAD_FRAME);
        assert_eq!(
            fatal(conn.on_message(hello(vec![0, 99])).await),
            codes::UNSUPPORTED_VERSION
        );
        assert!(rx.try_recv().is_err(), "nothing but the refusal");
        assert!(conn.agent.is_none());

        conn.on_message(hello(vec![1, PROTOCOL_VERSION, 7]))
            .await
            .expect("hello");
        match answer(&mut rx) {
            ServerMsg::Welcome {
                version,
                heartbeat_secs,
                relay,
            } => {
                assert_eq!((version, heartbeat_secs), (PROTOCOL_VERSION, 7));
                assert!(relay.starts_with("hookrelay/"), "{relay}");
            }
            other => panic!("expected Welcome, got {other:?}"),
        }
        assert_eq!(
            fatal(conn.on_message(hello(vec![1])).await),
            codes::BAD_FRAME,
            "a second Hello"
        );
    }

    #[tokio::test]
    async fn an_agent_speaking_only_version_1_gets_version_1() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut conn, mut rx) = connection(dir.path());
        conn.on_message(hello(vec![1])).await.expect("hello");
        assert!(matches!(
            answer(&mut rx),
            ServerMsg::Welcome { version: 1, .. }
        ));
    }

    #[tokio::test]
    async fn malformed_messages_end_the_connection_with_a_code() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut conn, _rx) = connection(dir.path());
        conn.on_message(hello(vec![PROTOCOL_VERSION]))
            .await
            .expect("hello");
        assert_eq!(
            fatal(conn.on_message(Message::text("hi")).await),
            codes::BAD_FRAME
        );
        let garbage = Message::Binary(vec![200u8, 1, 2].into());
        assert_eq!(fatal(conn.on_message(garbage).await), codes::BAD_FRAME);
        let big = Message::Binary(vec![1u8; MAX_CLIENT_FRAME_BYTES + 1].into());
        assert_eq!(fatal(conn.on_message(big).await), codes::FRAME_TOO_LARGE);
        assert!(matches!(
            conn.on_message(Message::Close(None)).await,
            Err(End::Gone(_))
        ));
        // WebSocket-level heartbeats are not protocol frames, and not errors.
        assert!(conn.on_message(Message::Ping(vec![].into())).await.is_ok());
    }

    #[tokio::test]
    async fn pings_are_answered_and_refused_requests_keep_the_connection() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut conn, mut rx) = connection(dir.path());
        conn.on_message(hello(vec![PROTOCOL_VERSION]))
            .await
            .expect("hello");
        answer(&mut rx);
        conn.on_message(frame(&ClientMsg::Ping { nonce: 42 }))
            .await
            .expect("ping");
        assert_eq!(answer(&mut rx), ServerMsg::Pong { nonce: 42 });

        let subscribe = |sub, channel: &str, group: &str| {
            frame(&ClientMsg::Subscribe {
                sub,
                channel: channel.into(),
                group: group.into(),
                start: Start::Earliest,
                window: 1,
            })
        };
        let refusals = [
            (subscribe(1, "nope", "g"), 1, codes::UNKNOWN_CHANNEL),
            (subscribe(2, "b", "g"), 2, codes::FORBIDDEN_CHANNEL),
            (subscribe(3, "a", "bad group!"), 3, codes::INVALID_GROUP),
            (
                frame(&ClientMsg::Ack { sub: 9, offset: 1 }),
                9,
                codes::UNKNOWN_OFFSET,
            ),
        ];
        for (msg, want_sub, want_code) in refusals {
            conn.on_message(msg).await.expect("refused, not fatal");
            match answer(&mut rx) {
                ServerMsg::Error { sub, code, .. } => {
                    assert_eq!((sub, code.as_str()), (Some(want_sub), want_code))
                }
                other => panic!("expected Error, got {other:?}"),
            }
        }
        // Unsubscribing an unknown id is not an error.
        conn.on_message(frame(&ClientMsg::Unsubscribe { sub: 5 }))
            .await
            .expect("ignored");
        assert!(rx.try_recv().is_err());
    }

    #[tokio::test]
    async fn an_agent_that_reads_no_answers_times_out_saying_so() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut conn, _rx) = connection(dir.path());
        conn.on_message(hello(vec![PROTOCOL_VERSION]))
            .await
            .expect("hello");
        let End::Refused(r) = conn.idle(3) else {
            panic!("an idle timeout is told");
        };
        assert_eq!(r.code, codes::IDLE_TIMEOUT);
        assert_eq!(r.message, "no frame from the agent for 3 s");
        // Welcome is queued; fill the rest of the queue with answers nobody reads.
        for nonce in 1..CONTROL_QUEUE_FRAMES as u64 {
            conn.on_message(frame(&ClientMsg::Ping { nonce }))
                .await
                .expect("answered");
        }
        assert_eq!(conn.control.capacity(), 0, "the reader pauses here");
        let End::Refused(r) = conn.idle(3) else {
            panic!("an idle timeout is told");
        };
        assert_eq!(r.code, codes::IDLE_TIMEOUT);
        assert!(r.message.contains("read none"), "{}", r.message);
    }
}
