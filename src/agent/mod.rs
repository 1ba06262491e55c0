//! The private side: `hookrelay agent`, `replay` and `tail`.
//!
//! All three dial out to the relay's `/v1/stream` WebSocket (agents run where nothing
//! can dial in), speak [`crate::common::protocol`], and survive disconnects by reconnecting:
//!
//! - `agent` subscribes one or more channels as a consumer group and forwards each
//!   event to a local service ([`crate::agent::forward`]); the relay moves the group's cursor
//!   only on acknowledgement, so delivery is at least once, in order.
//! - `replay` reads a range without a group (moving no cursor) and forwards it.
//! - `tail` reads without a group and prints JSON lines.
//!
//! Files: `args` (clap flags), `plan` (flags and agent.toml to subscriptions),
//! `dial` (URL, TLS, token), `session` (one connection's protocol: frames in, acks
//! out, the window) with `sub` (a subscription across reconnects), `live` (its
//! per-connection window and ack bookkeeping), `sink` (forward or print each event)
//! and `end` (how a session ends), `supervisor` (reconnects) with `failover` (which
//! of several relay URLs to dial next), `forward` (one event to
//! the local service), `routes` (agent.toml), `backoff`, `retry_after`, `replay`,
//! `tail`. Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error —
//! including a relay that refuses the token or the channel, which no retry fixes.

pub mod args;
pub mod backoff;
pub mod clip;
pub mod delivery;
pub mod dial;
pub mod dispatch;
pub mod end;
mod error;
pub mod failover;
pub mod filter;
pub mod forward;
pub mod live;
pub mod metrics;
pub mod metrics_http;
pub mod pacer;
pub mod plan;
pub mod progress;
pub mod quickack;
mod replay;
pub mod retry_after;
pub mod routes;
pub mod session;
pub mod sink;
pub mod sub;
pub mod supervisor;
mod tail;

pub use args::{AgentArgs, ReplayArgs, TailArgs};
pub use error::AgentError;
pub use plan::{agent_plan, prefetch_window, PREFETCH_EVENTS};

use crate::common::shutdown::Shutdown;
use plan::{group_subs, relays, signal_shutdown};
use routes::Plan;
use session::Ctx;

/// `hookrelay agent`: runs until a signal (exit 0) or a refusal no retry fixes (2).
pub async fn run_agent(args: AgentArgs) -> Result<(), AgentError> {
    let plan = agent_plan(&args)?;
    let server = match plan.metrics_listen {
        Some(addr) => {
            let runtime = |e: &dyn std::error::Error| AgentError::Runtime(e.to_string());
            let metrics = metrics::AgentMetrics::global().map_err(|e| runtime(&e))?;
            let server = metrics_http::serve(addr, metrics).await;
            Some(server.map_err(|e| runtime(&e))?)
        }
        None => None,
    };
    let result = run(&plan, signal_shutdown(), true).await;
    if let Some(server) = server {
        server.abort();
    }
    result?;
    tracing::info!("agent stopped");
    Ok(())
}

/// Runs an agent for `plan` until `shutdown` fires or a refusal no retry fixes. The
/// library entry point (used by `hookrelay bench`); `announce` prints the stdout
/// readiness lines.
pub async fn run(plan: &Plan, shutdown: Shutdown, announce: bool) -> Result<(), AgentError> {
    let mut relays = relays(plan)?;
    let mut subs = group_subs(plan)?;
    let ctx = Ctx {
        shutdown,
        announce,
        relay: relays.current().display_url(),
    };
    let result = supervisor::supervise(&mut relays, &mut subs, &ctx, None).await;
    for sub in &subs {
        if let sink::Handler::Forward(d) = &sub.handler {
            if d.filtered() > 0 {
                tracing::info!(channel = %sub.channel, filtered = d.filtered(), "events filtered out (acknowledged without delivery)");
            }
        }
    }
    result.map(|_| ()).map_err(AgentError::from)
}

/// `hookrelay replay`: delivers a range, exits 0, or 1 when some events failed.
pub async fn run_replay(args: ReplayArgs) -> Result<(), AgentError> {
    replay::run(args).await
}

/// `hookrelay tail`: prints events as JSON lines.
pub async fn run_tail(args: TailArgs) -> Result<(), AgentError> {
    tail::run(args).await
}
