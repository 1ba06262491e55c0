//! `hookrelay migrate --data-dir DIR --config FILE`: copy a sled log into the JetStream
//! that the config's `[storage]` names, offsets kept (see [`crate::storage::migrate`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use crate::cli::exit::Failure;
use crate::common::config::{Config, JetStreamConfig, StorageConfig};
use crate::storage::migrate::{self, ChannelSummary, MigrateError, Progress};

/// `hookrelay migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The sled data directory to copy from (the relay must be stopped).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// The config whose `[storage]` (backend = "jetstream") is the target.
    #[arg(long)]
    pub config: PathBuf,
}

/// Runs the migration, printing each channel's progress on stdout.
pub async fn run(args: MigrateArgs) -> Result<(), Failure> {
    let config = Config::load(&args.config).map_err(Failure::usage)?;
    let target = jetstream_target(&args.config, &config)?;
    println!(
        "hookrelay migrate: {} -> {}",
        args.data_dir.display(),
        crate::storage::location(&config.storage, &args.data_dir)
    );
    let summaries = migrate::run(&args.data_dir, target, &mut print_progress)
        .await
        .map_err(|e| match e {
            MigrateError::NotALog(_) => Failure::usage(e),
            other => Failure::from(other),
        })?;
    println!("hookrelay migrate: {}", conclusion(&summaries));
    Ok(())
}

/// The target: the config's JetStream, or a usage error naming the key.
fn jetstream_target<'a>(path: &Path, config: &'a Config) -> Result<&'a JetStreamConfig, Failure> {
    match &config.storage {
        StorageConfig::JetStream(js) => Ok(js),
        StorageConfig::Sled => Err(Failure::usage(anyhow::anyhow!(
            "{}: storage.backend: migrate copies into JetStream, but this config keeps the \
             log in sled; set [storage] backend = \"jetstream\" with its servers",
            path.display()
        ))),
    }
}

fn print_progress(p: Progress) {
    match p {
        Progress::Planned {
            channel,
            earliest,
            head,
            from,
        } => println!(
            "channel {channel}: offsets {earliest}..={head}; {} to copy",
            match (head + 1).saturating_sub(from) {
                0 => "none".to_string(),
                n => format!("{n} (from {from})"),
            }
        ),
        Progress::Copied {
            channel,
            done,
            total,
        } => println!("channel {channel}: {done}/{total} events"),
        Progress::Finished(s) => println!("{}", finished(&s)),
    }
}

fn finished(s: &ChannelSummary) -> String {
    format!(
        "channel {}: copied {} events{}, {} cursors, {} dead letters, {} redrives, {} delivery ids",
        s.channel,
        s.events,
        rate(s.events, s.elapsed),
        s.cursors,
        s.dead_letters,
        s.redrives,
        s.claims
    )
}

fn rate(events: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    if events == 0 || secs <= 0.0 {
        return String::new();
    }
    format!(" in {secs:.2} s ({:.0} events/s)", events as f64 / secs)
}

fn conclusion(summaries: &[ChannelSummary]) -> String {
    if summaries.iter().all(ChannelSummary::nothing_written) {
        return format!(
            "nothing to copy: the target already holds this log ({})",
            channels(summaries.len())
        );
    }
    let events: u64 = summaries.iter().map(|s| s.events).sum();
    format!(
        "done: {}, {events} events copied, offsets kept",
        channels(summaries.len())
    )
}

fn channels(n: usize) -> String {
    format!("{n} channel{}", if n == 1 { "" } else { "s" })
}
