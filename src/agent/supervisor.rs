//! The reconnect loop around sessions.
//!
//! An agent must outlive anything the network or the relay does to it: it dials, runs a
//! session, and after any disconnect dials again with exponential backoff and full
//! jitter (so that a relay restart is not met by every agent at the same instant),
//! resubscribing where the group's cursor says. With several relay URLs it moves to
//! the next one after each failure and waits only once per round of them
//! ([`crate::agent::failover`]). Only a refusal no retry can fix (a bad token, an
//! unknown channel) or a shutdown ends it. Replay and tail use the same loop with a
//! bound on consecutive failures, since a person is waiting on them.

use std::ops::ControlFlow;

use super::backoff::{Backoff, RECONNECT_BASE_DELAY, RECONNECT_MAX_DELAY};
use super::dial::Endpoint;
use super::end::SessionEnd;
use super::failover::Relays;
use super::session::{self, Ctx};
use super::sub::Sub;

/// How a supervised run ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// Every subscription finished.
    Done,
    /// Shutdown was requested.
    Shutdown,
    /// Stdout was closed.
    OutputClosed,
}

/// Why a supervised run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Configuration-like: a refused token, an unknown channel, a bad offset (exit 2).
    #[error("{0}")]
    Fatal(String),
    /// The relay could not be reached often enough (exit 1).
    #[error("{0}")]
    Unreachable(String),
}

/// Dials and runs sessions until the subscriptions finish, shutdown, or a fatal error.
/// `max_failures` bounds consecutive failed rounds over `relays` (None: retry
/// forever).
pub async fn supervise(
    relays: &mut Relays,
    subs: &mut [Sub],
    ctx: &Ctx,
    max_failures: Option<u32>,
) -> Result<Finish, RunError> {
    let mut backoff = Backoff::new(RECONNECT_BASE_DELAY, RECONNECT_MAX_DELAY);
    let shutdown = ctx.shutdown.clone();
    loop {
        if shutdown.is_triggered() {
            return Ok(Finish::Shutdown);
        }
        let failed = relays.current().display_url();
        let reason = match attempt(relays.current(), subs, ctx, &mut backoff).await {
            ControlFlow::Break(end) => return end,
            ControlFlow::Continue(reason) => reason,
        };
        let round_over = relays.failed();
        if relays.len() > 1 {
            switched(&failed, relays.current());
        }
        if !round_over {
            continue;
        }
        if max_failures.is_some_and(|max| backoff.attempts() >= max) {
            return Err(RunError::Unreachable(format!(
                "cannot reach the relay at {failed}: {reason}"
            )));
        }
        let delay = backoff.next_delay();
        tracing::info!(delay_ms = delay.as_millis() as u64, "reconnecting");
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.wait() => return Ok(Finish::Shutdown),
        }
    }
}

/// One dial and session on `endpoint`: breaks with how the run ends, or continues
/// with why this attempt failed (a session that got as far as `Welcome` resets
/// `backoff`).
async fn attempt(
    endpoint: &Endpoint,
    subs: &mut [Sub],
    ctx: &Ctx,
    backoff: &mut Backoff,
) -> ControlFlow<Result<Finish, RunError>, String> {
    let relay = endpoint.display_url();
    let dialled = tokio::select! {
        d = endpoint.dial() => d,
        _ = ctx.shutdown.wait() => return ControlFlow::Break(Ok(Finish::Shutdown)),
    };
    let ws = match dialled {
        Ok(ws) => ws,
        Err(e) if e.is_fatal() => return ControlFlow::Break(Err(RunError::Fatal(e.to_string()))),
        Err(e) => {
            tracing::warn!(%relay, error = %e, "cannot reach the relay");
            return ControlFlow::Continue(e.to_string());
        }
    };
    // The session's log lines name the relay it is connected to, not the first one.
    let ctx = Ctx {
        relay: relay.clone(),
        ..ctx.clone()
    };
    let result = session::run(ws, subs, &ctx).await;
    if result.established {
        backoff.reset();
    }
    ControlFlow::Break(match result.end {
        SessionEnd::Finished => Ok(Finish::Done),
        SessionEnd::Shutdown => Ok(Finish::Shutdown),
        SessionEnd::OutputClosed => Ok(Finish::OutputClosed),
        SessionEnd::Fatal(m) => Err(RunError::Fatal(m)),
        SessionEnd::Lost(reason) => {
            tracing::warn!(%relay, %reason, "disconnected");
            return ControlFlow::Continue(reason);
        }
    })
}

/// Logs (and counts) the move from relay `from` to the next one, `to`. URLs are shown
/// redacted: a token in a query string never reaches the log.
fn switched(from: &str, to: &Endpoint) {
    tracing::info!(from = %from, to = %to.display_url(), "switching to the next relay URL");
    match crate::agent::metrics::AgentMetrics::global() {
        Ok(m) => m.relay_switched(),
        Err(e) => tracing::debug!(error = %e, "agent metrics unavailable"),
    }
}
