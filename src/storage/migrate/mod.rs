//! `hookrelay migrate`: copy an embedded (sled) log into the configured JetStream, with
//! every offset kept, so a relay that started on one machine moves to a cluster
//! without renumbering anything that agents, cursors or operators refer to.
//!
//! What moves, per channel: every retained event as its stored bytes (ids, received-at
//! and body byte-identical) at its own offset, the stream starting at the log's first
//! retained offset even when retention trimmed the front (see
//! `storage::jetstream::import`); every group's cursor; dead letters as stored (reason,
//! attempts, last status, time); pending redrives; and the remembered delivery ids, so
//! the dedup window spans the move.
//!
//! Safety: the source is opened through sled's directory lock, so no relay can append
//! while it is read ("stop the relay first" otherwise). Every channel is checked before
//! anything is written ([`plan`]): a target that is an unfinished copy of this log is
//! continued, one that holds anything else is refused. Running it twice writes nothing.
//! Layout: `source` (opening sled), `plan` (the checks), `copy` (the writes),
//! `progress` (what it reports), `error`.

mod copy;
mod error;
mod plan;
mod progress;
mod source;

use std::path::Path;

pub use error::MigrateError;
pub use progress::{ChannelSummary, Progress};

use crate::common::config::JetStreamConfig;
use crate::storage::api::Storage;
use crate::storage::jetstream::JetStreamStorage;

/// Migrates the sled log in `data_dir` into the JetStream `target`; `report` hears
/// each channel's plan, progress and result. Returns one summary per channel.
pub async fn run(
    data_dir: &Path,
    target: &JetStreamConfig,
    report: &mut (dyn FnMut(Progress) + Send),
) -> Result<Vec<ChannelSummary>, MigrateError> {
    let src = source::open(data_dir)?;
    let dst = JetStreamStorage::open(target)
        .await
        .map_err(MigrateError::Target)?;
    let mut channels = src.channels();
    channels.sort();
    // Every channel is checked before the first write, so a refusal changes nothing.
    let mut plans = Vec::with_capacity(channels.len());
    for channel in &channels {
        plans.push(plan::plan(&src, &dst, channel).await?);
    }
    let mut summaries = Vec::with_capacity(plans.len());
    for p in &plans {
        report(Progress::Planned {
            channel: p.channel.clone(),
            earliest: p.earliest,
            head: p.head,
            from: p.from,
        });
        let summary = copy::copy(&src, &dst, p, report).await?;
        report(Progress::Finished(summary.clone()));
        summaries.push(summary);
    }
    // Settings are per channel but not tied to events: a channel that only completed
    // a handshake has some and no stream.
    for channel in src.channels_with_settings().map_err(MigrateError::Source)? {
        copy::copy_settings(&src, &dst, &channel).await?;
    }
    dst.close().await.map_err(MigrateError::Target)?;
    src.close().await.map_err(MigrateError::Source)?;
    Ok(summaries)
}
