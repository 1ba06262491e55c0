//! The delivery loop of one subscription: window, acks, cursor.
//!
//! Each subscription is its own task, owning its state, so a slow or stuck
//! subscription never blocks the connection's reader (heartbeats, other subscriptions,
//! shutdown). The loop:
//!
//! 1. reads the log in chunks from `next` up to the durable head and sends `Event`s while
//!    fewer than `window` events are *outstanding* — sent and not yet covered by the
//!    contiguous acknowledged prefix. Counting the span, not just the unacked ones, keeps
//!    the bookkeeping (and so memory) bounded by the window even when one event is
//!    stuck and later ones are acked;
//! 2. sends `CaughtUp` when everything durable has been sent (again only after it fell
//!    behind, i.e. the window stopped it while events were waiting);
//! 3. waits for an ack, a nack, or the log's durable head to move (`EventLog::watch`,
//!    which moves only after a flush: readers never see an event that is not on disk).
//!
//! Acks may come out of order; the group's cursor moves only over the contiguous
//! acknowledged prefix, so a crash anywhere redelivers at most the window.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::hub::{Joined, Member};
use super::start::internal;
use super::writer::SubFrame;
use super::Refusal;
use crate::log::DeadLetter;
use crate::protocol::{codes, ServerMsg};
use crate::server::Relay;

/// Most events read from the log at once (bounded further by the free window).
pub(crate) const READ_CHUNK_EVENTS: usize = 64;

/// Rough byte budget of one read chunk: with large events, fewer are read at once, so a
/// subscription holds about this much in memory, not 64 full-size bodies.
pub(crate) const READ_CHUNK_BYTES: usize = 1024 * 1024;

/// Assumed event size before the first chunk tells the real one.
const INITIAL_EVENT_BYTES: usize = 4 * 1024;

/// Longest dead-letter reason stored; the rest is cut (the agent chooses the text).
pub(crate) const MAX_DEAD_LETTER_REASON_BYTES: usize = 1024;

const STATE_ACTIVE: &str = "active";
const STATE_STANDBY: &str = "standby";

/// What the connection forwards to a subscription.
pub(crate) enum SubCtrl {
    Ack(u64),
    Nack {
        offset: u64,
        reason: String,
        attempts: u32,
        last_status: Option<u16>,
    },
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
    pub out: mpsc::Sender<SubFrame>,
    /// Cleared when the subscription ends; the writer drops its queued frames then.
    pub live: Arc<AtomicBool>,
    /// The agent's address, for logs.
    pub peer: String,
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
pub(crate) async fn run(s: Subscription) {
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
    } = s;
    let gauge = StateGauge {
        gauges: relay.metrics.subscriptions.clone(),
        state: None,
    };
    let mut d = Delivery {
        relay,
        sub,
        channel,
        window: window.max(1) as usize,
        ctrl,
        out: out.clone(),
        live: live.clone(),
        peer,
        group: None,
        member: None,
        gauge,
        inflight: VecDeque::new(),
    };
    let outcome = match kind {
        Kind::Group {
            group,
            member,
            joined,
        } => {
            d.group = Some(group);
            d.member = Some(member);
            d.run_group(joined).await
        }
        Kind::Read { next, stop } => d.run_read(next, stop).await,
    };
    // Acks that arrived before the end still count (an agent may ack, then close).
    d.drain().await;
    let why = match &outcome {
        Err(Stop::Refused(r)) => r.code,
        _ => "closed",
    };
    match &d.group {
        Some(group) => {
            tracing::info!(channel = %d.channel, group = %group, sub, reason = why, peer = %d.peer, "stream: subscription ended")
        }
        None => {
            tracing::debug!(channel = %d.channel, sub, reason = why, peer = %d.peer, "stream: read ended")
        }
    }
    // Frames still queued are dropped before the group may promote a standby; and the
    // group is left before the agent is told, so that a resubscription sent in answer
    // to the Error finds it free.
    let was_live = live.swap(false, Ordering::AcqRel);
    if let Some(member) = d.member.take() {
        member.leave();
    }
    drop(d);
    if let (Err(Stop::Refused(r)), true) = (outcome, was_live) {
        let frame = SubFrame {
            bytes: r.frame(Some(sub)).encode(),
            live: None,
        };
        let _ = out.send(frame).await;
    }
}

struct Delivery {
    relay: Arc<Relay>,
    sub: u32,
    channel: String,
    window: usize,
    ctrl: mpsc::Receiver<SubCtrl>,
    out: mpsc::Sender<SubFrame>,
    live: Arc<AtomicBool>,
    peer: String,
    group: Option<String>,
    member: Option<Member>,
    gauge: StateGauge,
    /// Sent events not yet covered by the acknowledged prefix, in offset order, each with
    /// whether it was acked (or nacked) already.
    inflight: VecDeque<(u64, bool)>,
}

impl Delivery {
    async fn run_group(&mut self, joined: Joined) -> Result<(), Stop> {
        let head = self.relay.log.head(&self.channel);
        let group = self.group.clone().unwrap_or_default();
        let next = match joined {
            Joined::Active { next } => {
                self.send(self.subscribed(next, head, true)).await?;
                self.gauge.set(STATE_ACTIVE);
                tracing::info!(channel = %self.channel, group = %group, sub = self.sub, next, peer = %self.peer, "stream: subscribed (active)");
                next
            }
            Joined::Standby { position, promoted } => {
                self.send(self.subscribed(position, head, false)).await?;
                self.gauge.set(STATE_STANDBY);
                tracing::info!(channel = %self.channel, group = %group, sub = self.sub, peer = %self.peer, "stream: subscribed (standby)");
                let next = self.wait_promotion(promoted).await?;
                self.send(ServerMsg::Active {
                    sub: self.sub,
                    next,
                })
                .await?;
                self.gauge.set(STATE_ACTIVE);
                tracing::info!(channel = %self.channel, group = %group, sub = self.sub, next, peer = %self.peer, "stream: standby promoted to active");
                next
            }
        };
        self.deliver(next, None).await
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
            window: self.window as u32,
            active,
        }
    }

    /// A standby waits, holding nothing in flight, until its group promotes it.
    async fn wait_promotion(&mut self, mut promoted: oneshot::Receiver<u64>) -> Result<u64, Stop> {
        tokio::select! {
            next = &mut promoted => next.map_err(|_| {
                Stop::Refused(Refusal::new(codes::INTERNAL, "the consumer group was lost; subscribe again"))
            }),
            c = self.ctrl.recv() => match c {
                None => Err(Stop::Quiet),
                Some(SubCtrl::Ack(offset)) | Some(SubCtrl::Nack { offset, .. }) => {
                    Err(Stop::Refused(self.unknown_offset(offset)))
                }
            },
        }
    }

    /// Sends from `next` while the window allows; ends after `stop` if given.
    async fn deliver(&mut self, mut next: u64, stop: Option<u64>) -> Result<(), Stop> {
        let mut head_rx = self.relay.log.watch(&self.channel);
        // Starts behind, so the first catch-up is announced even on an empty channel.
        let mut behind = true;
        let mut ended = false;
        let mut event_bytes = INITIAL_EVENT_BYTES;
        loop {
            let head = *head_rx.borrow_and_update();
            if !ended {
                let limit = stop.map_or(head, |s| s.min(head));
                while self.inflight.len() < self.window && next <= limit {
                    let want = (READ_CHUNK_BYTES / event_bytes)
                        .clamp(1, READ_CHUNK_EVENTS)
                        .min(self.window - self.inflight.len());
                    let chunk = self.read_chunk(next, want).await?;
                    if let Some(total) = chunk.iter().map(|(_, r)| r.len()).reduce(|a, b| a + b) {
                        event_bytes = (total / chunk.len()).max(1);
                    }
                    if chunk.is_empty() {
                        // Everything left up to the limit was removed by retention.
                        next = limit + 1;
                    }
                    for (offset, record) in chunk {
                        if offset > limit {
                            next = limit + 1;
                            break;
                        }
                        // Counted first: once queued, the agent may see it (and ack it) at once.
                        self.relay
                            .metrics
                            .delivered
                            .with_label_values(&[self.channel.as_str()])
                            .inc();
                        self.send(ServerMsg::Event {
                            sub: self.sub,
                            offset,
                            record,
                        })
                        .await?;
                        self.inflight.push_back((offset, false));
                        next = offset + 1;
                    }
                }
                if next <= limit {
                    behind = true;
                } else if let Some(last) = stop.filter(|&s| next > s) {
                    self.send(ServerMsg::End {
                        sub: self.sub,
                        last,
                    })
                    .await?;
                    ended = true;
                } else if behind {
                    self.send(ServerMsg::CaughtUp {
                        sub: self.sub,
                        head,
                    })
                    .await?;
                    behind = false;
                }
            }
            if ended && self.inflight.is_empty() {
                return Err(Stop::Quiet);
            }
            let wait_head = !ended && self.inflight.len() < self.window && next > head;
            tokio::select! {
                c = self.ctrl.recv() => match c {
                    None => return Err(Stop::Quiet),
                    Some(c) => self.handle(c).await?,
                },
                changed = head_rx.changed(), if wait_head => {
                    if changed.is_err() {
                        return Err(Stop::Refused(Refusal::new(codes::INTERNAL, "the relay's log closed")));
                    }
                }
            }
        }
    }

    async fn read_chunk(&self, from: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, Refusal> {
        let log = self.relay.log.clone();
        let channel = self.channel.clone();
        // sled may touch the disk for older events; keep that off the async workers.
        match tokio::task::spawn_blocking(move || log.read_raw(&channel, from, limit)).await {
            Ok(Ok(events)) => Ok(events),
            Ok(Err(e)) => Err(internal(e)),
            Err(_) => Err(Refusal::new(
                codes::INTERNAL,
                "the log read was interrupted",
            )),
        }
    }

    async fn handle(&mut self, c: SubCtrl) -> Result<(), Refusal> {
        match c {
            SubCtrl::Ack(offset) => {
                if !self.pending(offset) {
                    return Err(self.unknown_offset(offset));
                }
                // Counted before the cursor moves, so the metric never trails the cursor.
                self.relay
                    .metrics
                    .acked
                    .with_label_values(&[self.channel.as_str()])
                    .inc();
                self.settle(offset)?;
            }
            SubCtrl::Nack {
                offset,
                reason,
                attempts,
                last_status,
            } => {
                if !self.pending(offset) {
                    return Err(self.unknown_offset(offset));
                }
                // A Read has no group: a nack only returns the credit.
                if let Some(group) = &self.group {
                    let entry = DeadLetter {
                        offset,
                        reason: truncate(reason, MAX_DEAD_LETTER_REASON_BYTES),
                        attempts,
                        last_status,
                        at_ms: crate::now_unix_ms(),
                    };
                    // Durable before the cursor may pass the event.
                    self.relay
                        .log
                        .add_dead_letter(&self.channel, group, entry)
                        .await
                        .map_err(internal)?;
                    self.relay
                        .metrics
                        .dead_lettered
                        .with_label_values(&[self.channel.as_str()])
                        .inc();
                    tracing::info!(channel = %self.channel, group = %group, offset, attempts, last_status, "stream: event dead-lettered by the agent");
                }
                self.settle(offset)?;
            }
        }
        Ok(())
    }

    /// Whether `offset` is in flight and not yet settled.
    fn pending(&self, offset: u64) -> bool {
        self.inflight
            .binary_search_by_key(&offset, |e| e.0)
            .ok()
            .and_then(|i| self.inflight.get(i))
            .is_some_and(|e| !e.1)
    }

    /// Marks `offset` done and moves the cursor over the contiguous done prefix.
    fn settle(&mut self, offset: u64) -> Result<(), Refusal> {
        let slot = self
            .inflight
            .binary_search_by_key(&offset, |e| e.0)
            .ok()
            .and_then(|i| self.inflight.get_mut(i))
            .filter(|e| !e.1);
        match slot {
            Some(e) => e.1 = true,
            None => return Err(self.unknown_offset(offset)),
        }
        let mut prefix = None;
        while let Some(&(o, true)) = self.inflight.front() {
            prefix = Some(o);
            self.inflight.pop_front();
        }
        if let (Some(acked), Some(group), Some(member)) = (prefix, &self.group, &self.member) {
            member.advanced(acked);
            // Batched into the next group commit; if the committer's queue is full, a
            // durable write in the background (cursors only move forward, so its order
            // relative to later moves does not matter).
            if self
                .relay
                .log
                .advance_cursor(&self.channel, group, acked)
                .is_err()
            {
                let log = self.relay.log.clone();
                let (channel, group) = (self.channel.clone(), group.clone());
                tokio::spawn(async move {
                    if let Err(e) = log.set_cursor(&channel, &group, acked, false).await {
                        tracing::warn!(channel = %channel, group = %group, error = %e, "stream: cursor write failed");
                    }
                });
            }
        }
        Ok(())
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
        let frame = SubFrame {
            bytes: msg.encode(),
            live: Some(self.live.clone()),
        };
        self.out.send(frame).await.map_err(|_| Stop::Quiet)
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
