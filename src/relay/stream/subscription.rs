//! The delivery loop of one subscription: window, acks, cursor.
//!
//! Each subscription is its own task, owning its state, so a slow or stuck
//! subscription never blocks the connection's reader (heartbeats, other subscriptions,
//! shutdown). The loop:
//!
//! 1. reads the log in chunks from `next` up to the durable head and sends `Event`s while
//!    fewer than `window` events are *outstanding* — sent and not yet covered by the
//!    contiguous acknowledged prefix. Counting the span, not just the unacked ones, keeps
//!    the bookkeeping bounded by the window even when one event is stuck and later ones
//!    are acked. The bytes of events read and not yet written to the socket are bounded
//!    apart, by the connection's byte budget ([`super::budget`]): each chunk reserves
//!    its bytes before it is read, and delivery waits while the budget is spent;
//! 2. sends `CaughtUp` when everything durable has been sent (again only after it fell
//!    behind, i.e. the window stopped it while events were waiting);
//! 3. waits for an ack, a nack, or the log's durable head to move (`Storage::watch`,
//!    which moves only after a flush: readers never see an event that is not on disk).
//!
//! Acks may come out of order; the group's cursor moves only over the contiguous
//! acknowledged prefix, so a crash anywhere redelivers at most the window. That
//! bookkeeping is [`super::window::Window`], pure state; this file does the I/O.
//!
//! A group subscription also wakes on its group's *nudge* (see [`crate::relay::groups`]):
//!
//! - after a **reset** it drops its in-flight bookkeeping and restarts at the group's
//!   new position. What the agent still holds from before becomes *stale*: its acks
//!   and nacks only return window credit (the agent may still send them; they must not
//!   close the subscription, nor move the cursor, nor record dead letters);
//! - after a **redrive** request it reads the group's pending redrives from the log and
//!   sends those events again — normal `Event` frames with their original offsets,
//!   below the cursor, ahead of new events. Their acks settle the redrive (the dead
//!   letter goes); a nack records the dead letter again with the attempts added up.
//!   Redrives are read again whenever the subscription starts, so a redrive asked while
//!   no agent was connected is delivered to the next one.
//!
//! Stale, redriven and normal events all count in the window: the agent never holds
//! more than `window` unacknowledged events, whatever happened.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};

use super::budget::{
    Budget, Closed, Held, ReadPlan, EVENT_FRAME_OVERHEAD_BYTES, RECORD_OVERHEAD_BYTES,
};
use super::window::{Claim, NotInFlight, RangeAck, Window};
use super::writer::SubFrame;
use crate::common::protocol::Refusal;
use crate::common::protocol::{codes, ServerMsg};
use crate::relay::groups::start::{self, internal};
use crate::relay::groups::{Advance, Joined, LeaseHold, Member};
use crate::relay::state::Relay;
use crate::storage::DeadLetter;
use crate::storage::LEASE_RETRY_MS;

/// Most events read from the log at once (bounded further by the free window).
pub(crate) const READ_CHUNK_EVENTS: usize = 128;

/// Most queued acks settled in one go before the delivery loop looks at the log again.
const CTRL_BURST: usize = 4096;

/// Bytes a read chunk aims at: with large events, fewer are read at once, so that the
/// subscriptions of a connection take turns on its socket. (Memory is bounded by the
/// connection's budget, whatever the events; this only sizes the turns.)
pub(crate) const READ_CHUNK_BYTES: usize = 1024 * 1024;

/// Longest dead-letter reason stored; the rest is cut (the agent chooses the text).
pub(crate) const MAX_DEAD_LETTER_REASON_BYTES: usize = 1024;

const STATE_ACTIVE: &str = "active";
const STATE_STANDBY: &str = "standby";

/// What the connection forwards to a subscription.
pub(crate) enum SubCtrl {
    Ack(u64),
    /// `Ack` for every offset from `first` to `last`, inclusive.
    AckRange {
        first: u64,
        last: u64,
    },
    /// Boxed: nacks are rare, and every connection's ack queue allocates its first
    /// block of slots up front at the size of the largest variant.
    Nack {
        offset: u64,
        nacked: Box<Nacked>,
    },
}

/// What a nack says about the event given up.
pub(crate) struct Nacked {
    pub reason: String,
    pub attempts: u32,
    pub last_status: Option<u16>,
}

/// Group member or group-less reader.
pub(crate) enum Kind {
    /// A consumer-group subscription: cursor, standby, dead letters.
    Group {
        group: String,
        member: Member,
        joined: Joined,
    },
    /// A `Read`: from `next`, until `stop` (inclusive) if any; no cursor, no standby.
    Read { next: u64, stop: Option<u64> },
}

/// Everything a subscription task needs.
pub(crate) struct Subscription {
    pub relay: Arc<Relay>,
    pub sub: u32,
    pub channel: String,
    /// Granted window (already clamped).
    pub window: u32,
    pub kind: Kind,
    pub ctrl: mpsc::Receiver<SubCtrl>,
    pub out: mpsc::Sender<Box<SubFrame>>,
    /// Cleared when the subscription ends; the writer drops its queued frames then.
    pub live: Arc<AtomicBool>,
    /// The agent's address, for logs.
    pub peer: String,
    /// The connection's byte budget for events read and not yet written.
    pub budget: Budget,
}

/// Why delivery stopped.
enum Stop {
    /// The connection is gone or the subscription is done: nothing to say.
    Quiet,
    /// Tell the agent, with an `Error` for this subscription.
    Refused(Refusal),
}

impl From<Refusal> for Stop {
    fn from(r: Refusal) -> Stop {
        Stop::Refused(r)
    }
}

/// Runs a subscription until it ends (or its task is aborted by the connection).
///
/// Not an `async fn`: its argument would then be stored in the task twice for the
/// task's whole life (once as the argument, once moved out of it), next to the
/// `Delivery` made from it. Unpacking it before the future starts keeps an idle
/// subscription's task under 2 KiB, one allocator size class smaller; see
/// docs/benchmarks.md, "mimalloc, landed".
pub(crate) fn run(s: Subscription) -> impl std::future::Future<Output = ()> + Send {
    let (sub, out, live) = (s.sub, s.out.clone(), s.live.clone());
    let (mut d, start) = Delivery::new(s);
    async move {
        let outcome = match start {
            Start::Group(joined) => d.run_group(joined).await,
            Start::Read { next, stop } => d.run_read(next, stop).await,
        };
        // Acks that arrived before the end still count (an agent may ack, then close).
        d.drain().await;
        d.log_end(&outcome);
        conclude(d, outcome, sub, &out, &live).await;
    }
}

/// Where delivery starts: [`Kind`] without what went into the [`Delivery`].
enum Start {
    Group(Joined),
    Read { next: u64, stop: Option<u64> },
}

/// The end of a subscription, in an order that matters: frames still queued are dropped
/// before the group may promote a standby; and the group is left before the agent is
/// told, so that a resubscription sent in answer to the `Error` finds it free. A read
/// that delivered its whole range keeps its last frames instead: the `End` may still be
/// queued (a read of an empty range ends at once), and nobody else will receive them.
async fn conclude(
    mut d: Delivery,
    outcome: Result<(), Stop>,
    sub: u32,
    out: &mpsc::Sender<Box<SubFrame>>,
    live: &AtomicBool,
) {
    let completed_read = outcome.is_ok() && d.group.is_none();
    let was_live = if completed_read {
        live.load(Ordering::Acquire)
    } else {
        live.swap(false, Ordering::AcqRel)
    };
    if let Some(member) = d.member.take() {
        member.leave();
    }
    drop(d);
    if let (Err(Stop::Refused(r)), true) = (outcome, was_live) {
        let frame = SubFrame::one(r.frame(Some(sub)).encode(), None);
        let _ = out.send(frame).await;
    }
}

struct Delivery {
    relay: Arc<Relay>,
    sub: u32,
    channel: String,
    window: Window,
    ctrl: mpsc::Receiver<SubCtrl>,
    out: mpsc::Sender<Box<SubFrame>>,
    live: Arc<AtomicBool>,
    peer: String,
    group: Option<String>,
    member: Option<Member>,
    gauge: StateGauge,
    /// The group's generation this subscription delivers for (changes on a reset).
    generation: u64,
    /// The group's lease across relay nodes, once held: delivery stops when it is lost.
    lease: Option<LeaseHold>,
    budget: Budget,
    /// The largest a stored record may be: the body limit plus the request head, or the
    /// largest record seen if larger (stored under an earlier, larger limit).
    record_bound: usize,
}

/// Where delivery stands, between turns of [`Delivery::deliver`].
struct Progress {
    /// The next offset to read from the log.
    next: u64,
    /// Deliver up to this offset (inclusive), then end; `None` follows the log.
    stop: Option<u64>,
    /// Events were waiting when the window stopped delivery: a `CaughtUp` is owed.
    behind: bool,
    /// The `End` was sent: only acks are awaited.
    ended: bool,
}

impl Delivery {
    fn new(s: Subscription) -> (Delivery, Start) {
        let Subscription {
            relay,
            sub,
            channel,
            window,
            kind,
            ctrl,
            out,
            live,
            peer,
            budget,
        } = s;
        let record_bound = relay
            .config
            .server
            .max_body_bytes
            .saturating_add(RECORD_OVERHEAD_BYTES);
        let gauge = StateGauge {
            gauges: relay.metrics.subscriptions.clone(),
            state: None,
        };
        let (group, member, start) = match kind {
            Kind::Group {
                group,
                member,
                joined,
            } => (Some(group), Some(member), Start::Group(joined)),
            Kind::Read { next, stop } => (None, None, Start::Read { next, stop }),
        };
        let d = Delivery {
            relay,
            sub,
            channel,
            window: Window::new(window as usize),
            ctrl,
            out,
            live,
            peer,
            group,
            member,
            gauge,
            generation: 0,
            lease: None,
            budget,
            record_bound,
        };
        (d, start)
    }

    fn log_end(&self, outcome: &Result<(), Stop>) {
        let why = match outcome {
            Err(Stop::Refused(r)) => r.code,
            _ => "closed",
        };
        let sub = self.sub;
        match &self.group {
            Some(group) => {
                tracing::info!(channel = %self.channel, group = %group, sub, reason = why, peer = %self.peer, "stream: subscription ended")
            }
            None => {
                tracing::debug!(channel = %self.channel, sub, reason = why, peer = %self.peer, "stream: read ended")
            }
        }
    }

    async fn run_group(&mut self, joined: Joined) -> Result<(), Stop> {
        let head = self.relay.log.head(&self.channel);
        let group = self.group.clone().unwrap_or_default();
        let (next, generation) = match joined {
            Joined::Active { next, generation } => match self.lease_now(next, generation).await? {
                Some((next, generation)) => {
                    self.send(self.subscribed(next, head, true)).await?;
                    self.gauge.set(STATE_ACTIVE);
                    tracing::info!(channel = %self.channel, group = %group, sub = self.sub, next, peer = %self.peer, "stream: subscribed (active)");
                    (next, generation)
                }
                None => {
                    self.send(self.subscribed(next, head, false)).await?;
                    self.gauge.set(STATE_STANDBY);
                    tracing::info!(channel = %self.channel, group = %group, sub = self.sub, peer = %self.peer, "stream: subscribed (standby: another relay node delivers this group)");
                    let started = self.wait_lease().await?;
                    self.promoted(started).await?
                }
            },
            Joined::Standby { position, promoted } => {
                self.send(self.subscribed(position, head, false)).await?;
                self.gauge.set(STATE_STANDBY);
                tracing::info!(channel = %self.channel, group = %group, sub = self.sub, peer = %self.peer, "stream: subscribed (standby)");
                let (next, generation) = self.wait_promotion(promoted).await?;
                let started = match self.lease_now(next, generation).await? {
                    Some(started) => started,
                    None => self.wait_lease().await?,
                };
                self.promoted(started).await?
            }
        };
        self.generation = generation;
        self.load_redrives().await?;
        self.deliver(next, None).await
    }

    /// Tells the agent that its standby subscription is active now, from `next`.
    async fn promoted(&mut self, (next, generation): (u64, u64)) -> Result<(u64, u64), Stop> {
        self.send(ServerMsg::Active {
            sub: self.sub,
            next,
        })
        .await?;
        self.gauge.set(STATE_ACTIVE);
        let group = self.group.clone().unwrap_or_default();
        tracing::info!(channel = %self.channel, group = %group, sub = self.sub, next, peer = %self.peer, "stream: standby promoted to active");
        Ok((next, generation))
    }

    /// The active member of this node's group delivers only with the group's lease
    /// across nodes (see [`crate::relay::groups`]): kept from a local handover, or taken
    /// now. Where to start and the generation when held; `None` while another node
    /// holds it.
    async fn lease_now(&mut self, next: u64, generation: u64) -> Result<Option<(u64, u64)>, Stop> {
        let Some(member) = &self.member else {
            return Ok(None);
        };
        if let Some(hold) = member.lease() {
            self.lease = Some(hold);
            return Ok(Some((next, generation)));
        }
        self.try_lease().await
    }

    /// One attempt to take the group's lease; a storage error counts as "not now".
    async fn try_lease(&mut self) -> Result<Option<(u64, u64)>, Stop> {
        let group = self.group.clone().unwrap_or_default();
        let grant = match self.relay.log.try_lease(&self.channel, &group).await {
            Ok(Some(grant)) => grant,
            Ok(None) => return Ok(None),
            Err(e) => {
                tracing::warn!(channel = %self.channel, group = %group, error = %e, "stream: the group's lease could not be taken; retrying");
                return Ok(None);
            }
        };
        let Some(member) = &self.member else {
            return Ok(None);
        };
        match member.hold(grant) {
            Some((next, generation, hold)) => {
                self.lease = Some(hold);
                Ok(Some((next, generation)))
            }
            None => Err(Stop::Refused(Refusal::new(
                codes::INTERNAL,
                "the consumer group was lost; subscribe again",
            ))),
        }
    }

    /// Waits as a standby, retrying the lease, until this node gets it.
    async fn wait_lease(&mut self) -> Result<(u64, u64), Stop> {
        let retry = std::time::Duration::from_millis(LEASE_RETRY_MS);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(retry) => {}
                c = self.ctrl.recv() => return Err(self.standby_ctrl(c)),
            }
            if let Some(started) = self.try_lease().await? {
                return Ok(started);
            }
        }
    }

    async fn run_read(&mut self, next: u64, stop: Option<u64>) -> Result<(), Stop> {
        let head = self.relay.log.head(&self.channel);
        self.send(self.subscribed(next, head, true)).await?;
        self.gauge.set(STATE_ACTIVE);
        tracing::info!(channel = %self.channel, sub = self.sub, next, stop, peer = %self.peer, "stream: read started");
        self.deliver(next, stop).await
    }

    fn subscribed(&self, next: u64, head: u64, active: bool) -> ServerMsg {
        ServerMsg::Subscribed {
            sub: self.sub,
            next,
            head,
            window: self.window.size() as u32,
            active,
        }
    }

    /// A standby waits, holding nothing in flight, until its group promotes it.
    async fn wait_promotion(
        &mut self,
        mut promoted: oneshot::Receiver<(u64, u64)>,
    ) -> Result<(u64, u64), Stop> {
        tokio::select! {
            next = &mut promoted => next.map_err(|_| {
                Stop::Refused(Refusal::new(codes::INTERNAL, "the consumer group was lost; subscribe again"))
            }),
            c = self.ctrl.recv() => Err(self.standby_ctrl(c)),
        }
    }

    /// A standby holds nothing in flight: any ack or nack from its agent is an error.
    fn standby_ctrl(&self, c: Option<SubCtrl>) -> Stop {
        match c {
            None => Stop::Quiet,
            Some(SubCtrl::Ack(offset))
            | Some(SubCtrl::AckRange { first: offset, .. })
            | Some(SubCtrl::Nack { offset, .. }) => Stop::Refused(self.unknown_offset(offset)),
        }
    }

    /// Sends from `next` while the window allows; ends after `stop` if given.
    async fn deliver(&mut self, next: u64, stop: Option<u64>) -> Result<(), Stop> {
        let mut head_rx = self.relay.log.watch(&self.channel);
        let mut nudge = self.member.as_ref().map(|m| m.nudge.clone());
        let mut lease = self.lease.as_ref().map(|h| (h.id, h.lost.clone()));
        let mut p = Progress {
            next,
            stop,
            // Starts behind, so the first catch-up is announced even on an empty channel.
            behind: true,
            ended: false,
        };
        loop {
            let head = *head_rx.borrow_and_update();
            if !p.ended {
                self.send_redrives(p.next).await?;
                let limit = p.stop.map_or(head, |s| s.min(head));
                self.fill(&mut p, limit).await?;
                self.announce(&mut p, limit, head).await?;
            }
            if p.ended && self.window.outstanding() == 0 {
                // The whole range was delivered (and settled): a normal end.
                return Ok(());
            }
            let wait_head = !p.ended && self.window.free() > 0 && p.next > head;
            tokio::select! {
                c = self.ctrl.recv() => match c {
                    None => return Err(Stop::Quiet),
                    Some(c) => self.handle_burst(c).await?,
                },
                changed = head_rx.changed(), if wait_head => {
                    if changed.is_err() {
                        return Err(Stop::Refused(Refusal::new(codes::INTERNAL, "the relay's log closed")));
                    }
                }
                id = lease_lost(&mut lease) => return Err(self.stop_for_lost_lease(id)),
                alive = nudged(&mut nudge) => {
                    if !alive {
                        nudge = None;
                    } else if let Some(restart) = self.on_nudge().await? {
                        p.next = restart;
                        p.behind = true;
                    }
                }
            }
        }
    }

    /// Reads and sends chunks of events from `p.next` up to `limit` while a worthwhile
    /// part of the window is free: refilling after every single ack would read the log
    /// one event at a time.
    async fn fill(&mut self, p: &mut Progress, limit: u64) -> Result<(), Stop> {
        let refill_at = (self.window.size() / 4).clamp(1, READ_CHUNK_EVENTS);
        while self.window.free() >= refill_at && p.next <= limit {
            let events = self.window.free().min(READ_CHUNK_EVENTS);
            let held = self.reserve(events).await?;
            let chunk = self.read_chunk(p.next, limit, events, &held).await?;
            let largest = chunk.iter().map(|(_, r)| r.len()).max().unwrap_or(0);
            self.record_bound = self.record_bound.max(largest);
            if chunk.is_empty() {
                // Everything left up to the limit was removed by retention.
                p.next = limit + 1;
            }
            let frames = self.encode_chunk(chunk, limit, &mut p.next);
            if !frames.is_empty() {
                // Counted first: once queued, the agent may see them (and ack) at once.
                self.relay
                    .metrics
                    .delivered
                    .with_label_values(&[self.channel.as_str()])
                    .inc_by(frames.len() as u64);
                self.send_events(frames, held).await?;
            }
        }
        Ok(())
    }

    /// Holds budget for a chunk of at most `events` events: for all of them at their
    /// largest if that much is free, else what is free, but at least one record. While
    /// the budget is spent it waits — handling acks meanwhile, so the cursor still moves.
    async fn reserve(&mut self, events: usize) -> Result<Held, Stop> {
        let budget = self.budget.clone();
        let bytes =
            ReadPlan::reservation(events, self.record_bound, budget.available(), budget.max());
        let reserve = budget.reserve(bytes);
        tokio::pin!(reserve);
        loop {
            tokio::select! {
                biased;
                held = &mut reserve => return held.map_err(|Closed| Stop::Quiet),
                c = self.ctrl.recv() => match c {
                    None => return Err(Stop::Quiet),
                    Some(c) => self.handle(c).await?,
                },
            }
        }
    }

    /// The `Event` frames of a chunk up to `limit`, each counted in the window; `next`
    /// moves past what was taken.
    fn encode_chunk(
        &mut self,
        chunk: Vec<(u64, Vec<u8>)>,
        limit: u64,
        next: &mut u64,
    ) -> Vec<Vec<u8>> {
        let mut frames = Vec::with_capacity(chunk.len());
        for (offset, record) in chunk {
            if offset > limit {
                *next = limit + 1;
                break;
            }
            frames.push(
                ServerMsg::Event {
                    sub: self.sub,
                    offset,
                    record,
                }
                .encode(),
            );
            self.window.sent(offset);
            *next = offset + 1;
        }
        frames
    }

    /// After a fill: `End` once a read's range was all sent, `CaughtUp` once everything
    /// durable was sent after delivery had fallen behind.
    async fn announce(&mut self, p: &mut Progress, limit: u64, head: u64) -> Result<(), Stop> {
        if p.next <= limit {
            p.behind = true;
        } else if let Some(last) = p.stop.filter(|&s| p.next > s) {
            self.send(ServerMsg::End {
                sub: self.sub,
                last,
            })
            .await?;
            p.ended = true;
        } else if p.behind {
            self.send(ServerMsg::CaughtUp {
                sub: self.sub,
                head,
            })
            .await?;
            p.behind = false;
        }
        Ok(())
    }

    /// Handles `first` and the acks queued behind it: they arrive in bursts, and all
    /// that are here are settled before the log is read again.
    async fn handle_burst(&mut self, first: SubCtrl) -> Result<(), Refusal> {
        self.handle(first).await?;
        for _ in 0..CTRL_BURST {
            match self.ctrl.try_recv() {
                Ok(c) => self.handle(c).await?,
                Err(_) => break,
            }
        }
        Ok(())
    }

    /// This node lost the group's lease: delivery stops at once (before another node can
    /// take over), and the agent is told to subscribe again (it becomes a standby, or
    /// active again once a lease is had).
    fn stop_for_lost_lease(&self, id: u64) -> Stop {
        if let Some(member) = &self.member {
            member.lease_lost(id);
        }
        tracing::warn!(channel = %self.channel, group = ?self.group, sub = self.sub, peer = %self.peer, "stream: the group's lease was lost; delivery stopped");
        Stop::Refused(Refusal::new(
            codes::INTERNAL,
            "this relay node lost the consumer group's lease (its storage did not answer in \
             time); subscribe again",
        ))
    }

    /// A reset or a redrive request on the group. Returns where to restart after a
    /// reset (the in-flight events become stale), and reloads the pending redrives.
    async fn on_nudge(&mut self) -> Result<Option<u64>, Stop> {
        let Some(member) = &self.member else {
            return Ok(None);
        };
        let (generation, position) = member.current();
        let mut restart = None;
        if generation != self.generation {
            self.generation = generation;
            let stale = self.window.reset();
            let next = start::retained(self.relay.log.as_ref(), &self.channel, position);
            tracing::info!(channel = %self.channel, group = ?self.group, sub = self.sub, next, stale, peer = %self.peer, "stream: group reset; delivery restarts");
            restart = Some(next);
        }
        self.load_redrives().await?;
        Ok(restart)
    }

    /// Reads the group's pending redrives from the log (those not already sent).
    async fn load_redrives(&mut self) -> Result<(), Refusal> {
        let Some(group) = self.group.clone() else {
            return Ok(());
        };
        let marked = self
            .relay
            .log
            .redrives(&self.channel, &group)
            .await
            .map_err(internal)?;
        self.window.queue_redrives(marked);
        Ok(())
    }

    /// Sends pending redrives while the window allows. Only offsets below `next` and not
    /// in flight: anything at or after `next` is about to be delivered normally anyway,
    /// and that delivery settles the redrive (see [`Delivery::settle_redrive_mark`]).
    async fn send_redrives(&mut self, next: u64) -> Result<(), Stop> {
        while let Some(offset) = self.window.take_redrive(next) {
            let held = self.reserve(1).await?;
            let event = self
                .read_chunk(offset, offset, 1, &held)
                .await?
                .into_iter()
                .next();
            let Some((_, record)) = event.filter(|(o, _)| *o == offset) else {
                // Removed by retention: nothing left to redeliver.
                if let Some(group) = &self.group {
                    self.relay
                        .log
                        .finish_redrive(&self.channel, group, offset, None)
                        .await
                        .map_err(internal)?;
                }
                continue;
            };
            self.relay
                .metrics
                .delivered
                .with_label_values(&[self.channel.as_str()])
                .inc();
            let event = ServerMsg::Event {
                sub: self.sub,
                offset,
                record,
            };
            self.send_events(vec![event.encode()], held).await?;
            self.window.redrive_sent(offset);
            tracing::info!(channel = %self.channel, group = ?self.group, sub = self.sub, offset, peer = %self.peer, "stream: dead letter redriven");
        }
        Ok(())
    }

    /// Reads a chunk from `from`, no further than offset `last`: at most `events` events
    /// and — but for a single larger event, which always comes alone — no more than
    /// `held`'s bytes, nor [`READ_CHUNK_BYTES`] (so the subscriptions of a connection
    /// take turns on its socket). The log bounds the bytes itself, in one read.
    async fn read_chunk(
        &self,
        from: u64,
        last: u64,
        events: usize,
        held: &Held,
    ) -> Result<Vec<(u64, Vec<u8>)>, Refusal> {
        let left = usize::try_from(last.saturating_sub(from)).map_or(usize::MAX, |n| n + 1);
        let count = events.min(left);
        if from > last || count == 0 {
            return Ok(Vec::new());
        }
        let max_bytes = held
            .bytes()
            .min(READ_CHUNK_BYTES)
            .saturating_sub(count.saturating_mul(EVENT_FRAME_OVERHEAD_BYTES))
            .max(1);
        let mut chunk = self
            .relay
            .log
            .read_raw(&self.channel, from, count, max_bytes)
            .await
            .map_err(internal)?;
        // Past a gap that retention left: not this chunk's.
        chunk.retain(|(offset, _)| *offset <= last);
        Ok(chunk)
    }

    async fn handle(&mut self, c: SubCtrl) -> Result<(), Refusal> {
        match c {
            SubCtrl::AckRange { first, last } => self.ack_range(first, last).await,
            SubCtrl::Ack(offset) => self.handle_one(offset, None).await,
            SubCtrl::Nack { offset, nacked } => self.handle_one(offset, Some(*nacked)).await,
        }
    }

    /// An ack of `first..=last`. In the common case (no reset, no redrive in play) the
    /// whole range is checked, settled and counted at once, and the cursor moves once;
    /// otherwise each offset goes through [`Delivery::handle_one`] like a single ack.
    async fn ack_range(&mut self, first: u64, last: u64) -> Result<(), Refusal> {
        match self.window.ack_range(first, last) {
            Err(NotInFlight(offset)) => Err(self.unknown_offset(offset)),
            Ok(RangeAck::OneByOne) => {
                // No longer than what is outstanding (checked by the window).
                for offset in first..=last {
                    self.handle_one(offset, None).await?;
                }
                Ok(())
            }
            Ok(RangeAck::Settled { count, prefix }) => {
                // Counted before the cursor moves, so the metric never trails the cursor.
                self.relay
                    .metrics
                    .acked
                    .with_label_values(&[self.channel.as_str()])
                    .inc_by(count as u64);
                self.advance_cursor(prefix);
                Ok(())
            }
        }
    }

    /// One ack (`nack` is `None`) or nack.
    async fn handle_one(&mut self, offset: u64, nack: Option<Nacked>) -> Result<(), Refusal> {
        match self.window.claim(offset) {
            // Sent before a reset: only the credit returns.
            Claim::Stale => return Ok(()),
            Claim::Redriven => return self.settle_redrive(offset, nack).await,
            Claim::Unknown => return Err(self.unknown_offset(offset)),
            Claim::Pending => {}
        }
        match nack {
            None => {
                // Counted before the cursor moves, so the metric never trails the cursor.
                self.relay
                    .metrics
                    .acked
                    .with_label_values(&[self.channel.as_str()])
                    .inc();
                self.settle_redrive_mark(offset, None).await?;
            }
            // A Read has no group: a nack only returns the credit.
            Some(nack) => {
                if let Some(group) = self.group.clone() {
                    self.dead_letter(&group, offset, nack).await?;
                }
            }
        }
        let prefix = self
            .window
            .settle(offset)
            .map_err(|NotInFlight(o)| self.unknown_offset(o))?;
        self.advance_cursor(prefix);
        Ok(())
    }

    /// Records the dead letter of a nacked event, durably before the cursor may pass it.
    async fn dead_letter(&mut self, group: &str, offset: u64, nack: Nacked) -> Result<(), Refusal> {
        let Nacked {
            reason,
            attempts,
            last_status,
        } = nack;
        let entry = DeadLetter {
            offset,
            reason: truncate(reason, MAX_DEAD_LETTER_REASON_BYTES),
            attempts,
            last_status,
            at_ms: crate::common::time::now_unix_ms(),
        };
        // Durable before the cursor may pass the event.
        if !self
            .settle_redrive_mark(offset, Some(entry.clone()))
            .await?
        {
            self.relay
                .log
                .add_dead_letter(&self.channel, group, entry)
                .await
                .map_err(internal)?;
        }
        self.relay
            .metrics
            .dead_lettered
            .with_label_values(&[self.channel.as_str()])
            .inc();
        tracing::info!(channel = %self.channel, group = %group, offset, attempts, last_status, "stream: event dead-lettered by the agent");
        Ok(())
    }

    /// A redriven event settled: an ack removes its dead letter, a nack records it again
    /// with the attempts added up. Either way the redrive mark goes.
    async fn settle_redrive(&mut self, offset: u64, nack: Option<Nacked>) -> Result<(), Refusal> {
        let Some(group) = self.group.clone() else {
            return Ok(());
        };
        let log = self.relay.log.clone();
        let again = match nack {
            None => {
                self.relay
                    .metrics
                    .acked
                    .with_label_values(&[self.channel.as_str()])
                    .inc();
                tracing::info!(channel = %self.channel, group = %group, offset, "stream: redriven event delivered; dead letter removed");
                None
            }
            Some(Nacked {
                reason,
                attempts,
                last_status,
            }) => {
                let before = log
                    .dead_letter(&self.channel, &group, offset)
                    .await
                    .map_err(internal)?
                    .map_or(0, |d| d.attempts);
                self.relay
                    .metrics
                    .dead_lettered
                    .with_label_values(&[self.channel.as_str()])
                    .inc();
                tracing::info!(channel = %self.channel, group = %group, offset, attempts, last_status, "stream: redriven event dead-lettered again");
                Some(DeadLetter {
                    offset,
                    reason: truncate(reason, MAX_DEAD_LETTER_REASON_BYTES),
                    attempts: before.saturating_add(attempts),
                    last_status,
                    at_ms: crate::common::time::now_unix_ms(),
                })
            }
        };
        log.finish_redrive(&self.channel, &group, offset, again)
            .await
            .map_err(internal)
    }

    /// A normal delivery of an event that is also pending redrive (after a reset moved
    /// the group back over it) settles the redrive too, so it is not sent twice. True
    /// when there was such a redrive (and `again`, if any, was recorded with it).
    async fn settle_redrive_mark(
        &mut self,
        offset: u64,
        again: Option<DeadLetter>,
    ) -> Result<bool, Refusal> {
        let Some(group) = &self.group else {
            return Ok(false);
        };
        if !self.window.unqueue_redrive(offset) {
            return Ok(false);
        }
        self.relay
            .log
            .finish_redrive(&self.channel, group, offset, again)
            .await
            .map_err(internal)?;
        Ok(true)
    }

    /// The settled prefix moved to `prefix`: moves the group's cursor there.
    fn advance_cursor(&self, prefix: Option<u64>) {
        if let (Some(acked), Some(member)) = (prefix, &self.member) {
            // Batched into the next group commit; if the committer's queue is full, a
            // write in the background once there is room (cursors only move forward, so
            // its order relative to later moves does not matter — only relative to a
            // reset, which the generation check settles).
            if member.advance(self.generation, acked) == Advance::Full {
                tokio::spawn(member.fence().advance_when_room(self.generation, acked));
            }
        }
    }

    fn unknown_offset(&self, offset: u64) -> Refusal {
        Refusal::new(
            codes::UNKNOWN_OFFSET,
            format!(
                "offset {offset} is not in flight on subscription {}; the subscription is closed",
                self.sub
            ),
        )
    }

    /// Handles the acks and nacks already queued, ignoring refusals: the end is decided.
    async fn drain(&mut self) {
        while let Ok(c) = self.ctrl.try_recv() {
            let _ = self.handle(c).await;
        }
    }

    async fn send(&self, msg: ServerMsg) -> Result<(), Stop> {
        if !self.live.load(Ordering::Acquire) {
            // Closed by the connection: stop sending, then handle the acks received.
            return Err(Stop::Quiet);
        }
        self.send_frames(vec![msg.encode()], None).await
    }

    /// Queues `Event` frames with the budget they hold, keeping only what they take. (A
    /// chunk of records larger than its bound keeps what it reserved: the bound is
    /// corrected for the next chunk.)
    async fn send_events(&self, frames: Vec<Vec<u8>>, mut held: Held) -> Result<(), Stop> {
        held.shrink_to(frames.iter().map(Vec::len).sum());
        self.send_frames(frames, Some(held)).await
    }

    /// Queues encoded frames for the writer as one item.
    async fn send_frames(&self, frames: Vec<Vec<u8>>, held: Option<Held>) -> Result<(), Stop> {
        if !self.live.load(Ordering::Acquire) {
            return Err(Stop::Quiet);
        }
        let frame = Box::new(SubFrame {
            frames,
            live: Some(self.live.clone()),
            held,
        });
        self.out.send(frame).await.map_err(|_| Stop::Quiet)
    }
}

/// Resolves with the lease's id once it is lost; never without a lease.
async fn lease_lost(lease: &mut Option<(u64, watch::Receiver<bool>)>) -> u64 {
    if let Some((id, lost)) = lease {
        if lost.wait_for(|l| *l).await.is_ok() {
            return *id;
        }
    }
    std::future::pending().await
}

/// Waits for the group's next nudge; false when there will be none (no group, or the
/// group's state is gone).
async fn nudged(nudge: &mut Option<watch::Receiver<u64>>) -> bool {
    match nudge {
        Some(rx) => rx.changed().await.is_ok(),
        None => std::future::pending().await,
    }
}

/// The subscriptions gauge, following this subscription's state.
struct StateGauge {
    gauges: prometheus::IntGaugeVec,
    state: Option<&'static str>,
}

impl StateGauge {
    fn set(&mut self, state: &'static str) {
        if let Some(old) = self.state.replace(state) {
            self.gauges.with_label_values(&[old]).dec();
        }
        self.gauges.with_label_values(&[state]).inc();
    }
}

impl Drop for StateGauge {
    fn drop(&mut self) {
        if let Some(old) = self.state.take() {
            self.gauges.with_label_values(&[old]).dec();
        }
    }
}

/// `s` cut to at most `max` bytes on a character boundary.
fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("abc".into(), 5), "abc");
        assert_eq!(truncate("abcdef".into(), 3), "abc");
        // "é" is two bytes: cutting inside it keeps the character whole or drops it.
        assert_eq!(truncate("aé".into(), 2), "a");
    }
}
