//! Names of streams, subjects, buckets and keys.
//!
//! Channel names are `[A-Za-z0-9_-]`, which is valid in every NATS name; group names
//! may hold more, so key tokens that are not plain are written as `=` and hex.

use sha2::{Digest, Sha256};

/// Bucket of consumer groups' cursors (`{channel}.{group}` → offset).
pub const CURSORS: &str = "cursors";
/// Bucket of dead letters (`{channel}.{group}.{offset}` → letter).
pub const DEAD_LETTERS: &str = "deadletters";
/// Bucket of pending redrive marks (`{channel}.{group}.{offset}` → time).
pub const REDRIVES: &str = "redrives";
/// Bucket of delivery-id claims (`{channel}.{sha256(id)}` → offset, time, event id).
pub const DEDUP: &str = "dedup";
/// Bucket of group leases (`{channel}.{group}` → holder node), with a time to live.
pub const LEASES: &str = "leases";
/// Bucket of first retained offsets (`{channel}` → offset), raised by every purge.
pub const FIRSTS: &str = "firsts";
/// Bucket of per-channel settings learned at run time (`{channel}.{name}` → bytes).
pub const SETTINGS: &str = "settings";

/// Header with the record's received-at (unix ms), which each node's follower reads
/// (headers only) so that a writer placed after another node's event need not read it.
pub const RECEIVED_AT_HEADER: &str = "Hookrelay-Received-At";

/// Every name under one stream prefix.
#[derive(Debug, Clone)]
pub struct Names {
    prefix: String,
}

impl Names {
    /// Names under `prefix` (validated by the config).
    pub fn new(prefix: &str) -> Names {
        Names {
            prefix: prefix.to_string(),
        }
    }

    /// The channel's stream: `{prefix}_{channel}`.
    pub fn stream(&self, channel: &str) -> String {
        format!("{}_{}", self.prefix, channel)
    }

    /// The one subject of the channel's stream: `{prefix}.{channel}`.
    pub fn subject(&self, channel: &str) -> String {
        format!("{}.{}", self.prefix, channel)
    }

    /// The channel a stream of this prefix holds, if `stream` is one.
    pub fn channel_of<'a>(&self, stream: &'a str, subjects: &[String]) -> Option<&'a str> {
        let channel = stream.strip_prefix(&self.prefix)?.strip_prefix('_')?;
        // Another prefix may share ours as its start: the subject tells them apart.
        (subjects == [self.subject(channel)]).then_some(channel)
    }

    /// The core NATS subject of operators' actions: `{prefix}.control.groups` (three
    /// tokens, so no channel's stream captures it).
    pub fn control_subject(&self) -> String {
        format!("{}.control.groups", self.prefix)
    }

    /// A bucket of this prefix: `{prefix}_{what}`.
    pub fn bucket(&self, what: &str) -> String {
        format!("{}_{}", self.prefix, what)
    }
}

/// A name as one key token: itself when plain, else `=` and its hex.
pub fn token(name: &str) -> String {
    let plain = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if plain {
        name.to_string()
    } else {
        format!("={}", hex::encode(name))
    }
}

/// The name a [`token`] stands for.
pub fn untoken(token: &str) -> Option<String> {
    match token.strip_prefix('=') {
        Some(h) => String::from_utf8(hex::decode(h).ok()?).ok(),
        None => Some(token.to_string()),
    }
}

/// Key of a group's cursor.
pub fn cursor_key(channel: &str, group: &str) -> String {
    format!("{}.{}", token(channel), token(group))
}

/// Key of a dead letter or redrive mark; the offset is zero-padded so keys sort.
pub fn letter_key(channel: &str, group: &str, offset: u64) -> String {
    format!("{}.{}.{offset:020}", token(channel), token(group))
}

/// Key of a delivery id's claim: ids are hashed, as they may hold anything.
pub fn dedup_key(channel: &str, id: &str) -> String {
    format!("{}.{}", token(channel), hex::encode(Sha256::digest(id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_stay_valid() {
        for name in ["g", "a-b_c", "with space", "dots.in.it", ""] {
            let t = token(name);
            assert!(t
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"=_-".contains(&b)));
            assert_eq!(untoken(&t).as_deref(), Some(name));
        }
    }

    #[test]
    fn streams_of_another_prefix_are_not_ours() {
        let n = Names::new("hr");
        assert_eq!(n.channel_of("hr_c", &["hr.c".into()]), Some("c"));
        assert_eq!(n.channel_of("hr_x_c", &["hr_x.c".into()]), None);
        assert_eq!(n.channel_of("KV_hr_cursors", &[]), None);
    }
}
