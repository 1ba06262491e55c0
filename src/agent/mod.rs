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
//! Files: `dial` (URL, TLS, token), `session` (one connection's protocol),
//! `supervisor` (reconnects), `routes` (agent.toml), `backoff`, `retry_after`,
//! `replay`, `tail`. Exit codes: 0 success, 1 runtime failure, 2 usage or
//! configuration error — including a relay that refuses the token or the channel,
//! which no retry fixes.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use crate::common::shutdown::Shutdown;

pub mod backoff;
pub mod dial;
mod error;
pub mod forward;
pub mod progress;
mod replay;
pub mod retry_after;
pub mod routes;
pub mod session;
pub mod supervisor;
mod tail;

use dial::{Endpoint, TlsFiles};
pub use error::AgentError;
use routes::{Plan, Route, RouteDefaults};
use session::{Ctx, Handler, Sub, SubKind};

#[derive(Debug, Clone, Args)]
pub struct AgentArgs {
    /// Relay URL: ws://, wss://, http:// or https://.
    #[arg(long)]
    pub relay: Option<String>,
    /// Channel to receive.
    #[arg(long)]
    pub channel: Option<String>,
    /// Local service URL; the event's path suffix and query are appended.
    #[arg(long)]
    pub forward: Option<String>,
    /// Consumer token for the channel.
    #[arg(long, env = "HOOKRELAY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Consumer group.
    #[arg(long, default_value = "default")]
    pub group: String,
    /// Where a group without a committed cursor starts: committed|earliest|latest|OFFSET.
    #[arg(long, default_value = "earliest")]
    pub from: String,
    /// Deliveries in flight at once (1 = strict order).
    #[arg(long, default_value_t = 1)]
    pub max_in_flight: u32,
    /// Attempts per event before it is dead-lettered.
    #[arg(long, default_value_t = 10)]
    pub max_attempts: u32,
    /// PEM file of a CA to trust for wss:// (instead of the web PKI roots).
    #[arg(long)]
    pub ca_cert: Option<PathBuf>,
    /// agent.toml with several channel → target routes.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// PEM client certificate for a relay that requires one (with --client-key).
    #[arg(long, requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of --client-cert.
    #[arg(long, requires = "client_cert")]
    pub client_key: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct ReplayArgs {
    #[arg(long)]
    pub relay: String,
    #[arg(long)]
    pub channel: String,
    /// First offset to deliver (or --since).
    #[arg(long, required_unless_present = "since")]
    pub from: Option<u64>,
    /// Last offset to deliver (default: the head when replay starts).
    #[arg(long)]
    pub to: Option<u64>,
    /// Start at the first event received at or after this RFC 3339 time (instead of
    /// --from); the relay finds it by a binary search, without scanning the channel.
    #[arg(long, conflicts_with = "from")]
    pub since: Option<String>,
    /// Stop before the first event received after this RFC 3339 time.
    #[arg(long)]
    pub until: Option<String>,
    #[arg(long)]
    pub forward: String,
    #[arg(long, env = "HOOKRELAY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    #[arg(long)]
    pub ca_cert: Option<PathBuf>,
    /// Attempts per event before it counts as failed.
    #[arg(long, default_value_t = crate::agent::forward::DEFAULT_MAX_ATTEMPTS)]
    pub max_attempts: u32,
    /// PEM client certificate for a relay that requires one (with --client-key).
    #[arg(long, requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of --client-cert.
    #[arg(long, requires = "client_cert")]
    pub client_key: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct TailArgs {
    #[arg(long)]
    pub relay: String,
    #[arg(long)]
    pub channel: String,
    /// earliest|latest|OFFSET
    #[arg(long, default_value = "earliest")]
    pub from: String,
    /// Stop after this many events.
    #[arg(long)]
    pub limit: Option<u64>,
    #[arg(long, env = "HOOKRELAY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Keep streaming live events after the stored ones.
    #[arg(long)]
    pub follow: bool,
    #[arg(long)]
    pub ca_cert: Option<PathBuf>,
    /// PEM client certificate for a relay that requires one (with --client-key).
    #[arg(long, requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of --client-cert.
    #[arg(long, requires = "client_cert")]
    pub client_key: Option<PathBuf>,
}

/// `hookrelay agent`: runs until a signal (exit 0) or a refusal no retry fixes (2).
pub async fn run_agent(args: AgentArgs) -> Result<(), AgentError> {
    let plan = agent_plan(&args)?;
    run(&plan, signal_shutdown(), true).await?;
    tracing::info!("agent stopped");
    Ok(())
}

/// Runs an agent for `plan` until `shutdown` fires or a refusal no retry fixes. The
/// library entry point (used by `hookrelay bench`); `announce` prints the stdout
/// readiness lines.
pub async fn run(plan: &Plan, shutdown: Shutdown, announce: bool) -> Result<(), AgentError> {
    let endpoint = endpoint(
        &plan.relay,
        plan.token.as_deref(),
        plan.ca_cert.as_deref(),
        &plan.client_cert,
    )?;
    let mut subs = Vec::with_capacity(plan.routes.len());
    for route in &plan.routes {
        subs.push(group_sub(route)?);
    }
    let ctx = Ctx {
        shutdown,
        announce,
        relay: endpoint.display_url(),
    };
    supervisor::supervise(&endpoint, &mut subs, &ctx, None)
        .await
        .map(|_| ())
        .map_err(AgentError::from)
}

/// `hookrelay replay`: delivers a range, exits 0, or 1 when some events failed.
pub async fn run_replay(args: ReplayArgs) -> Result<(), AgentError> {
    replay::run(args).await
}

/// `hookrelay tail`: prints events as JSON lines.
pub async fn run_tail(args: TailArgs) -> Result<(), AgentError> {
    tail::run(args).await
}

/// The routes of an agent run, from `--config` and/or the flags.
pub fn agent_plan(args: &AgentArgs) -> Result<Plan, AgentError> {
    let usage = AgentError::Usage;
    let defaults = RouteDefaults {
        group: args.group.clone(),
        from: args.from.clone(),
        max_in_flight: args.max_in_flight,
        max_attempts: args.max_attempts,
    };
    if !routes::valid_group(&args.group) {
        return Err(usage(format!(
            "--group {:?}: must match [A-Za-z0-9_-]{{1,64}}",
            args.group
        )));
    }
    let start = routes::parse_start(&args.from).map_err(|m| usage(format!("--from {m}")))?;
    routes::check_window(args.max_in_flight).map_err(|m| usage(format!("--max-in-flight {m}")))?;
    if args.max_attempts == 0 {
        return Err(usage("--max-attempts must be at least 1".into()));
    }
    let client_cert = args.client_cert.clone().zip(args.client_key.clone());
    if let Some(path) = &args.config {
        if args.channel.is_some() || args.forward.is_some() {
            return Err(usage(
                "--channel/--forward cannot be combined with --config (add a [[route]] instead)"
                    .into(),
            ));
        }
        let file = routes::load(path, &defaults).map_err(AgentError::usage)?;
        let relay = args.relay.clone().or(file.relay).ok_or_else(|| {
            usage(format!(
                "{}: no relay: set relay = \"wss://...\" or pass --relay",
                path.display()
            ))
        })?;
        return Ok(Plan {
            relay,
            token: args.token.clone().or(file.token),
            ca_cert: args.ca_cert.clone().or(file.ca_cert),
            client_cert: client_cert.or(file.client_cert),
            routes: file.routes,
        });
    }
    let missing = |flag: &str| usage(format!("{flag} is required (or --config agent.toml)"));
    let relay = args.relay.clone().ok_or_else(|| missing("--relay"))?;
    let channel = args.channel.clone().ok_or_else(|| missing("--channel"))?;
    let forward = args.forward.clone().ok_or_else(|| missing("--forward"))?;
    if !crate::common::config::valid_channel_name(&channel) {
        return Err(usage(format!(
            "--channel {channel:?}: must match [A-Za-z0-9_-]{{1,64}}"
        )));
    }
    Ok(Plan {
        relay,
        token: args.token.clone(),
        ca_cert: args.ca_cert.clone(),
        client_cert,
        routes: vec![Route {
            channel,
            forward,
            group: args.group.clone(),
            start,
            max_in_flight: args.max_in_flight,
            max_attempts: args.max_attempts,
        }],
    })
}

/// Events an agent accepts from the relay beyond its deliveries in flight.
///
/// Without them, a delivery that finishes leaves its slot empty for a whole round trip
/// (ack to the relay, log read, event back); with them, the next event is already
/// here. Prefetched events are not delivered yet, so they never count as duplicates:
/// after a crash or a takeover the relay sends them again, and the local service still
/// sees at most `--max-in-flight` events twice. The price is memory: up to this many
/// more events held in the agent (64 KiB of 1 KiB events; 64 MiB at the largest
/// bodies a relay accepts by default).
pub const PREFETCH_EVENTS: u32 = 64;

/// The window an agent asks for: its deliveries in flight plus [`PREFETCH_EVENTS`].
pub fn prefetch_window(max_in_flight: u32) -> u32 {
    max_in_flight
        .saturating_add(PREFETCH_EVENTS)
        .min(crate::common::protocol::MAX_WINDOW)
}

fn group_sub(route: &Route) -> Result<Sub, AgentError> {
    let fwd = crate::agent::forward::Forwarder::new(
        &route.forward,
        route.max_attempts,
        route.max_in_flight as usize,
    )
    .map_err(AgentError::usage)?;
    Ok(Sub {
        channel: route.channel.clone(),
        kind: SubKind::Group {
            group: route.group.clone(),
        },
        start: route.start,
        window: prefetch_window(route.max_in_flight),
        concurrency: route.max_in_flight,
        handler: Handler::Forward(Arc::new(fwd)),
        limit: None,
        delivered: 0,
        failed: 0,
        finished: false,
        until_ms: None,
        progress: None,
    })
}

/// The relay endpoint; a bad URL, token or TLS file is a usage error.
fn endpoint(
    relay: &str,
    token: Option<&str>,
    ca_cert: Option<&std::path::Path>,
    client_cert: &Option<(PathBuf, PathBuf)>,
) -> Result<Endpoint, AgentError> {
    Endpoint::new(
        relay,
        token,
        TlsFiles {
            ca_cert,
            client_cert: client_cert
                .as_ref()
                .map(|(c, k)| (c.as_path(), k.as_path())),
        },
    )
    .map_err(AgentError::usage)
}

/// A shutdown that SIGINT/SIGTERM triggers.
fn signal_shutdown() -> Shutdown {
    let shutdown = Shutdown::new();
    let s = shutdown.clone();
    tokio::spawn(async move {
        crate::common::shutdown::signal().await;
        tracing::info!("signal received: stopping");
        s.trigger();
    });
    shutdown
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: AgentArgs,
    }

    fn args(extra: &[&str]) -> AgentArgs {
        T::try_parse_from(std::iter::once("t").chain(extra.iter().copied()))
            .expect("parses")
            .a
    }

    #[test]
    fn flags_make_one_route() {
        let p = agent_plan(&args(&[
            "--relay",
            "http://h:1",
            "--channel",
            "c",
            "--forward",
            "http://l:2",
            "--from",
            "7",
            "--max-in-flight",
            "4",
            "--group",
            "g",
        ]))
        .expect("ok");
        assert_eq!(p.routes.len(), 1);
        let r = &p.routes[0];
        assert_eq!(
            (r.group.as_str(), r.start, r.max_in_flight, r.max_attempts),
            ("g", crate::common::protocol::Start::Offset(7), 4, 10)
        );
    }

    #[test]
    fn bad_flags_are_usage_errors() {
        for bad in [
            &["--channel", "c", "--forward", "http://l"][..],
            &["--relay", "ws://h", "--forward", "http://l"],
            &[
                "--relay",
                "ws://h",
                "--channel",
                "c d",
                "--forward",
                "http://l",
            ],
            &[
                "--relay",
                "ws://h",
                "--channel",
                "c",
                "--forward",
                "http://l",
                "--from",
                "never",
            ],
            &[
                "--relay",
                "ws://h",
                "--channel",
                "c",
                "--forward",
                "http://l",
                "--max-in-flight",
                "0",
            ],
            &[
                "--relay",
                "ws://h",
                "--channel",
                "c",
                "--forward",
                "http://l",
                "--group",
                "a/b",
            ],
            &["--relay", "ws://h", "--channel", "c", "--config", "a.toml"],
        ] {
            assert!(agent_plan(&args(bad)).is_err(), "{bad:?}");
        }
    }
}
