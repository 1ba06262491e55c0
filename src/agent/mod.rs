//! The private side: `hookrelay agent`, `replay` and `tail`. Placeholder: the argument
//! types are final, the implementations land with the agent work.

use std::path::PathBuf;

use clap::Args;

use crate::cli::Failure;

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
}

#[derive(Debug, Clone, Args)]
pub struct ReplayArgs {
    #[arg(long)]
    pub relay: String,
    #[arg(long)]
    pub channel: String,
    /// First offset to deliver.
    #[arg(long)]
    pub from: Option<u64>,
    /// Last offset to deliver (default: the head when replay starts).
    #[arg(long)]
    pub to: Option<u64>,
    #[arg(long)]
    pub forward: String,
    #[arg(long, env = "HOOKRELAY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    #[arg(long)]
    pub ca_cert: Option<PathBuf>,
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
}

pub async fn run_agent(_args: AgentArgs) -> Result<(), Failure> {
    Err(Failure::from(anyhow::anyhow!("agent: not built yet")))
}

pub async fn run_replay(_args: ReplayArgs) -> Result<(), Failure> {
    Err(Failure::from(anyhow::anyhow!("replay: not built yet")))
}

pub async fn run_tail(_args: TailArgs) -> Result<(), Failure> {
    Err(Failure::from(anyhow::anyhow!("tail: not built yet")))
}
