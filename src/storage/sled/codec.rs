//! The byte forms of the small values kept beside events: dead letters and dedup
//! entries. (Events are [`crate::common::event::Record`]s; keys are in `keys`.)

use super::keys;
use crate::storage::types::DeadLetter;

/// A dead letter as stored (bincode).
pub(crate) fn encode_dead_letter(d: &DeadLetter) -> Vec<u8> {
    bincode::encode_to_vec(d, bincode::config::standard()).unwrap_or_default()
}

/// A stored dead letter; `None` if it does not decode.
pub(crate) fn decode_dead_letter(bytes: &[u8]) -> Option<DeadLetter> {
    bincode::decode_from_slice(bytes, bincode::config::standard())
        .ok()
        .map(|(d, _)| d)
}

/// Dedup entry: offset, first-seen unix ms, original event id.
pub(crate) fn encode_dedup(offset: u64, at_ms: u64, id: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(16 + id.len());
    v.extend_from_slice(&offset.to_be_bytes());
    v.extend_from_slice(&at_ms.to_be_bytes());
    v.extend_from_slice(id.as_bytes());
    v
}

/// A stored dedup entry: (offset, first-seen unix ms, original event id).
pub(crate) fn decode_dedup(v: &[u8]) -> Option<(u64, u64, String)> {
    let offset = keys::decode_u64(v)?;
    let at = keys::decode_u64(v.get(8..)?)?;
    let id = String::from_utf8(v.get(16..)?.to_vec()).ok()?;
    Some((offset, at, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_garbage_is_none() {
        let d = DeadLetter {
            offset: 9,
            reason: "http 400".into(),
            attempts: 3,
            last_status: Some(400),
            at_ms: 77,
        };
        assert_eq!(decode_dead_letter(&encode_dead_letter(&d)), Some(d));
        assert_eq!(decode_dead_letter(&[0xff; 3]), None);
        assert_eq!(
            decode_dedup(&encode_dedup(5, 6, "evt_x")),
            Some((5, 6, "evt_x".to_string()))
        );
        assert_eq!(decode_dedup(&[1, 2, 3]), None);
    }
}
