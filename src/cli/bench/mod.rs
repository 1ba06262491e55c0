//! `hookrelay bench`: reproducible numbers on the user's own hardware.
//!
//! Like `redis-benchmark` or `nats bench`, it drives a running relay (`--relay`) or a
//! throwaway embedded one (`--embedded`: temp data dir, removed afterwards) through up
//! to three phases: *ingest* (signed webhooks as fast as they are acknowledged),
//! *e2e* (a fixed offered rate through an in-process agent to an in-process local
//! service: POST → arrival latency) and *replay* (reading the channel back as fast as
//! possible). Everything talks to the relay over its real HTTP and WebSocket
//! interfaces, so the numbers include every check and every fsync.
//!
//! This file parses the flags and runs the phases; `target` holds what the phases
//! share (the relay under test, signing, the stream connection, the in-process
//! agent), `embedded` the throwaway relay, `report` the results.

mod drain;
mod e2e;
mod embedded;
mod idle;
mod ingest;
mod replay;
pub mod report;
mod service;
pub mod target;

use std::sync::Arc;

use clap::Args;

use crate::cli::exit::Failure;
pub use target::{BenchError, Signer, Target};

/// `hookrelay bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// A running relay (http:// or https://); omit with --embedded.
    #[arg(long, required_unless_present = "embedded")]
    pub relay: Option<String>,
    /// Another relay node on the same storage for the agent and readers (e2e, drain,
    /// replay): events are posted to --relay and read from here.
    #[arg(long, requires = "relay")]
    pub stream_relay: Option<String>,
    /// Start a throwaway relay in this process (temp data dir, removed afterwards).
    #[arg(long, conflicts_with = "relay")]
    pub embedded: bool,
    /// Channel to post to and read from.
    #[arg(long, default_value = "bench")]
    pub channel: String,
    /// The channel's signing secret (with --relay).
    #[arg(long, default_value = "bench-secret")]
    pub secret: String,
    /// The channel's scheme (with --relay).
    #[arg(long, default_value = "github")]
    pub scheme: String,
    /// A consumer token for the channel (e2e and replay).
    #[arg(
        long,
        env = "HOOKRELAY_TOKEN",
        hide_env_values = true,
        default_value = "bench-token"
    )]
    pub token: String,
    /// Phases to run, comma-separated: ingest, e2e, replay, drain, idle.
    #[arg(long, default_value = "ingest,e2e,replay", value_delimiter = ',')]
    pub phases: Vec<String>,
    /// Ingest: webhooks to send.
    #[arg(long, default_value_t = 50_000)]
    pub count: u64,
    /// Ingest: requests in flight.
    #[arg(long, default_value_t = 64)]
    pub concurrency: u64,
    /// Body size in bytes.
    #[arg(long, default_value_t = 1024)]
    pub body_size: usize,
    /// E2e: offered rate, events per second.
    #[arg(long, default_value_t = 400)]
    pub rate: u64,
    /// E2e: seconds of offered load.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Drain: the agent's window (as `hookrelay agent --max-in-flight`).
    #[arg(long, default_value_t = 1)]
    pub max_in_flight: u32,
    /// Drain: milliseconds the local service waits before answering (0 = fast target).
    #[arg(long, default_value_t = 0)]
    pub service_delay_ms: u64,
    /// Idle: agent connections to open and hold (not in the default phases).
    #[arg(long, default_value_t = 1000)]
    pub connections: usize,
    /// Idle: seconds to hold them once all are open.
    #[arg(long, default_value_t = 10)]
    pub hold: u64,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs the selected phases and returns their results.
pub async fn run(args: &BenchArgs) -> Result<Vec<report::PhaseResult>, BenchError> {
    for p in &args.phases {
        if !matches!(p.as_str(), "ingest" | "e2e" | "replay" | "drain" | "idle") {
            return Err(BenchError::Usage(format!(
                "unknown phase {p:?}: expected ingest, e2e, replay, drain or idle"
            )));
        }
    }
    let (target, embedded) = if args.embedded {
        let (t, e) = embedded::start(&args.channel, &args.secret, &args.token).await?;
        (t, Some(e))
    } else {
        let relay = args.relay.as_deref().unwrap_or_default();
        let mut target = Target::remote(
            relay,
            &args.channel,
            &args.scheme,
            &args.secret,
            &args.token,
        )?;
        if let Some(other) = &args.stream_relay {
            target.stream_base = other.trim_end_matches('/').to_string();
        }
        (target, None)
    };
    let target = Arc::new(target);
    let result = run_phases(args, &target).await;
    if let Some(e) = embedded {
        e.stop().await;
    }
    result
}

async fn run_phases(
    args: &BenchArgs,
    target: &Arc<Target>,
) -> Result<Vec<report::PhaseResult>, BenchError> {
    let mut results = Vec::new();
    let wants = |p: &str| args.phases.iter().any(|x| x == p);
    if wants("ingest") {
        results.push(ingest::run(target, args.count, args.concurrency, args.body_size).await?);
    }
    if wants("e2e") {
        results.push(e2e::run(target, args.rate, args.duration, args.body_size).await?);
    }
    if wants("replay") {
        results.push(replay::run(target).await?);
    }
    if wants("drain") {
        let delay = std::time::Duration::from_millis(args.service_delay_ms);
        results.push(
            drain::run(
                target,
                args.count,
                args.concurrency,
                args.body_size,
                args.max_in_flight,
                delay,
            )
            .await?,
        );
    }
    if wants("idle") {
        results.push(idle::run(target, args.connections, args.hold).await?);
    }
    Ok(results)
}

/// The CLI entry point.
pub async fn main(args: BenchArgs) -> Result<(), Failure> {
    let results = run(&args).await.map_err(|e| match e {
        BenchError::Usage(_) => Failure::usage(e),
        other => Failure::from(other),
    })?;
    if args.json {
        let out = serde_json::to_string_pretty(&results).map_err(Failure::from)?;
        println!("{out}");
    } else {
        print!("{}", report::table(&results));
    }
    Ok(())
}
