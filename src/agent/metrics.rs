//! The agent's Prometheus metrics, served by `--metrics-listen`
//! ([`crate::agent::metrics_http`]).
//!
//! One registry per process. Every label has a bounded set of values: `channel` is a
//! channel the agent was configured with (never a name the relay sent), `class` is
//! `2xx`/`3xx`/`4xx`/`5xx`/`error`, and `code` is the HTTP status number, or `error` /
//! `timeout` for an attempt that got no response. Deliveries are counted per attempt,
//! so a 500 followed by a 200 shows both: the success ratio the alert rules watch is
//! the local service's, attempt by attempt.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// How one attempt to the local service ended, as far as the metrics care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The service answered with this status.
    Status(u16),
    /// No response head within the timeout.
    Timeout,
    /// No response: connection refused, reset, TLS failure...
    Error,
}

/// Buckets of the local service's latency per attempt, in seconds.
const SERVICE_BUCKETS_SECS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// Buckets of the end-to-end latency (relay receipt to 2xx), in seconds; 5 s is the
/// alert threshold, so it is a bucket edge.
const END_TO_END_BUCKETS_SECS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0,
];

/// The process's agent metrics.
#[derive(Debug)]
pub struct AgentMetrics {
    registry: Registry,
    deliveries: IntCounterVec,
    attempts: IntCounterVec,
    retries: IntCounterVec,
    dead_letters: IntCounterVec,
    filtered: IntCounterVec,
    service: HistogramVec,
    end_to_end: HistogramVec,
    in_flight: IntGaugeVec,
    connected: IntGaugeVec,
    reconnects: IntCounterVec,
    /// Moves from one relay URL to the next (`--relay` given several times).
    relay_switches: IntCounter,
    /// Whether each configured channel has a live subscription now (for `/healthz`).
    live: Mutex<BTreeMap<String, bool>>,
}

/// A metrics setup error (a duplicate or malformed metric: a bug, not input).
#[derive(Debug, thiserror::Error)]
#[error("agent metrics: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

fn counter(
    reg: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<IntCounterVec, MetricsError> {
    let c = IntCounterVec::new(Opts::new(name, help), labels)?;
    reg.register(Box::new(c.clone()))?;
    Ok(c)
}

fn plain_counter(reg: &Registry, name: &str, help: &str) -> Result<IntCounter, MetricsError> {
    let c = IntCounter::with_opts(Opts::new(name, help))?;
    reg.register(Box::new(c.clone()))?;
    Ok(c)
}

fn gauge(reg: &Registry, name: &str, help: &str) -> Result<IntGaugeVec, MetricsError> {
    let g = IntGaugeVec::new(Opts::new(name, help), &["channel"])?;
    reg.register(Box::new(g.clone()))?;
    Ok(g)
}

fn histogram(
    reg: &Registry,
    name: &str,
    help: &str,
    buckets: &[f64],
) -> Result<HistogramVec, MetricsError> {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    let h = HistogramVec::new(opts, &["channel"])?;
    reg.register(Box::new(h.clone()))?;
    Ok(h)
}

impl AgentMetrics {
    /// Every metric, registered in a fresh registry.
    fn new() -> Result<AgentMetrics, MetricsError> {
        let r = Registry::new();
        let ch = &["channel"];
        Ok(AgentMetrics {
            deliveries: counter(
                &r,
                "hookrelay_agent_deliveries_total",
                "Attempts to the local service by status class and code.",
                &["channel", "class", "code"],
            )?,
            attempts: counter(
                &r,
                "hookrelay_agent_attempts_total",
                "Requests made to the local service.",
                ch,
            )?,
            retries: counter(
                &r,
                "hookrelay_agent_retries_total",
                "Attempts that failed and were retried.",
                ch,
            )?,
            dead_letters: counter(
                &r,
                "hookrelay_agent_dead_letters_total",
                "Events given up and dead-lettered.",
                ch,
            )?,
            filtered: counter(
                &r,
                "hookrelay_agent_filtered_total",
                "Events no route took (acknowledged without delivery).",
                ch,
            )?,
            service: histogram(
                &r,
                "hookrelay_agent_service_duration_seconds",
                "Local service latency per attempt, to the response head.",
                SERVICE_BUCKETS_SECS,
            )?,
            end_to_end: histogram(
                &r,
                "hookrelay_agent_end_to_end_seconds",
                "From the relay's receipt of the event to the 2xx.",
                END_TO_END_BUCKETS_SECS,
            )?,
            in_flight: gauge(&r, "hookrelay_agent_in_flight", "Deliveries running now.")?,
            connected: gauge(
                &r,
                "hookrelay_agent_connected",
                "1 while the channel's subscription is live, else 0.",
            )?,
            reconnects: counter(
                &r,
                "hookrelay_agent_reconnects_total",
                "Subscriptions re-established after a disconnect.",
                ch,
            )?,
            relay_switches: plain_counter(
                &r,
                "hookrelay_agent_relay_switches_total",
                "Moves from one relay URL to the next after a failure.",
            )?,
            registry: r,
            live: Mutex::new(BTreeMap::new()),
        })
    }

    /// The process's metrics, created on first use.
    pub fn global() -> Result<&'static AgentMetrics, MetricsError> {
        static GLOBAL: OnceLock<AgentMetrics> = OnceLock::new();
        if let Some(m) = GLOBAL.get() {
            return Ok(m);
        }
        let fresh = AgentMetrics::new()?;
        Ok(GLOBAL.get_or_init(|| fresh))
    }

    /// The handles of one configured channel (its series start at zero).
    pub fn channel(&'static self, channel: &str) -> ChannelMetrics {
        let one = [channel];
        if let Ok(mut live) = self.live.lock() {
            live.entry(channel.to_string()).or_insert(false);
        }
        // Created now so that the series exist (at 0) before anything happens.
        for m in [
            &self.attempts,
            &self.retries,
            &self.dead_letters,
            &self.filtered,
            &self.reconnects,
        ] {
            m.with_label_values(&one);
        }
        self.connected.with_label_values(&one).set(0);
        self.in_flight.with_label_values(&one);
        ChannelMetrics {
            all: self,
            channel: channel.into(),
            ever_connected: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Counts a move to the next relay URL.
    pub fn relay_switched(&self) {
        self.relay_switches.inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Whether every configured channel has a live subscription, and each one's state.
    pub fn health(&self) -> (bool, BTreeMap<String, bool>) {
        let live = self.live.lock().map(|l| l.clone()).unwrap_or_default();
        let all = !live.is_empty() && live.values().all(|&up| up);
        (all, live)
    }
}

/// The metrics of one configured channel, cheap to clone.
#[derive(Debug, Clone)]
pub struct ChannelMetrics {
    all: &'static AgentMetrics,
    channel: Arc<str>,
    /// Set once the channel was first subscribed: later subscriptions are reconnects.
    ever_connected: Arc<AtomicBool>,
}

impl ChannelMetrics {
    fn one(&self) -> [&str; 1] {
        [&self.channel]
    }

    /// One attempt to the local service ended with `attempt` after `took`.
    pub fn attempted(&self, answer: Answer, took: Duration) {
        let (class, code) = answer_labels(answer);
        let all = self.all;
        all.attempts.with_label_values(&self.one()).inc();
        all.deliveries
            .with_label_values(&[&self.channel, class, &code])
            .inc();
        all.service
            .with_label_values(&self.one())
            .observe(took.as_secs_f64());
    }

    /// An attempt failed and will be tried again.
    pub fn retried(&self) {
        self.all.retries.with_label_values(&self.one()).inc();
    }

    /// The service answered 2xx to an event the relay received at `received_at_ms`.
    pub fn delivered(&self, received_at_ms: u64) {
        let now = crate::common::time::now_unix_ms();
        let secs = now.saturating_sub(received_at_ms) as f64 / 1000.0;
        self.all
            .end_to_end
            .with_label_values(&self.one())
            .observe(secs);
    }

    /// An event was dead-lettered.
    pub fn dead_lettered(&self) {
        self.all.dead_letters.with_label_values(&self.one()).inc();
    }

    /// An event no route took.
    pub fn filtered(&self) {
        self.all.filtered.with_label_values(&self.one()).inc();
    }

    /// A delivery started; the in-flight gauge goes down when the guard drops (also
    /// when the task is aborted).
    pub fn in_flight(&self) -> InFlight {
        let gauge = self.all.in_flight.with_label_values(&self.one());
        gauge.inc();
        InFlight(gauge)
    }

    /// The subscription went live (`true`) or its session ended (`false`).
    pub fn set_connected(&self, up: bool) {
        self.all
            .connected
            .with_label_values(&self.one())
            .set(i64::from(up));
        if up && self.ever_connected.swap(true, Ordering::Relaxed) {
            self.all.reconnects.with_label_values(&self.one()).inc();
        }
        if let Ok(mut live) = self.all.live.lock() {
            live.insert(self.channel.to_string(), up);
        }
    }
}

/// Holds one delivery in the in-flight gauge.
#[derive(Debug)]
pub struct InFlight(prometheus::IntGauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The `class` and `code` labels of one attempt.
pub fn answer_labels(answer: Answer) -> (&'static str, String) {
    match answer {
        Answer::Status(s @ 200..=299) => ("2xx", s.to_string()),
        Answer::Status(s @ 300..=399) => ("3xx", s.to_string()),
        Answer::Status(s @ 400..=499) => ("4xx", s.to_string()),
        Answer::Status(s @ 500..=599) => ("5xx", s.to_string()),
        // Outside 200..599 (1xx never ends a request; a bogus status from a broken
        // service): one bounded bucket.
        Answer::Status(_) => ("error", "other".into()),
        Answer::Timeout => ("error", "timeout".into()),
        Answer::Error => ("error", "error".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_have_bounded_labels() {
        assert_eq!(answer_labels(Answer::Status(204)), ("2xx", "204".into()));
        assert_eq!(answer_labels(Answer::Status(301)), ("3xx", "301".into()));
        assert_eq!(answer_labels(Answer::Status(404)), ("4xx", "404".into()));
        assert_eq!(answer_labels(Answer::Status(503)), ("5xx", "503".into()));
        assert_eq!(
            answer_labels(Answer::Status(999)),
            ("error", "other".into())
        );
        assert_eq!(answer_labels(Answer::Timeout), ("error", "timeout".into()));
        assert_eq!(answer_labels(Answer::Error), ("error", "error".into()));
    }

    #[test]
    fn series_move_and_render() {
        let m = AgentMetrics::global()
            .expect("metrics")
            .channel("unit-test");
        m.attempted(Answer::Status(200), Duration::from_millis(3));
        m.set_connected(true);
        m.set_connected(false);
        m.set_connected(true);
        {
            let _held = m.in_flight();
        }
        let text = AgentMetrics::global().expect("metrics").render();
        for line in [
            "hookrelay_agent_deliveries_total{channel=\"unit-test\",class=\"2xx\",code=\"200\"} 1",
            "hookrelay_agent_reconnects_total{channel=\"unit-test\"} 1",
            "hookrelay_agent_connected{channel=\"unit-test\"} 1",
            "hookrelay_agent_in_flight{channel=\"unit-test\"} 0",
            "hookrelay_agent_service_duration_seconds_count{channel=\"unit-test\"} 1",
        ] {
            assert!(text.contains(line), "{line} missing:\n{text}");
        }
    }
}
