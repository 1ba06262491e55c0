//! Checking a channel before anything is written: what the source holds, what the
//! target already holds, and whether the target is an unfinished copy of the source
//! (then copying resumes after it) or something else (then nothing is written).

use super::error::MigrateError;
use crate::storage::api::Storage;
use crate::storage::jetstream::{JetStreamStorage, StreamSpan};
use crate::storage::sled::SledStorage;
use crate::storage::transfer::{DeliveryClaim, RedriveMark};
use crate::storage::types::DeadLetter;

/// A consumer group's state in the source.
#[derive(Debug, Clone)]
pub struct GroupState {
    /// The group's name.
    pub name: String,
    /// Its committed cursor, if it has one.
    pub cursor: Option<u64>,
    /// Its dead letters, in offset order.
    pub letters: Vec<DeadLetter>,
    /// Its pending redrives.
    pub marks: Vec<RedriveMark>,
}

/// What to copy for one channel.
#[derive(Debug, Clone)]
pub struct ChannelPlan {
    /// The channel.
    pub channel: String,
    /// The source's first retained offset (`head + 1` when it holds no event).
    pub earliest: u64,
    /// The source's head.
    pub head: u64,
    /// The target has no stream yet: create it to start at `earliest`.
    pub create: bool,
    /// The first offset to copy (`head + 1`: none).
    pub from: u64,
    /// Every group with any state.
    pub groups: Vec<GroupState>,
    /// Remembered delivery ids.
    pub claims: Vec<DeliveryClaim>,
}

/// Reads the source's state of `channel` and checks the target against it.
pub async fn plan(
    src: &SledStorage,
    dst: &JetStreamStorage,
    channel: &str,
) -> Result<ChannelPlan, MigrateError> {
    let earliest = src.earliest(channel).map_err(MigrateError::Source)?;
    let head = src.head(channel);
    // A stream a relay created at start and never wrote to counts as missing: it is
    // made to start at `earliest` as a missing one is created to.
    let span = dst
        .stream_span(channel)
        .await
        .map_err(MigrateError::Target)?
        .filter(|s| s.last > 0);
    let from = match span {
        Some(span) => check_events(src, dst, channel, (earliest, head), span).await?,
        None => earliest,
    };
    let groups = read_groups(src, channel).await?;
    check_groups(dst, channel, &groups).await?;
    let claims = src
        .delivery_claims(channel)
        .await
        .map_err(MigrateError::Source)?;
    Ok(ChannelPlan {
        channel: channel.to_string(),
        earliest,
        head,
        create: span.is_none(),
        from,
        groups,
        claims,
    })
}

/// The target's stream must start where the source does, end at or before its head,
/// and hold the source's events (checked by id at both ends); copying resumes after it.
async fn check_events(
    src: &SledStorage,
    dst: &JetStreamStorage,
    channel: &str,
    (earliest, head): (u64, u64),
    span: StreamSpan,
) -> Result<u64, MigrateError> {
    let bad = |why: String| Err(MigrateError::inconsistent(channel, why));
    if span.first != earliest {
        return bad(format!(
            "its stream starts at offset {}, the log's first retained offset is {earliest}",
            span.first
        ));
    }
    if span.last > head {
        return bad(format!(
            "its stream's head is {}, beyond the log's head {head} (did a relay append to it?)",
            span.last
        ));
    }
    if span.last >= span.first {
        for offset in [span.first, span.last] {
            let ours = src
                .get(channel, offset)
                .await
                .map_err(MigrateError::Source)?;
            let theirs = dst
                .stored_id(channel, offset)
                .await
                .map_err(MigrateError::Target)?;
            if ours.map(|r| r.id) != theirs {
                return bad(format!("the event at offset {offset} is a different event"));
            }
        }
    }
    Ok(span.last + 1)
}

async fn read_groups(src: &SledStorage, channel: &str) -> Result<Vec<GroupState>, MigrateError> {
    let source = MigrateError::Source;
    let mut out = Vec::new();
    for name in src.groups_with_state(channel).await.map_err(source)? {
        out.push(GroupState {
            cursor: src.cursor(channel, &name).map_err(source)?,
            letters: src.dead_letters(channel, &name).await.map_err(source)?,
            marks: src.redrive_marks(channel, &name).await.map_err(source)?,
            name,
        });
    }
    Ok(out)
}

/// Every cursor, dead letter and redrive mark already on the target must be the
/// source's (an interrupted copy), and every group there must be one of the source's.
async fn check_groups(
    dst: &JetStreamStorage,
    channel: &str,
    groups: &[GroupState],
) -> Result<(), MigrateError> {
    let bad = |why: String| Err(MigrateError::inconsistent(channel, why));
    for (name, cursor) in dst.groups(channel).await.map_err(MigrateError::Target)? {
        match groups.iter().find(|g| g.name == name) {
            None => return bad(format!("group {name:?} exists only on the target")),
            Some(g) if g.cursor != Some(cursor) => {
                return bad(format!(
                    "group {name:?} has cursor {cursor} on the target, {:?} in the log",
                    g.cursor
                ))
            }
            Some(_) => {}
        }
    }
    for g in groups {
        let letters = dst.dead_letters(channel, &g.name).await;
        for l in letters.map_err(MigrateError::Target)? {
            if !g.letters.contains(&l) {
                return bad(format!(
                    "group {:?} has a dead letter at offset {} that the log has not",
                    g.name, l.offset
                ));
            }
        }
        let marks = dst.redrives(channel, &g.name).await;
        for offset in marks.map_err(MigrateError::Target)? {
            if !g.marks.iter().any(|m| m.offset == offset) {
                return bad(format!(
                    "group {:?} has a redrive pending at offset {offset} that the log has not",
                    g.name
                ));
            }
        }
    }
    Ok(())
}
