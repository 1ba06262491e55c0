//! The command-line arguments of `hookrelay agent`, `replay` and `tail` (clap).

use std::path::PathBuf;

use clap::Args;

/// `hookrelay agent`.
#[derive(Debug, Clone, Args)]
pub struct AgentArgs {
    /// Relay URL: ws://, wss://, http:// or https://. Repeat it to name more relays to
    /// fail over to (nodes sharing one JetStream log, or one relay reachable at several
    /// addresses): the agent starts with the first and moves to the next when one
    /// fails. Replaces agent.toml's `relay` list.
    #[arg(long = "relay", value_name = "URL")]
    pub relays: Vec<String>,
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
    /// Most deliveries per second to the local service (a float; paced evenly, no
    /// bursts). Default: unlimited.
    #[arg(long, value_name = "N")]
    pub max_rate: Option<f64>,
    /// Deliver only events that match EXPR (repeatable: all must match); the others
    /// are acknowledged without delivery and counted. EXPR is header:NAME=VALUE,
    /// header:NAME^=PREFIX, json:/POINTER=VALUE or json:/POINTER^=PREFIX, e.g.
    /// header:X-GitHub-Event=push, json:/action=opened, json:/ref^=refs/tags/.
    /// Header names are case-insensitive, values compare exactly; a JSON value that is
    /// not a string compares as its JSON text (5, true).
    #[arg(long = "filter", value_name = "EXPR")]
    pub filters: Vec<String>,
    /// Seconds to wait for the local service's response head before the attempt
    /// counts as failed and is retried.
    #[arg(long, value_name = "SECS", default_value_t = crate::agent::delivery::DEFAULT_TIMEOUT_SECS)]
    pub timeout: f64,
    /// PEM file of a CA to trust for an https:// local service (instead of the web
    /// PKI roots).
    #[arg(long, value_name = "FILE")]
    pub forward_ca_cert: Option<PathBuf>,
    /// A header added to every forwarded request, replacing the event's own of that
    /// name (repeatable), e.g. 'X-Internal-Token: ...'. Values are never logged.
    #[arg(long = "header", value_name = "'NAME: VALUE'")]
    pub headers: Vec<String>,
    /// No info log line per delivery (offset, status, duration, attempts).
    #[arg(long)]
    pub quiet: bool,
    /// Serve GET /metrics (Prometheus) and GET /healthz (connected or not) on this
    /// address, e.g. 127.0.0.1:9465 (port 0 picks a free port). Also `metrics_listen`
    /// in agent.toml.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Log format, syslog and bodies.
    #[command(flatten)]
    pub log: crate::common::logs::LogArgs,
}

/// `hookrelay replay`.
#[derive(Debug, Clone, Args)]
pub struct ReplayArgs {
    /// Relay URL: ws://, wss://, http:// or https://. One only (failing over between
    /// several relays is for `hookrelay agent`).
    #[arg(long)]
    pub relay: String,
    /// Channel to read.
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
    /// Local service URL; the event's path suffix and query are appended.
    #[arg(long)]
    pub forward: String,
    /// Consumer token for the channel.
    #[arg(long, env = "HOOKRELAY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// PEM file of a CA to trust for wss:// (instead of the web PKI roots).
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

/// `hookrelay tail`.
#[derive(Debug, Clone, Args)]
pub struct TailArgs {
    /// Relay URL: ws://, wss://, http:// or https://. One only (failing over between
    /// several relays is for `hookrelay agent`).
    #[arg(long)]
    pub relay: String,
    /// Channel to read.
    #[arg(long)]
    pub channel: String,
    /// earliest|latest|OFFSET
    #[arg(long, default_value = "earliest")]
    pub from: String,
    /// Stop after this many events.
    #[arg(long)]
    pub limit: Option<u64>,
    /// Consumer token for the channel.
    #[arg(long, env = "HOOKRELAY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Keep streaming live events after the stored ones.
    #[arg(long)]
    pub follow: bool,
    /// PEM file of a CA to trust for wss:// (instead of the web PKI roots).
    #[arg(long)]
    pub ca_cert: Option<PathBuf>,
    /// PEM client certificate for a relay that requires one (with --client-key).
    #[arg(long, requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of --client-cert.
    #[arg(long, requires = "client_cert")]
    pub client_key: Option<PathBuf>,
}
