//! Bench results: one row per phase, printed as a table or JSON.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// The outcome of one phase.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseResult {
    /// The phase's name (`ingest`, `e2e`, `replay`, `drain`, `idle`).
    pub phase: &'static str,
    /// Events that completed.
    pub events: u64,
    /// Requests or frames that failed.
    pub errors: u64,
    /// Wall-clock duration of the phase.
    pub seconds: f64,
    /// `events / seconds`.
    pub events_per_sec: f64,
    /// Body megabytes (10^6) per second.
    pub mb_per_sec: f64,
    /// Latency percentiles in milliseconds (absent for phases that measure none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<Percentiles>,
    /// Drain: milliseconds from the agent's start (dialling included) to the first
    /// event at the local service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_event_ms: Option<f64>,
}

/// Latency percentiles, in milliseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// The slowest one.
    pub max: f64,
}

/// A histogram of microseconds, 1 µs to 60 s at 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3)
        .unwrap_or_else(|_| unreachable!("constant bounds are valid"))
}

impl Percentiles {
    /// The percentiles of a histogram of microseconds.
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        let ms = |us: u64| us as f64 / 1000.0;
        Percentiles {
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }
}

impl PhaseResult {
    /// A result from counts, the elapsed time and the body bytes moved.
    pub fn new(
        phase: &'static str,
        events: u64,
        errors: u64,
        elapsed: Duration,
        bytes: u64,
        latency: Option<&Histogram<u64>>,
    ) -> PhaseResult {
        let seconds = elapsed.as_secs_f64().max(1e-9);
        PhaseResult {
            phase,
            events,
            errors,
            seconds,
            events_per_sec: events as f64 / seconds,
            mb_per_sec: bytes as f64 / seconds / 1_000_000.0,
            latency_ms: latency.filter(|h| !h.is_empty()).map(Percentiles::of),
            first_event_ms: None,
        }
    }
}

/// The human-readable table.
pub fn table(results: &[PhaseResult]) -> String {
    let mut out = format!(
        "{:<8} {:>9} {:>7} {:>9} {:>11} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}\n",
        "phase",
        "events",
        "errors",
        "seconds",
        "events/s",
        "MB/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "p99.9 ms",
        "max ms"
    );
    for r in results {
        let l = |f: fn(&Percentiles) -> f64| {
            r.latency_ms
                .as_ref()
                .map(|p| format!("{:.3}", f(p)))
                .unwrap_or_else(|| "-".into())
        };
        out.push_str(&format!(
            "{:<8} {:>9} {:>7} {:>9.2} {:>11.0} {:>8.1} {:>8} {:>8} {:>8} {:>8} {:>8}\n",
            r.phase,
            r.events,
            r.errors,
            r.seconds,
            r.events_per_sec,
            r.mb_per_sec,
            l(|p| p.p50),
            l(|p| p.p90),
            l(|p| p.p99),
            l(|p| p.p999),
            l(|p| p.max)
        ));
    }
    for r in results {
        if let Some(ms) = r.first_event_ms {
            out.push_str(&format!(
                "{}: first event at the local service {ms:.1} ms after the agent started\n",
                r.phase
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_rates() {
        let mut h = histogram();
        for us in 1..=1000u64 {
            h.record(us).expect("record");
        }
        let r = PhaseResult::new(
            "ingest",
            1000,
            0,
            Duration::from_millis(500),
            1_000_000,
            Some(&h),
        );
        assert_eq!(r.events_per_sec, 2000.0);
        assert_eq!(r.mb_per_sec, 2.0);
        let p = r.latency_ms.expect("latency");
        assert!(
            (p.p50 - 0.5).abs() < 0.01 && (p.max - 1.0).abs() < 0.01,
            "{p:?}"
        );
        assert!(table(&[r]).contains("ingest"));
    }
}
