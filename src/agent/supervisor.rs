//! The reconnect loop around sessions.
//!
//! An agent must outlive anything the network or the relay does to it: it dials, runs a
//! session, and after any disconnect dials again with exponential backoff and full
//! jitter (so that a relay restart is not met by every agent at the same instant),
//! resubscribing where the group's cursor says. Only a refusal no retry can fix (a
//! bad token, an unknown channel) or a shutdown ends it. Replay and tail use the same
//! loop with a bound on consecutive failures, since a person is waiting on them.

use super::backoff::{Backoff, RECONNECT_BASE_DELAY, RECONNECT_MAX_DELAY};
use super::dial::Endpoint;
use super::end::SessionEnd;
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
/// `max_failures` bounds consecutive failed attempts (None: retry forever).
pub async fn supervise(
    endpoint: &Endpoint,
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
        let dialled = tokio::select! {
            d = endpoint.dial() => d,
            _ = shutdown.wait() => return Ok(Finish::Shutdown),
        };
        let reason = match dialled {
            Ok(ws) => {
                let result = session::run(ws, subs, ctx).await;
                if result.established {
                    backoff.reset();
                }
                match result.end {
                    SessionEnd::Finished => return Ok(Finish::Done),
                    SessionEnd::Shutdown => return Ok(Finish::Shutdown),
                    SessionEnd::OutputClosed => return Ok(Finish::OutputClosed),
                    SessionEnd::Fatal(m) => return Err(RunError::Fatal(m)),
                    SessionEnd::Lost(reason) => {
                        tracing::warn!(relay = %endpoint.display_url(), %reason, "disconnected");
                        reason
                    }
                }
            }
            Err(e) if e.is_fatal() => return Err(RunError::Fatal(e.to_string())),
            Err(e) => {
                tracing::warn!(relay = %endpoint.display_url(), error = %e, "cannot reach the relay");
                e.to_string()
            }
        };
        if max_failures.is_some_and(|max| backoff.attempts() >= max) {
            return Err(RunError::Unreachable(format!(
                "cannot reach the relay at {}: {reason}",
                endpoint.display_url()
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
