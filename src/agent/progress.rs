//! A one-line progress display for long commands (bench, replay).
//!
//! It draws only when stderr is a terminal, so piped or logged output stays clean,
//! and redraws at most every [`REDRAW_INTERVAL`] so that counting costs nothing.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Least time between two redraws.
pub const REDRAW_INTERVAL: Duration = Duration::from_millis(200);

/// `total` while it is unknown.
const UNKNOWN_TOTAL: u64 = u64::MAX;

/// A shared counter with a background painter.
#[derive(Clone)]
pub struct Progress {
    done: Arc<AtomicU64>,
    /// The expected count; may be learned after the start (see [`Progress::set_total`]).
    total: Arc<AtomicU64>,
    painter: Option<Arc<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress")
            .field("done", &self.done())
            .field("drawing", &self.painter.is_some())
            .finish()
    }
}

impl Progress {
    /// Starts a display `label: done/total, rate, ETA` (total may be unknown).
    pub fn start(label: &'static str, total: Option<u64>) -> Progress {
        let done = Arc::new(AtomicU64::new(0));
        let total = Arc::new(AtomicU64::new(total.unwrap_or(UNKNOWN_TOTAL)));
        let painter = std::io::stderr().is_terminal().then(|| {
            let done = done.clone();
            let total = total.clone();
            Arc::new(tokio::spawn(async move {
                let started = Instant::now();
                let mut tick = tokio::time::interval(REDRAW_INTERVAL);
                loop {
                    tick.tick().await;
                    let n = done.load(Ordering::Relaxed);
                    let total = Some(total.load(Ordering::Relaxed)).filter(|&t| t != UNKNOWN_TOTAL);
                    let rate = n as f64 / started.elapsed().as_secs_f64().max(1e-3);
                    let line = match total {
                        Some(t) if rate > 0.0 => {
                            let eta = t.saturating_sub(n) as f64 / rate;
                            format!("{label}: {n}/{t} events, {rate:.0}/s, ETA {eta:.0}s")
                        }
                        Some(t) => format!("{label}: {n}/{t} events"),
                        None => format!("{label}: {n} events, {rate:.0}/s"),
                    };
                    let mut err = std::io::stderr().lock();
                    let _ = write!(err, "\r\x1b[2K{line}");
                    let _ = err.flush();
                }
            }))
        });
        Progress {
            done,
            total,
            painter,
        }
    }

    /// Sets the expected count once it is known (e.g. when a replay learns its range).
    pub fn set_total(&self, total: u64) {
        self.total
            .store(total.min(UNKNOWN_TOTAL - 1), Ordering::Relaxed);
    }

    /// Counts `n` more events done.
    pub fn add(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
    }

    /// Events done so far.
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Stops drawing and clears the line.
    pub fn finish(&self) {
        if let Some(p) = &self.painter {
            p.abort();
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
    }
}
