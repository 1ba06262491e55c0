//! Creating and registering metric families. The definitions are constants of this
//! crate, so a failure to build one is a bug, never a runtime condition (hence
//! `unreachable!`); a duplicate name would only be missing from the scrape, which the
//! tests would catch.

use prometheus::core::{Atomic, GenericCounter, GenericGauge};
use prometheus::{
    Counter, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry,
};

fn register<C: prometheus::core::Collector + Clone + 'static>(registry: &Registry, c: C) -> C {
    let _ = registry.register(Box::new(c.clone()));
    c
}

/// A counter family with `labels`.
pub fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|_| unreachable!("metric definitions are constant and valid"));
    register(registry, c)
}

/// A gauge family with `labels`.
pub fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|_| unreachable!("metric definitions are constant and valid"));
    register(registry, g)
}

/// A float gauge family with `labels` (seconds).
pub fn float_gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    let g = GaugeVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|_| unreachable!("metric definitions are constant and valid"));
    register(registry, g)
}

/// A histogram family with `labels` and `buckets`.
pub fn histogram_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: &[f64],
) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    let h = HistogramVec::new(opts, labels)
        .unwrap_or_else(|_| unreachable!("metric definitions are constant and valid"));
    register(registry, h)
}

/// An unlabelled histogram with `buckets`.
pub fn histogram(registry: &Registry, name: &str, help: &str, buckets: &[f64]) -> Histogram {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    let h = Histogram::with_opts(opts)
        .unwrap_or_else(|_| unreachable!("metric definitions are constant and valid"));
    register(registry, h)
}

/// An unlabelled integer gauge.
pub fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    register(registry, plain::<GenericGauge<_>>(name, help))
}

/// An unlabelled integer counter.
pub fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    register(registry, plain::<GenericCounter<_>>(name, help))
}

/// An unlabelled float counter (seconds).
pub fn float_counter(registry: &Registry, name: &str, help: &str) -> Counter {
    register(registry, plain::<GenericCounter<_>>(name, help))
}

/// An unlabelled float gauge.
pub fn float_gauge(registry: &Registry, name: &str, help: &str) -> Gauge {
    register(registry, plain::<GenericGauge<_>>(name, help))
}

/// Builds an unlabelled counter or gauge of either number type.
fn plain<M: FromOpts>(name: &str, help: &str) -> M {
    M::from_opts(Opts::new(name, help))
}

trait FromOpts {
    fn from_opts(opts: Opts) -> Self;
}

impl<P: Atomic> FromOpts for GenericCounter<P> {
    fn from_opts(opts: Opts) -> Self {
        GenericCounter::with_opts(opts)
            .unwrap_or_else(|_| unreachable!("metric definitions are constant and valid"))
    }
}

impl<P: Atomic> FromOpts for GenericGauge<P> {
    fn from_opts(opts: Opts) -> Self {
        GenericGauge::with_opts(opts)
            .unwrap_or_else(|_| unreachable!("metric definitions are constant and valid"))
    }
}

/// Raises counter `c` to `total` (a monotonic figure kept elsewhere, e.g. by storage);
/// a counter cannot be set, and the figure never goes down, so the difference is added.
pub fn raise_to(c: &IntCounter, total: u64) {
    let now = c.get();
    if total > now {
        c.inc_by(total - now);
    }
}

/// [`raise_to`] for a float counter.
pub fn raise_float_to(c: &Counter, total: f64) {
    let now = c.get();
    if total > now {
        c.inc_by(total - now);
    }
}
