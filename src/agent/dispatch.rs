//! Which local service an event goes to: the routes of one subscription.
//!
//! A channel and consumer group can have only one active member per connection, so
//! several `[[route]]`s of one channel share one subscription, and each event goes to
//! the first route whose filters all match ([`crate::agent::filter`]). An event no
//! route takes is acknowledged without being delivered (the group's cursor moves past
//! it) and counted.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::agent::filter::{all_match, Candidate, Filter};
use crate::agent::forward::Forwarder;
use crate::agent::metrics::ChannelMetrics;
use crate::agent::pacer::Pacer;
use crate::common::event::Record;

/// One route of a subscription: its filters, its local service, its pacing.
#[derive(Debug)]
pub struct RouteTarget {
    /// All must match for the route to take an event.
    pub filters: Vec<Filter>,
    /// Where the route's events go.
    pub fwd: Arc<Forwarder>,
    /// `--max-rate`, if any.
    pub pacer: Option<Pacer>,
}

/// The routes of one subscription, in order.
#[derive(Debug)]
pub struct Dispatch {
    targets: Vec<RouteTarget>,
    /// Log each delivery at info (`--quiet` turns it off; replay never does).
    pub log_deliveries: bool,
    /// Events no route took (acknowledged without delivery), since the start.
    filtered: AtomicU64,
    /// The channel's metrics (agent runs; replay has none).
    metrics: Option<ChannelMetrics>,
}

impl Dispatch {
    /// Routes tried in order.
    pub fn new(targets: Vec<RouteTarget>, log_deliveries: bool) -> Dispatch {
        Dispatch {
            targets,
            log_deliveries,
            filtered: AtomicU64::new(0),
            metrics: None,
        }
    }

    /// The same routes, counting into `metrics`.
    pub fn with_metrics(mut self, metrics: Option<ChannelMetrics>) -> Dispatch {
        self.metrics = metrics;
        self
    }

    /// The channel's metrics, if this run keeps them.
    pub fn metrics(&self) -> Option<&ChannelMetrics> {
        self.metrics.as_ref()
    }

    /// Every event to `fwd`, without a per-delivery log line (replay).
    pub fn single(fwd: Forwarder) -> Dispatch {
        Dispatch::new(
            vec![RouteTarget {
                filters: Vec::new(),
                fwd: Arc::new(fwd),
                pacer: None,
            }],
            false,
        )
    }

    /// The first route whose filters all match `record`; None when none does.
    pub fn pick(&self, record: &Record) -> Option<&RouteTarget> {
        let mut event = Candidate::new(record);
        self.targets
            .iter()
            .find(|t| all_match(&t.filters, &mut event))
    }

    /// Counts one filtered event; returns the count so far.
    pub fn count_filtered(&self) -> u64 {
        self.filtered.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Events no route took so far (for metrics).
    pub fn filtered(&self) -> u64 {
        self.filtered.load(Ordering::Relaxed)
    }

    /// Where the events go, for logs: the targets, joined by `|`.
    pub fn target(&self) -> String {
        self.targets
            .iter()
            .map(|t| t.fwd.target())
            .collect::<Vec<_>>()
            .join(" | ")
    }
}
