//! The command line: argument parsing and exit codes.
//!
//! This is the crate's edge, the one place that uses `anyhow` and turns errors into
//! exit codes: 0 success, 1 runtime failure, 2 usage or configuration error.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::common::config::Config;
use crate::common::logs::LogFormat;
use crate::common::shutdown::Shutdown;
use crate::relay::server::Server;

pub mod admin;
pub mod bench;
pub mod exit;
pub mod logging;
pub mod migrate;
pub mod secret;
pub mod send;
pub mod syslog;
mod workers;

use exit::{Failure, EXIT_FAILURE, EXIT_USAGE};

#[derive(Debug, Parser)]
#[command(
    name = "hookrelay",
    version,
    about = "Self-hosted webhook relay: verified ingest into a durable log, outbound WebSocket agents, replay by offset"
)]
/// The parsed command line.
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the public relay.
    Serve(ServeArgs),
    /// Run an agent: receive a channel's events and forward them to a local service.
    Agent(crate::agent::AgentArgs),
    /// Deliver a range of stored events to a target, then exit (moves no cursor).
    Replay(crate::agent::ReplayArgs),
    /// Print stored events as JSON lines.
    Tail(crate::agent::TailArgs),
    /// Sign a body for a scheme and post it (a test webhook).
    Send(SendArgs),
    /// Validate a config file and exit.
    Check(CheckArgs),
    /// Generate a signing secret (`secret new --scheme S`).
    Secret(crate::cli::secret::SecretArgs),
    /// Measure ingest, end-to-end latency and replay against a relay.
    Bench(crate::cli::bench::BenchArgs),
    /// List and redrive a channel's dead letters (admin API).
    Dlq(crate::cli::admin::DlqArgs),
    /// List a channel's consumer groups and reset their cursors (admin API).
    Groups(crate::cli::admin::GroupsArgs),
    /// Copy a sled data directory into the configured JetStream, offsets kept.
    Migrate(crate::cli::migrate::MigrateArgs),
}

/// `hookrelay serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Config file (default: ./config.toml when it exists, else development defaults).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Listen address, overriding the config (port 0 picks a free port).
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// Data directory, overriding the config.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Log format, syslog and bodies.
    #[command(flatten)]
    pub log: crate::common::logs::LogArgs,
}

/// `hookrelay send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// Where to post, e.g. http://127.0.0.1:8080/hooks/demo
    pub url: String,
    /// The channel's scheme: a provider preset (see the README's "Provider presets"),
    /// hmac or none.
    #[arg(long, ignore_case = true, value_parser = crate::cli::send::scheme_values())]
    pub scheme: String,
    /// The signing secret ("env:NAME" reads the environment). Asymmetric schemes take a
    /// private key: discord and telnyx the Ed25519 seed (hex), sendgrid base64 PKCS#8.
    #[arg(long, default_value = "")]
    pub secret: String,
    /// The body, or @FILE for a file's exact bytes.
    #[arg(long)]
    pub data: Option<String>,
    /// Extra header, 'Name: value' (repeatable).
    #[arg(short = 'H', long = "header")]
    pub headers: Vec<String>,
    /// HTTP method.
    #[arg(short = 'X', long, default_value = "POST")]
    pub method: String,
    /// Delivery id for schemes that carry one (default: a fresh id).
    #[arg(long)]
    pub id: Option<String>,
    /// Schemes that sign the URL (hubspot): the URL to sign, if not the one posted to.
    #[arg(long)]
    pub public_url: Option<String>,
    /// Scheme hmac: the signature header.
    #[arg(long)]
    pub signature_header: Option<String>,
    /// Scheme hmac: the prefix before the signature (e.g. "sha256=").
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// Scheme hmac: hex or base64.
    #[arg(long, default_value = "hex")]
    pub encoding: String,
}

/// `hookrelay check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The config file to validate.
    #[arg(long)]
    pub config: PathBuf,
}

/// Parses the command line, runs the command, and turns its result into the exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    let format = match init_logging(&cli.command) {
        Ok(format) => format,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    // One crypto provider for every TLS client and server in the process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // tail and replay are one socket in and one output (a pipe, or one delivery at a
    // time): a single thread saves the cross-thread wake-ups a work-stealing runtime
    // pays for every frame (tail > /dev/null: 180k -> 300k+ events/s).
    let mut builder = if matches!(cli.command, Command::Tail(_) | Command::Replay(_)) {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    // `serve` reads its config before the runtime exists: the config says how many
    // workers it gets (see `workers`), and is read once.
    let served = match &cli.command {
        Command::Serve(args) => match serve_config(args) {
            Ok(config) => Some(config),
            Err(f) => {
                report_failure(format, &f);
                return ExitCode::from(f.code);
            }
        },
        _ => None,
    };
    if let Some(n) = served
        .as_ref()
        .and_then(|c| workers::serve_workers(&c.storage))
    {
        builder.worker_threads(n);
    }
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let result = runtime.block_on(async {
        match served {
            Some(config) => serve(config).await,
            None => run(cli).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            report_failure(format, &f);
            ExitCode::from(f.code)
        }
    }
}

/// The last word of a failed run on stderr: `error: ...`, or with `--log-format json`
/// one more JSON line, so that a log pipeline reading JSON gets every line.
fn report_failure(format: LogFormat, f: &Failure) {
    let message = format!("{:#}", f.error);
    match format {
        LogFormat::Text => eprintln!("error: {message}"),
        LogFormat::Json => {
            let now = crate::common::time::format_time_ms(crate::common::time::now_unix_ms());
            let line = serde_json::json!({
                "timestamp": now,
                "level": "ERROR",
                "message": message,
                "exit_code": f.code,
                "target": "hookrelay::cli",
            });
            eprintln!("{line}");
        }
    }
}

/// Sets up the log: `serve` and `agent` take the log flags; a benchmark's own output
/// is the table, which the embedded relay's info lines would bury.
fn init_logging(command: &Command) -> Result<LogFormat, syslog::SyslogError> {
    let defaults = crate::common::logs::LogArgs::default();
    let (level, opts) = match command {
        Command::Serve(a) => ("info", &a.log),
        Command::Agent(a) => ("info", &a.log),
        Command::Bench(_) => ("warn", &defaults),
        _ => ("info", &defaults),
    };
    logging::init(level, opts)?;
    Ok(opts.log_format)
}

/// Runs one parsed command.
pub async fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Serve(a) => serve(serve_config(&a)?).await,
        Command::Agent(a) => crate::agent::run_agent(a)
            .await
            .map_err(Failure::from_agent),
        Command::Replay(a) => crate::agent::run_replay(a)
            .await
            .map_err(Failure::from_agent),
        Command::Tail(a) => crate::agent::run_tail(a).await.map_err(Failure::from_agent),
        Command::Send(a) => send(a).await,
        Command::Check(a) => check(&a.config),
        Command::Secret(a) => secret(&a),
        Command::Bench(a) => crate::cli::bench::main(a).await,
        Command::Dlq(a) => crate::cli::admin::run_dlq(a).await,
        Command::Groups(a) => crate::cli::admin::run_groups(a).await,
        Command::Migrate(a) => crate::cli::migrate::run(a).await,
    }
}

/// The config `serve` runs with: `--config`, else `./config.toml`, else the defaults.
fn serve_config(args: &ServeArgs) -> Result<Config, Failure> {
    let mut config = match &args.config {
        Some(path) => Config::load(path).map_err(Failure::usage)?,
        None if Path::new("config.toml").exists() => {
            Config::load(Path::new("config.toml")).map_err(Failure::usage)?
        }
        None => {
            tracing::warn!("no config.toml here: using development defaults (channel \"demo\", secret \"dev-secret\", token \"dev-token\")");
            Config::development()
        }
    };
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    if let Some(dir) = &args.data_dir {
        config.server.data_dir = dir.clone();
    }
    Ok(config)
}

async fn serve(config: Config) -> Result<(), Failure> {
    let shutdown = Shutdown::new();
    let server = Server::bind(config, shutdown.clone()).await.map_err(|e| {
        // Unusable TLS files are a configuration error (exit 2), like a bad key.
        let usage = matches!(e, crate::relay::server::StartError::Tls(_));
        let error = anyhow::Error::new(e).context("cannot start the relay");
        if usage {
            Failure::usage(error)
        } else {
            Failure::from(error)
        }
    })?;
    let addr = server.local_addr().context("no local address")?;
    // The readiness line: scripts and tests wait for it instead of sleeping.
    println!("hookrelay listening on {}://{addr}", server.scheme());
    use std::io::Write;
    let _ = std::io::stdout().flush();
    tracing::info!(%addr, channels = server.relay.config.channels.len(), "relay ready");
    tokio::spawn(async move {
        crate::common::shutdown::signal().await;
        tracing::info!("signal received: stopping");
        shutdown.trigger();
    });
    server
        .run()
        .await
        .context("the log did not close cleanly")?;
    tracing::info!("stopped; every acknowledged event is on disk");
    Ok(())
}

fn check(path: &Path) -> Result<(), Failure> {
    let config = Config::load(path).map_err(Failure::usage)?;
    if let Some(tls) = &config.server.tls {
        crate::common::tls::server_config(tls)
            .map_err(|e| Failure::usage(anyhow::anyhow!("{}: TLS: {e}", path.display())))?;
    }
    println!(
        "{}: ok ({} channel{}, listen {})",
        path.display(),
        config.channels.len(),
        if config.channels.len() == 1 { "" } else { "s" },
        config.server.listen
    );
    Ok(())
}

/// `hookrelay secret new`: prints the secret, or exits 2 saying where to get one.
fn secret(a: &crate::cli::secret::SecretArgs) -> Result<(), Failure> {
    let crate::cli::secret::SecretCommand::New { scheme } = &a.command;
    let s = crate::cli::secret::new_secret(scheme).map_err(Failure::usage)?;
    println!("{s}");
    Ok(())
}

/// `hookrelay send`'s flags as a request; every problem is a usage error.
fn send_request(a: &SendArgs) -> Result<crate::cli::send::SendRequest, Failure> {
    use crate::cli::send::{parse_encoding, parse_header, read_data, SendRequest};
    use crate::common::verify::{HmacParams, SchemeKind};
    let usage = |m: String| Failure::usage(anyhow::anyhow!(m));
    let scheme = SchemeKind::parse(&a.scheme).ok_or_else(|| {
        let names = SchemeKind::ALL.map(SchemeKind::as_str).join(", ");
        usage(format!("--scheme {:?}: expected one of {names}", a.scheme))
    })?;
    let secret = match a.secret.strip_prefix("env:") {
        Some(var) => std::env::var(var)
            .map_err(|_| usage(format!("--secret: environment variable {var} is not set")))?,
        None => a.secret.clone(),
    };
    if scheme != SchemeKind::None && secret.is_empty() {
        return Err(usage(format!(
            "--secret is required for scheme {}",
            scheme.as_str()
        )));
    }
    let hmac = match &a.signature_header {
        Some(h) => Some(HmacParams::new(
            http::HeaderName::from_bytes(h.as_bytes())
                .map_err(|_| usage(format!("--signature-header {h:?} is not a header name")))?,
            a.prefix.clone(),
            parse_encoding(&a.encoding).map_err(Failure::usage)?,
        )),
        None => None,
    };
    let headers = a
        .headers
        .iter()
        .map(|h| parse_header(h))
        .collect::<Result<Vec<_>, _>>()
        .map_err(Failure::usage)?;
    let method = http::Method::from_bytes(a.method.as_bytes())
        .map_err(|_| usage(format!("-X {:?} is not a method", a.method)))?;
    Ok(SendRequest {
        url: a.url.clone(),
        scheme,
        secret,
        body: read_data(a.data.as_deref()).map_err(Failure::usage)?,
        headers,
        method,
        hmac,
        delivery_id: a.id.clone(),
        public_url: a.public_url.clone(),
    })
}

async fn send(a: SendArgs) -> Result<(), Failure> {
    let req = send_request(&a)?;
    let resp = crate::cli::send::send(req).await.map_err(|e| match e {
        crate::cli::send::SendError::Usage(_) => Failure::usage(e),
        other => Failure::from(other),
    })?;
    println!("{} {}", resp.status, resp.body);
    if (200..300).contains(&resp.status) {
        Ok(())
    } else {
        Err(Failure::from(anyhow::anyhow!(
            "the relay answered {}",
            resp.status
        )))
    }
}
