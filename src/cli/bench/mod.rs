//! `hookrelay bench`: reproducible numbers on the user's own hardware.
//!
//! Like `redis-benchmark` or `nats bench`, it drives a running relay (`--relay`) or a
//! throwaway embedded one (`--embedded`: temp data dir, removed afterwards) through up
//! to three phases: *ingest* (signed webhooks as fast as they are acknowledged),
//! *e2e* (a fixed offered rate through an in-process agent to an in-process local
//! service: POST → arrival latency) and *replay* (reading the channel back as fast as
//! possible). Everything talks to the relay over its real HTTP and WebSocket
//! interfaces, so the numbers include every check and every fsync.

mod drain;
mod e2e;
mod idle;
mod ingest;
mod replay;
pub mod report;
mod service;

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use crate::cli::exit::Failure;
use crate::common::verify::{HmacParams, SchemeKind, Secret};

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// A running relay (http:// or https://); omit with --embedded.
    #[arg(long, required_unless_present = "embedded")]
    pub relay: Option<String>,
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

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("setup: {0}")]
    Setup(String),
    #[error("{0}")]
    Usage(String),
    #[error("{phase}: {message}")]
    Phase {
        phase: &'static str,
        message: String,
    },
}

/// Signs bench bodies the way the channel expects.
#[derive(Clone)]
pub struct Signer {
    kind: SchemeKind,
    hmac: Option<HmacParams>,
    secret: Secret,
}

impl Signer {
    pub fn sign(&self, body: &[u8], delivery_id: Option<&str>) -> Vec<(http::HeaderName, String)> {
        let now = (crate::common::time::now_unix_ms() / 1000) as i64;
        crate::common::verify::sign(
            self.kind,
            self.hmac.as_ref(),
            &self.secret,
            body,
            now,
            delivery_id,
        )
    }
}

/// The relay under test.
pub struct Target {
    /// http(s)://host:port
    pub base: String,
    pub channel: String,
    pub token: String,
    pub signer: Signer,
}

impl Target {
    pub fn ingest_url(&self) -> String {
        format!("{}/hooks/{}", self.base, self.channel)
    }

    pub fn stream_url(&self) -> String {
        format!("{}/v1/stream", self.base.replacen("http", "ws", 1))
    }
}

/// The relay's stream, authenticated, after `Hello` (for the replay and idle phases).
pub(crate) async fn connect(
    target: &Target,
    agent: &str,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    String,
> {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = target
        .stream_url()
        .into_client_request()
        .map_err(|e| e.to_string())?;
    let auth = format!("Bearer {}", target.token)
        .parse()
        .map_err(|_| "the token is not a valid header value".to_string())?;
    request
        .headers_mut()
        .insert(http::header::AUTHORIZATION, auth);
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .map_err(|e| e.to_string())?;
    let hello = crate::common::protocol::ClientMsg::Hello {
        versions: vec![crate::common::protocol::PROTOCOL_VERSION],
        agent: agent.to_string(),
    };
    ws.send(tokio_tungstenite::tungstenite::Message::Binary(
        hello.encode().into(),
    ))
    .await
    .map_err(|e| e.to_string())?;
    Ok(ws)
}

/// A bench body of `size` bytes: JSON padded with spaces.
pub fn body(size: usize) -> Vec<u8> {
    let mut b = br#"{"action":"bench","pad":""}"#.to_vec();
    b.resize(size.max(b.len()), b' ');
    b
}

/// The real agent code, started in process for a phase: one route from the bench
/// channel to `forward` in a fresh group `{group_prefix}-{random}`, so that no earlier
/// run's cursor applies. Trigger the returned signal, then await the task, to stop it.
fn spawn_agent(
    target: &Target,
    forward: String,
    group_prefix: &str,
    start: crate::common::protocol::Start,
    max_in_flight: u32,
) -> (
    crate::common::shutdown::Shutdown,
    tokio::task::JoinHandle<Result<(), crate::agent::AgentError>>,
) {
    let plan = crate::agent::routes::Plan {
        relay: target.base.clone(),
        token: Some(target.token.clone()),
        ca_cert: None,
        client_cert: None,
        routes: vec![crate::agent::routes::Route {
            channel: target.channel.clone(),
            forward,
            group: format!("{group_prefix}-{:x}", rand::random::<u32>()),
            start,
            max_in_flight: max_in_flight.max(1),
            max_attempts: 3,
        }],
    };
    let stop = crate::common::shutdown::Shutdown::new();
    let agent = {
        let stop = stop.clone();
        tokio::spawn(async move { crate::agent::run(&plan, stop, false).await })
    };
    (stop, agent)
}

/// An embedded relay and the directory it must remove.
struct Embedded {
    dir: PathBuf,
    shutdown: crate::common::shutdown::Shutdown,
    task: tokio::task::JoinHandle<()>,
}

async fn embedded(
    channel: &str,
    secret: &str,
    token: &str,
) -> Result<(Target, Embedded), BenchError> {
    let dir = std::env::temp_dir().join(format!(
        "hookrelay-bench-{}-{:x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\n\n[[channel]]\nname = {channel:?}\nscheme = \"github\"\nsecrets = [{secret:?}]\ntokens = [{token:?}]\n",
        dir.join("data").display().to_string()
    );
    let config = crate::common::config::Config::parse(&text, "<bench>")
        .map_err(|e| BenchError::Setup(e.to_string()))?;
    let shutdown = crate::common::shutdown::Shutdown::new();
    let server = crate::relay::server::Server::bind(config, shutdown.clone())
        .await
        .map_err(|e| BenchError::Setup(e.to_string()))?;
    let addr = server
        .local_addr()
        .map_err(|e| BenchError::Setup(e.to_string()))?;
    let task = tokio::spawn(async move {
        if let Err(e) = server.run().await {
            tracing::error!(error = %e, "embedded relay stopped with an error");
        }
    });
    let signer = Signer {
        kind: SchemeKind::Github,
        hmac: None,
        secret: Secret::for_scheme(SchemeKind::Github, secret)
            .map_err(|e| BenchError::Setup(e.to_string()))?,
    };
    let target = Target {
        base: format!("http://{addr}"),
        channel: channel.to_string(),
        token: token.to_string(),
        signer,
    };
    Ok((
        target,
        Embedded {
            dir,
            shutdown,
            task,
        },
    ))
}

impl Embedded {
    async fn stop(self) {
        self.shutdown.trigger();
        let _ = self.task.await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
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
        let (t, e) = embedded(&args.channel, &args.secret, &args.token).await?;
        (t, Some(e))
    } else {
        let kind = SchemeKind::parse(&args.scheme)
            .ok_or_else(|| BenchError::Usage(format!("unknown scheme {:?}", args.scheme)))?;
        if kind == SchemeKind::Hmac {
            return Err(BenchError::Usage(
                "bench signs github, stripe, slack, standard or none; use one of those".into(),
            ));
        }
        let secret = Secret::for_scheme(kind, &args.secret)
            .map_err(|e| BenchError::Usage(format!("--secret: {e}")))?;
        let base = args
            .relay
            .clone()
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_string();
        let target = Target {
            base,
            channel: args.channel.clone(),
            token: args.token.clone(),
            signer: Signer {
                kind,
                hmac: None,
                secret,
            },
        };
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
