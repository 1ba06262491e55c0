//! Key layout of the single sled tree that holds the log.
//!
//! Everything lives in one tree so that one `sled::Batch` can write an event, its
//! channel's head and its dedup entry atomically: after a crash either all of them
//! exist or none does, which is what keeps offsets dense (guarantee 2). Channel and
//! group names are `[A-Za-z0-9_-]`, so the `\0` separator can never occur inside them,
//! and offsets are big-endian so that byte order is numeric order.

/// Kind byte of an event key: `e\0{channel}\0{offset}`, value the stored record.
pub const EVENT: u8 = b'e';
/// Kind byte of a channel head key: `h\0{channel}`, value the last assigned offset.
pub const HEAD: u8 = b'h';
/// Kind byte of a dedup key: `d\0{channel}\0{delivery id}`, remembering a delivery id.
pub const DEDUP: u8 = b'd';
/// Kind byte of a cursor key: `c\0{channel}\0{group}`, value the group's committed offset.
pub const CURSOR: u8 = b'c';
/// Kind byte of a dead-letter key: `l\0{channel}\0{group}\0{offset}`.
pub const DEAD_LETTER: u8 = b'l';
/// A dead letter an operator asked to redeliver (redrive), until that delivery settles.
pub const REDRIVE: u8 = b'r';

fn key(kind: u8, parts: &[&[u8]]) -> Vec<u8> {
    let len = 1 + parts.iter().map(|p| p.len() + 1).sum::<usize>();
    let mut k = Vec::with_capacity(len);
    k.push(kind);
    for p in parts {
        k.push(0);
        k.extend_from_slice(p);
    }
    k
}

/// `e\0{channel}\0` — every event of a channel, in offset order.
pub fn event_prefix(channel: &str) -> Vec<u8> {
    let mut k = key(EVENT, &[channel.as_bytes()]);
    k.push(0);
    k
}

/// `e\0{channel}\0{offset}` — the key of one stored event.
pub fn event(channel: &str, offset: u64) -> Vec<u8> {
    key(EVENT, &[channel.as_bytes(), &offset.to_be_bytes()])
}

/// The offset encoded at the end of an event or dead-letter key.
pub fn trailing_offset(key: &[u8]) -> Option<u64> {
    let tail = key.get(key.len().checked_sub(8)?..)?;
    Some(u64::from_be_bytes(tail.try_into().ok()?))
}

/// `h\0` — the prefix of all channel heads.
pub fn head_prefix() -> Vec<u8> {
    key(HEAD, &[])
}

/// The last offset ever assigned in a channel; survives retention, so offsets are never reused.
pub fn head(channel: &str) -> Vec<u8> {
    key(HEAD, &[channel.as_bytes()])
}

/// `d\0` — the prefix of every dedup entry, of all channels (for expiry sweeps).
pub fn dedup_prefix() -> Vec<u8> {
    key(DEDUP, &[])
}

/// `d\0{channel}\0{delivery_id}` — a delivery id seen on a channel.
pub fn dedup(channel: &str, delivery_id: &str) -> Vec<u8> {
    key(DEDUP, &[channel.as_bytes(), delivery_id.as_bytes()])
}

/// `c\0{channel}\0` — every consumer group cursor of a channel.
pub fn cursor_prefix(channel: &str) -> Vec<u8> {
    let mut k = key(CURSOR, &[channel.as_bytes()]);
    k.push(0);
    k
}

/// `c\0{channel}\0{group}` — a group's committed cursor (last acknowledged offset).
pub fn cursor(channel: &str, group: &str) -> Vec<u8> {
    key(CURSOR, &[channel.as_bytes(), group.as_bytes()])
}

/// `l\0{channel}\0{group}\0` — a group's dead letters, in offset order.
pub fn dead_letter_prefix(channel: &str, group: &str) -> Vec<u8> {
    let mut k = key(DEAD_LETTER, &[channel.as_bytes(), group.as_bytes()]);
    k.push(0);
    k
}

/// The dead letter a group recorded for the event at `offset`.
pub fn dead_letter(channel: &str, group: &str, offset: u64) -> Vec<u8> {
    key(
        DEAD_LETTER,
        &[channel.as_bytes(), group.as_bytes(), &offset.to_be_bytes()],
    )
}

/// `r\0{channel}\0{group}\0` — a group's pending redrives, in offset order.
pub fn redrive_prefix(channel: &str, group: &str) -> Vec<u8> {
    let mut k = key(REDRIVE, &[channel.as_bytes(), group.as_bytes()]);
    k.push(0);
    k
}

/// Marks the dead letter at `offset` as pending redelivery; the value is when it was asked.
pub fn redrive(channel: &str, group: &str, offset: u64) -> Vec<u8> {
    key(
        REDRIVE,
        &[channel.as_bytes(), group.as_bytes(), &offset.to_be_bytes()],
    )
}

/// A stored number (head, cursor, redrive time): 8 bytes big-endian.
pub fn encode_u64(v: u64) -> [u8; 8] {
    v.to_be_bytes()
}

/// Reads [`encode_u64`]'s form from the first 8 bytes; `None` when there are fewer.
pub fn decode_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_sort_numerically_and_round_trip() {
        let a = event("c", 255);
        let b = event("c", 256);
        assert!(a < b);
        assert!(a.starts_with(&event_prefix("c")));
        assert!(!event("cc", 1).starts_with(&event_prefix("c")));
        assert_eq!(trailing_offset(&b), Some(256));
    }
}
