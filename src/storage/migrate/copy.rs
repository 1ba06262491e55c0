//! Copying one planned channel: its events in pipelined batches at their own offsets,
//! then its delivery-id claims, dead letters, redrive marks and, last, its cursors.
//! Everything already on the target (an interrupted run) is skipped, so running it
//! again resumes, and a finished migration run again writes nothing.

use std::time::{Duration, Instant};

use super::error::MigrateError;
use super::plan::{ChannelPlan, GroupState};
use super::progress::{ChannelSummary, Progress};
use crate::storage::api::Storage;
use crate::storage::error::StorageError;
use crate::storage::jetstream::JetStreamStorage;
use crate::storage::sled::SledStorage;

/// Events read from sled and published (pipelined) per batch.
const BATCH_EVENTS: usize = 1024;
/// At most this many bytes of events per batch (at least one event always).
const BATCH_BYTES: usize = 16 * 1024 * 1024;
/// How often a long copy reports progress.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// Copies what `plan` says; reports progress through `report`.
pub async fn copy(
    src: &SledStorage,
    dst: &JetStreamStorage,
    plan: &ChannelPlan,
    report: &mut (dyn FnMut(Progress) + Send),
) -> Result<ChannelSummary, MigrateError> {
    let target = MigrateError::Target;
    if plan.create {
        dst.create_stream_at(&plan.channel, plan.earliest)
            .await
            .map_err(target)?;
    }
    let started = Instant::now();
    let events = copy_events(src, dst, plan, report).await?;
    let elapsed = started.elapsed();
    let claims = dst
        .import_claims(&plan.channel, &plan.claims)
        .await
        .map_err(target)?;
    let mut summary = ChannelSummary {
        channel: plan.channel.clone(),
        events,
        elapsed,
        claims,
        ..ChannelSummary::default()
    };
    for group in &plan.groups {
        copy_group(dst, &plan.channel, group, &mut summary)
            .await
            .map_err(target)?;
    }
    Ok(summary)
}

/// What the relay learned at run time for the channel (Asana's hook secret). A value
/// the target already holds is kept (first write wins, as on the relay).
pub async fn copy_settings(
    src: &SledStorage,
    dst: &JetStreamStorage,
    channel: &str,
) -> Result<(), MigrateError> {
    for (name, value) in src
        .channel_settings(channel)
        .map_err(MigrateError::Source)?
    {
        dst.put_channel_setting(channel, &name, value, false)
            .await
            .map_err(MigrateError::Target)?;
    }
    Ok(())
}

/// Events `plan.from..=plan.head`, batch by batch; returns how many were published.
async fn copy_events(
    src: &SledStorage,
    dst: &JetStreamStorage,
    plan: &ChannelPlan,
    report: &mut (dyn FnMut(Progress) + Send),
) -> Result<u64, MigrateError> {
    let total = (plan.head + 1).saturating_sub(plan.from);
    let (mut next, mut done) = (plan.from, 0u64);
    let mut reported = Instant::now();
    while next <= plan.head {
        let batch = src
            .read_raw(&plan.channel, next, BATCH_EVENTS, BATCH_BYTES)
            .await
            .map_err(MigrateError::Source)?;
        check_dense(&plan.channel, next, &batch)?;
        let n = batch.len() as u64;
        dst.import_records(&plan.channel, batch)
            .await
            .map_err(MigrateError::Target)?;
        next += n;
        done += n;
        if reported.elapsed() >= PROGRESS_INTERVAL || next > plan.head {
            reported = Instant::now();
            report(Progress::Copied {
                channel: plan.channel.clone(),
                done,
                total,
            });
        }
    }
    Ok(done)
}

/// A batch must start at `next` and have no gap: offsets are dense in a sled log, and
/// a gap would otherwise surface as a refused publish with a vaguer message.
fn check_dense(channel: &str, next: u64, batch: &[(u64, Vec<u8>)]) -> Result<(), MigrateError> {
    let gap = match batch.iter().zip(next..).find(|((o, _), want)| o != want) {
        Some((_, want)) => Some(want),
        None if batch.is_empty() => Some(next),
        None => None,
    };
    match gap {
        Some(offset) => Err(MigrateError::Source(StorageError::Corrupt(format!(
            "channel {channel}: offset {offset} is missing from the log"
        )))),
        None => Ok(()),
    }
}

/// Dead letters and redrive marks the target lacks, then the cursor (last, so that a
/// group never looks further along on the target than the data it has).
async fn copy_group(
    dst: &JetStreamStorage,
    channel: &str,
    group: &GroupState,
    summary: &mut ChannelSummary,
) -> Result<(), StorageError> {
    let existing = dst.dead_letters(channel, &group.name).await?;
    for letter in group.letters.iter().filter(|l| !existing.contains(l)) {
        dst.add_dead_letter(channel, &group.name, letter.clone())
            .await?;
        summary.dead_letters += 1;
    }
    let pending = dst.redrives(channel, &group.name).await?;
    for mark in group.marks.iter().filter(|m| !pending.contains(&m.offset)) {
        dst.import_redrive(channel, &group.name, *mark).await?;
        summary.redrives += 1;
    }
    if let Some(cursor) = group.cursor {
        if dst.cursor(channel, &group.name)? != Some(cursor) {
            // A forward (compare-and-set) write: the plan checked that the target has
            // no cursor for this group, so it is created, never moved backwards.
            dst.set_cursor(channel, &group.name, cursor, false).await?;
            summary.cursors += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_dense;

    #[test]
    fn a_batch_must_start_where_asked_and_have_no_gap() {
        let batch = |offsets: &[u64]| offsets.iter().map(|o| (*o, vec![])).collect::<Vec<_>>();
        assert!(check_dense("c", 5, &batch(&[5, 6, 7])).is_ok());
        for (next, offsets, missing) in [(5, &[6, 7][..], 5), (5, &[5, 7], 6), (5, &[], 5)] {
            let err = check_dense("c", next, &batch(offsets)).expect_err("a gap");
            assert!(
                err.to_string()
                    .contains(&format!("offset {missing} is missing")),
                "{err}"
            );
        }
    }
}
