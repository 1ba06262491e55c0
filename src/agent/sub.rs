//! A subscription as the agent keeps it across reconnects: what it reads, where a
//! reconnect resumes, and what it has done so far. Nothing here touches the socket;
//! the session ([`crate::agent::session`]) calls in as frames arrive.

use super::sink::Handler;
use crate::common::event::Record;
use crate::common::protocol::{ClientMsg, Start};

/// What a subscription is.
#[derive(Debug, Clone)]
pub enum SubKind {
    /// A consumer group member: the relay keeps the cursor.
    Group {
        /// The consumer group's name.
        group: String,
    },
    /// A group-less read (replay, tail): moves no cursor and ends with `End`.
    Read {
        /// The last offset to read (`--to`), if any.
        to: Option<u64>,
        /// Keep reading live events after the stored ones (`tail --follow`).
        follow: bool,
    },
}

/// One subscription and its progress, kept across reconnects.
#[derive(Debug, Clone)]
pub struct Sub {
    /// The channel.
    pub channel: String,
    /// Group member or group-less read.
    pub kind: SubKind,
    /// Where to (re)start; updated as events complete so that a reconnect resumes.
    pub start: Start,
    /// The window asked of the relay.
    pub window: u32,
    /// Deliveries run at once (at most the window).
    pub concurrency: u32,
    /// Where its events go: a local service, or stdout.
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

/// The protocol's subscription id of the subscription at `index` (ids start at 1).
pub fn sub_id(index: usize) -> u32 {
    u32::try_from(index + 1).unwrap_or(u32::MAX)
}

/// The index of the subscription with protocol id `sub`, among `count`; None for an id
/// this agent never used.
pub fn sub_index(sub: u32, count: usize) -> Option<usize> {
    let i = usize::try_from(sub).ok()?.checked_sub(1)?;
    (i < count).then_some(i)
}

impl Sub {
    /// The consumer group, for a group member.
    pub fn group(&self) -> Option<&str> {
        match &self.kind {
            SubKind::Group { group } => Some(group),
            SubKind::Read { .. } => None,
        }
    }

    /// The frame that (re)opens this subscription under protocol id `sub`.
    pub fn open_msg(&self, sub: u32) -> ClientMsg {
        match &self.kind {
            SubKind::Group { group } => ClientMsg::Subscribe {
                sub,
                channel: self.channel.clone(),
                group: group.clone(),
                start: self.start,
                window: self.window,
            },
            SubKind::Read { to, follow } => ClientMsg::Read {
                sub,
                channel: self.channel.clone(),
                start: self.start,
                to: *to,
                follow: *follow,
                window: self.window,
            },
        }
    }

    /// Takes in the relay's `Subscribed`: deliveries at once are capped by the granted
    /// `window`, and what was relative becomes absolute so that a reconnect resumes
    /// where this connection started — "latest" becomes `next` (a group without a
    /// cursor would otherwise re-evaluate it and skip what arrived meanwhile), and a
    /// read without `to` or `--follow` ends at the `head` of now.
    pub fn subscribed(&mut self, next: u64, head: u64, window: u32) {
        self.concurrency = self.concurrency.min(window).max(1);
        if let SubKind::Read { to, follow } = &mut self.kind {
            if to.is_none() && !*follow {
                *to = Some(head);
            }
            if let (Some(p), Some(last), false) = (&self.progress, *to, *follow) {
                p.set_total(p.done() + (last.min(head) + 1).saturating_sub(next));
            }
        }
        if self.start == Start::Latest {
            self.start = Start::Offset(next);
        }
    }

    /// Records that `offset` is done: a read's reconnect starts after it, the progress
    /// display and the limit count it.
    pub fn advance(&mut self, offset: u64) {
        if let Some(p) = &self.progress {
            p.add(1);
        }
        if matches!(self.kind, SubKind::Read { .. }) {
            self.start = Start::Offset(offset.saturating_add(1));
        }
        if let Some(left) = &mut self.limit {
            *left = left.saturating_sub(1);
            if *left == 0 {
                self.finished = true;
            }
        }
    }

    /// Whether a read with `until_ms` reached an event received after it.
    pub fn past_until(&self, record: &[u8]) -> bool {
        self.until_ms
            .is_some_and(|until| Record::decode(record).is_ok_and(|r| r.received_at_ms > until))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(kind: SubKind, start: Start) -> Sub {
        Sub {
            channel: "c".into(),
            kind,
            start,
            window: 8,
            concurrency: 4,
            handler: Handler::Print,
            limit: None,
            delivered: 0,
            failed: 0,
            finished: false,
            until_ms: None,
            progress: None,
        }
    }

    fn read(to: Option<u64>, follow: bool) -> SubKind {
        SubKind::Read { to, follow }
    }

    #[test]
    fn ids_start_at_one_and_unknown_ids_are_none() {
        assert_eq!(sub_id(0), 1);
        assert_eq!(sub_index(1, 2), Some(0));
        assert_eq!(sub_index(2, 2), Some(1));
        assert_eq!(sub_index(0, 2), None);
        assert_eq!(sub_index(3, 2), None);
    }

    #[test]
    fn subscribed_pins_latest_and_a_reads_end() {
        let mut s = sub(read(None, false), Start::Latest);
        s.subscribed(7, 20, 2);
        assert_eq!(s.start, Start::Offset(7));
        assert!(matches!(s.kind, SubKind::Read { to: Some(20), .. }));
        assert_eq!(s.concurrency, 2, "capped by the granted window");
        // A following read has no end; an explicit end is kept.
        let mut s = sub(read(None, true), Start::Offset(3));
        s.subscribed(3, 20, 8);
        assert!(matches!(s.kind, SubKind::Read { to: None, .. }));
        assert_eq!((s.start, s.concurrency), (Start::Offset(3), 4));
        let mut s = sub(read(Some(5), false), Start::Earliest);
        s.subscribed(1, 20, 0);
        assert!(matches!(s.kind, SubKind::Read { to: Some(5), .. }));
        assert_eq!((s.start, s.concurrency), (Start::Earliest, 1));
        let mut g = sub(SubKind::Group { group: "g".into() }, Start::Latest);
        g.subscribed(42, 41, 8);
        assert_eq!(g.start, Start::Offset(42));
    }

    #[test]
    fn advance_moves_a_reads_start_and_counts_the_limit() {
        let mut s = sub(read(None, false), Start::Offset(1));
        s.limit = Some(2);
        s.advance(1);
        assert_eq!(
            (s.start, s.limit, s.finished),
            (Start::Offset(2), Some(1), false)
        );
        s.advance(2);
        assert_eq!(
            (s.start, s.limit, s.finished),
            (Start::Offset(3), Some(0), true)
        );
        // A group's start is the relay's cursor, not ours.
        let mut g = sub(SubKind::Group { group: "g".into() }, Start::Committed);
        g.advance(9);
        assert_eq!(g.start, Start::Committed);
    }

    #[test]
    fn open_msg_reopens_where_the_sub_stands() {
        let mut s = sub(read(Some(9), false), Start::Offset(4));
        s.advance(4);
        assert_eq!(
            s.open_msg(3),
            ClientMsg::Read {
                sub: 3,
                channel: "c".into(),
                start: Start::Offset(5),
                to: Some(9),
                follow: false,
                window: 8
            }
        );
    }

    #[test]
    fn past_until_compares_received_at() {
        let record = |at: u64| {
            Record {
                id: "id".into(),
                channel: "c".into(),
                offset: 1,
                received_at_ms: at,
                method: "POST".into(),
                path: String::new(),
                query: String::new(),
                headers: Vec::new(),
                body: Vec::new(),
                peer: "p".into(),
                scheme: "none".into(),
            }
            .encode()
        };
        let mut s = sub(read(None, false), Start::Offset(1));
        assert!(!s.past_until(&record(u64::MAX)), "no --until");
        s.until_ms = Some(100);
        assert!(!s.past_until(&record(100)));
        assert!(s.past_until(&record(101)));
        assert!(
            !s.past_until(b"garbage"),
            "undecodable: delivered (and failed) later"
        );
    }
}
