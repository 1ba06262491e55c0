//! The newest records this node appended, per channel, in memory.
//!
//! A live subscription reads each event right after its append was acknowledged; on
//! JetStream every such read was a request to the stream leader (one round trip per
//! delivered batch, on R3 through a loaded cluster). The writer already holds the
//! exact stored bytes of each record it appended, so it keeps the newest ones here
//! and reads take them from memory. Only one contiguous run of offsets is kept per
//! channel: when another node's append falls in between, the run starts again, so
//! everything here is exactly what the stream holds at that offset (the publish ack
//! said so). Retention never removes what a read asks for here, since reads start at
//! the first retained offset.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use bytes::Bytes;

/// Records kept per channel.
const RECENT_EVENTS: usize = 256;
/// Bytes kept per channel (the run is cut from its old end past this).
const RECENT_BYTES: usize = 1024 * 1024;
/// Bytes kept across all channels: past it, the runs written longest ago go whole
/// (their subscribers are caught up, or read from the stream as before), so memory does
/// not grow with the number of channels.
const RECENT_TOTAL_BYTES: usize = 16 * 1024 * 1024;

#[derive(Default)]
struct Run {
    records: VecDeque<(u64, Bytes)>,
    bytes: usize,
    /// When the run was last written, on [`Runs::clock`].
    written: u64,
}

#[derive(Default)]
struct Runs {
    by_channel: HashMap<String, Run>,
    /// Bytes in all runs.
    total: usize,
    /// Counts writes; orders runs by their last one.
    clock: u64,
}

/// Each channel's newest contiguous run of this node's acknowledged records.
#[derive(Default)]
pub struct Recent {
    runs: Mutex<Runs>,
}

impl Recent {
    /// `offset` of `channel` was acknowledged as stored with `bytes`.
    pub fn put(&self, channel: &str, offset: u64, bytes: Bytes) {
        let mut guard = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        let runs = &mut *guard;
        runs.clock += 1;
        let run = runs.by_channel.entry(channel.to_string()).or_default();
        run.written = runs.clock;
        let before = run.bytes;
        if run
            .records
            .back()
            .is_some_and(|(last, _)| last + 1 != offset)
        {
            run.records.clear();
            run.bytes = 0;
        }
        run.bytes += bytes.len();
        run.records.push_back((offset, bytes));
        while run.records.len() > RECENT_EVENTS
            || (run.bytes > RECENT_BYTES && run.records.len() > 1)
        {
            if let Some((_, b)) = run.records.pop_front() {
                run.bytes -= b.len();
            }
        }
        runs.total = runs.total - before + run.bytes;
        runs.evict_beyond(RECENT_TOTAL_BYTES, channel);
    }

    /// The kept records with offsets in `from..=to`, in order (one contiguous run).
    pub fn slice(&self, channel: &str, from: u64, to: u64) -> Vec<(u64, Bytes)> {
        let runs = self.runs.lock().unwrap_or_else(|p| p.into_inner());
        let Some(run) = runs.by_channel.get(channel) else {
            return Vec::new();
        };
        let Some(&(first, _)) = run.records.front() else {
            return Vec::new();
        };
        let skip = usize::try_from(from.saturating_sub(first)).unwrap_or(usize::MAX);
        run.records
            .iter()
            .skip(skip)
            .take_while(|(o, _)| *o <= to)
            .cloned()
            .collect()
    }
}

impl Runs {
    /// Drops whole runs, written longest ago first, until `total` is within `cap`;
    /// `keep`'s run (just written, and within its own bound) stays.
    fn evict_beyond(&mut self, cap: usize, keep: &str) {
        while self.total > cap {
            let oldest = self
                .by_channel
                .iter()
                .filter(|(c, _)| c.as_str() != keep)
                .min_by_key(|(_, r)| r.written)
                .map(|(c, _)| c.clone());
            let Some(run) = oldest.and_then(|c| self.by_channel.remove(&c)) else {
                return;
            };
            self.total -= run.bytes;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets(v: &[(u64, Bytes)]) -> Vec<u64> {
        v.iter().map(|(o, _)| *o).collect()
    }

    #[test]
    fn a_run_is_contiguous_bounded_and_restarts_after_a_gap() {
        let r = Recent::default();
        for o in 1..=300 {
            r.put("c", o, Bytes::from(o.to_string()));
        }
        assert_eq!(
            offsets(&r.slice("c", 1, 300)),
            (45..=300).collect::<Vec<_>>()
        );
        assert_eq!(offsets(&r.slice("c", 100, 102)), vec![100, 101, 102]);
        assert_eq!(r.slice("c", 100, 100)[0].1, Bytes::from("100"));
        assert!(r.slice("c", 301, 400).is_empty());
        assert!(r.slice("other", 1, 10).is_empty());
        // Another node stored 301: this node's 302 starts a new run.
        r.put("c", 302, Bytes::from("302"));
        assert_eq!(offsets(&r.slice("c", 1, 400)), vec![302]);
        r.put("c", 303, Bytes::from(vec![0u8; RECENT_BYTES]));
        r.put("c", 304, Bytes::from("304"));
        assert_eq!(
            offsets(&r.slice("c", 1, 400)),
            vec![304],
            "bounded in bytes"
        );
    }

    #[test]
    fn all_channels_together_are_bounded_dropping_the_runs_written_longest_ago() {
        let r = Recent::default();
        let half = || Bytes::from(vec![0u8; RECENT_BYTES / 2]);
        // Twice what fits: c0..c31 go, c32..c63 stay.
        let fit = 2 * RECENT_TOTAL_BYTES / RECENT_BYTES;
        for c in 0..2 * fit {
            r.put(&format!("c{c}"), 1, half());
        }
        let total = r.runs.lock().expect("lock").total;
        assert_eq!(total, RECENT_TOTAL_BYTES, "every run kept fits exactly");
        assert!(
            r.slice("c0", 1, 1).is_empty(),
            "written first, dropped first"
        );
        assert!(r.slice(&format!("c{}", fit - 1), 1, 1).is_empty());
        assert_eq!(offsets(&r.slice(&format!("c{fit}"), 1, 1)), vec![1]);
        // Written again, an old run outlives the runs written since.
        r.put(&format!("c{fit}"), 2, half());
        r.put("new", 1, half());
        assert_eq!(offsets(&r.slice(&format!("c{fit}"), 1, 2)), vec![1, 2]);
        assert!(r.slice(&format!("c{}", fit + 1), 1, 1).is_empty());
        assert_eq!(r.runs.lock().expect("lock").total, RECENT_TOTAL_BYTES);
    }
}
