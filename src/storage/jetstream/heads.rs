//! Per channel, in memory: the last acknowledged offset (with its watchers) and the
//! first retained one, which the synchronous trait methods answer from.
//!
//! Loaded from stream info, and kept current by this node's own acknowledged appends
//! and purges, by each channel's follower (every node's appends, see `follow`) and by
//! the retention bucket's watch (every node's purges, see `firsts`). Both only ever
//! move forward.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;

struct Chan {
    head: watch::Sender<u64>,
    first: u64,
    exists: bool,
    /// The largest received-at a follower saw (unix ms).
    last_ms: u64,
}

impl Chan {
    fn new() -> Chan {
        Chan {
            head: watch::channel(0).0,
            first: 1,
            exists: false,
            last_ms: 0,
        }
    }
}

/// Heads and first retained offsets of every channel this node knows.
#[derive(Default)]
pub struct Heads {
    chans: Mutex<HashMap<String, Chan>>,
}

impl Heads {
    fn with<T>(&self, channel: &str, f: impl FnOnce(&mut Chan) -> T) -> T {
        let mut chans = self.chans.lock().unwrap_or_else(|p| p.into_inner());
        f(chans.entry(channel.to_string()).or_insert_with(Chan::new))
    }

    /// A stream found at open, with its last and first sequence.
    pub fn load(&self, channel: &str, last: u64, first: u64) {
        self.with(channel, |c| {
            // A follower creates the streams it follows: an empty one is no channel yet.
            c.exists |= last > 0;
            c.first = c.first.max(first);
            c.head.send_if_modified(|h| bump(h, last));
        });
    }

    /// The last acknowledged offset (0 when none).
    pub fn head(&self, channel: &str) -> u64 {
        self.with(channel, |c| *c.head.borrow())
    }

    /// A receiver of the head.
    pub fn watch(&self, channel: &str) -> watch::Receiver<u64> {
        self.with(channel, |c| c.head.subscribe())
    }

    /// The head moves to `offset` (never backwards) once it is acknowledged.
    pub fn acked(&self, channel: &str, offset: u64) {
        self.with(channel, |c| {
            c.exists |= offset > 0;
            c.head.send_if_modified(|h| bump(h, offset));
        });
    }

    /// A follower saw `offset`, received at `ms` by whichever node stored it.
    pub fn seen(&self, channel: &str, offset: u64, ms: u64) {
        self.with(channel, |c| c.last_ms = c.last_ms.max(ms));
        self.acked(channel, offset);
    }

    /// The largest received-at the follower saw.
    pub fn last_ms(&self, channel: &str) -> u64 {
        self.with(channel, |c| c.last_ms)
    }

    /// The first retained offset; `head + 1` when the channel holds no events.
    pub fn earliest(&self, channel: &str) -> u64 {
        self.with(channel, |c| c.first.max(1).min(*c.head.borrow() + 1))
    }

    /// Retention removed everything below `first`.
    pub fn set_first(&self, channel: &str, first: u64) {
        self.with(channel, |c| c.first = c.first.max(first));
    }

    /// Channels that have ever stored an event.
    pub fn channels(&self) -> Vec<String> {
        let chans = self.chans.lock().unwrap_or_else(|p| p.into_inner());
        chans
            .iter()
            .filter(|(_, c)| c.exists)
            .map(|(n, _)| n.clone())
            .collect()
    }
}

fn bump(head: &mut u64, to: u64) -> bool {
    let moved = to > *head;
    *head = (*head).max(to);
    moved
}
