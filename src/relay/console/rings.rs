//! In-process ring buffers for the console's charts: per channel, the last
//! [`SECOND_BUCKETS`] seconds and the last [`MINUTE_BUCKETS`] minutes of ingest,
//! delivery (acknowledged events), delivery latency and lag. Fixed size, so memory is
//! bounded by the number of configured channels; nothing outside the relay is needed.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use serde::Serialize;

/// Fine buckets kept: one per second.
pub const SECOND_BUCKETS: usize = 120;
/// Coarse buckets kept: one per minute, an hour's worth.
pub const MINUTE_BUCKETS: usize = 60;

/// What happened on a channel during one bucket.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Bucket {
    /// Bucket start, unix seconds.
    pub t: u64,
    /// Events appended.
    pub ingested: u64,
    /// Events acknowledged by agents (all groups).
    pub delivered: u64,
    /// Sum of delivery latencies sampled (received → acknowledged), ms.
    pub latency_ms_sum: u64,
    /// Latency samples in `latency_ms_sum`.
    pub latency_count: u64,
    /// Largest lag (head − cursor, over groups) seen.
    pub lag: u64,
}

impl Bucket {
    fn merge(&mut self, s: &Bucket) {
        self.ingested += s.ingested;
        self.delivered += s.delivered;
        self.latency_ms_sum += s.latency_ms_sum;
        self.latency_count += s.latency_count;
        self.lag = self.lag.max(s.lag);
    }
}

/// A channel's two rings.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Series {
    /// One bucket per second, oldest first.
    pub seconds: VecDeque<Bucket>,
    /// One bucket per minute, oldest first.
    pub minutes: VecDeque<Bucket>,
}

impl Series {
    fn add(&mut self, sample: Bucket) {
        push(&mut self.seconds, sample, 1, SECOND_BUCKETS);
        push(&mut self.minutes, sample, 60, MINUTE_BUCKETS);
    }
}

/// Adds `s` to the bucket of width `width_secs` it falls in, opening one if needed.
fn push(ring: &mut VecDeque<Bucket>, s: Bucket, width_secs: u64, cap: usize) {
    let start = s.t - s.t % width_secs;
    match ring.back_mut() {
        Some(b) if b.t == start => b.merge(&s),
        _ => {
            ring.push_back(Bucket { t: start, ..s });
            while ring.len() > cap {
                ring.pop_front();
            }
        }
    }
}

/// The rings of every channel.
#[derive(Debug, Default)]
pub struct Rings {
    channels: Mutex<BTreeMap<String, Series>>,
}

impl Rings {
    /// Records one sample (a second's worth) for `channel`.
    pub fn record(&self, channel: &str, sample: Bucket) {
        let mut channels = self.lock();
        // Known channels first: every channel records once a second.
        match channels.get_mut(channel) {
            Some(series) => series.add(sample),
            None => channels.entry(channel.to_string()).or_default().add(sample),
        }
    }

    /// A copy of `channel`'s rings (empty when nothing was recorded yet).
    pub fn series(&self, channel: &str) -> Series {
        self.lock().get(channel).cloned().unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Series>> {
        // Pushes cannot panic halfway; a poisoned map is still consistent.
        self.channels.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_fill_seconds_and_merge_into_minutes() {
        let r = Rings::default();
        for t in 0..200u64 {
            r.record(
                "c",
                Bucket {
                    t: 6000 + t,
                    ingested: 1,
                    lag: t,
                    ..Bucket::default()
                },
            );
        }
        let s = r.series("c");
        assert_eq!(s.seconds.len(), SECOND_BUCKETS);
        assert_eq!(s.seconds.back().map(|b| b.t), Some(6199));
        assert_eq!(s.minutes.len(), 4);
        assert_eq!(s.minutes[0].ingested, 60);
        assert_eq!(s.minutes[0].lag, 59);
        assert_eq!(s.minutes[3].ingested, 20);
        assert!(r.series("other").seconds.is_empty());
    }
}
