//! The stored form of one event and its JSON view.
//!
//! Records are bincode 2 with a leading version byte, so that a later format can be
//! read side by side with this one. Headers are kept as (name, raw value bytes) in the
//! order received, and the body as the exact bytes: nothing here parses a body.

use base64::Engine;
use bincode::{Decode, Encode};
use serde::Serialize;

/// Format version written as the first byte of every stored record.
pub const RECORD_VERSION: u8 = 1;

/// Largest record the decoder accepts (bodies are limited far below this at ingest);
/// it bounds the allocation a corrupt length prefix could ask for.
const MAX_RECORD_BYTES: usize = 256 * 1024 * 1024;

/// One accepted webhook, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Record {
    /// Event id, stable across redeliveries: the idempotency key the agent forwards.
    pub id: String,
    /// Name of the channel the webhook arrived on.
    pub channel: String,
    /// Position in the channel's log: 1, 2, 3, … with no gap and no reuse.
    pub offset: u64,
    /// Unix milliseconds, non-decreasing within a channel.
    pub received_at_ms: u64,
    /// HTTP method of the webhook request, as received.
    pub method: String,
    /// Path suffix after `/hooks/{channel}`, with its leading `/`, or empty.
    pub path: String,
    /// Raw query string without the `?`, or empty.
    pub query: String,
    /// Every request header in the order received: lowercase name, raw value bytes.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The exact request body bytes; forwarded byte for byte, never re-serialized.
    pub body: Vec<u8>,
    /// Address of the sender as the relay saw it.
    pub peer: String,
    /// The scheme that verified the event (`none` included).
    pub scheme: String,
}

/// A borrowed view with exactly [`Record`]'s field order and types, so it encodes to
/// the same bytes. The committer encodes through it straight from the request's
/// buffers instead of first copying the body into an owned `Record`.
#[derive(Encode)]
pub struct RecordRef<'a> {
    /// [`Record::id`]: the event id.
    pub id: &'a str,
    /// [`Record::channel`]: the channel name.
    pub channel: &'a str,
    /// [`Record::offset`]: position in the channel's log.
    pub offset: u64,
    /// [`Record::received_at_ms`]: unix milliseconds when the relay received it.
    pub received_at_ms: u64,
    /// [`Record::method`]: the HTTP method.
    pub method: &'a str,
    /// [`Record::path`]: path suffix after `/hooks/{channel}`, or empty.
    pub path: &'a str,
    /// [`Record::query`]: raw query string without the `?`, or empty.
    pub query: &'a str,
    /// [`Record::headers`]: lowercase names and raw values, in order received.
    pub headers: &'a [(String, Vec<u8>)],
    /// [`Record::body`]: the exact body bytes.
    pub body: &'a [u8],
    /// [`Record::peer`]: the sender's address as the relay saw it.
    pub peer: &'a str,
    /// [`Record::scheme`]: the scheme that verified the event.
    pub scheme: &'a str,
}

impl RecordRef<'_> {
    /// The stored form: version byte, then the bincode of the fields.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            self.body.len()
                + 64
                + self
                    .headers
                    .iter()
                    .map(|(n, v)| n.len() + v.len() + 2)
                    .sum::<usize>(),
        );
        out.push(RECORD_VERSION);
        if let Err(e) = bincode::encode_into_std_write(self, &mut out, config()) {
            tracing::error!(error = %e, "record encoding failed");
        }
        out
    }
}

/// A stored record that cannot be decoded.
#[derive(Debug, thiserror::Error)]
#[error("corrupt record: {0}")]
pub struct DecodeError(String);

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_RECORD_BYTES>()
}

impl Record {
    /// The stored form: version byte, then the bincode of the fields.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len() + 256);
        out.push(RECORD_VERSION);
        // Encoding into a Vec cannot fail for these plain types.
        if let Err(e) = bincode::encode_into_std_write(self, &mut out, config()) {
            tracing::error!(error = %e, "record encoding failed");
        }
        out
    }

    /// Reads a stored record; an unknown version byte or a malformed body is an error.
    pub fn decode(bytes: &[u8]) -> Result<Record, DecodeError> {
        match bytes.split_first() {
            Some((&RECORD_VERSION, rest)) => bincode::decode_from_slice(rest, config())
                .map(|(r, _)| r)
                .map_err(|e| DecodeError(e.to_string())),
            Some((v, _)) => Err(DecodeError(format!("unknown record version {v}"))),
            None => Err(DecodeError("empty record".into())),
        }
    }

    /// The JSON shape shared by `tail` and the admin events route.
    pub fn to_json(&self) -> EventJson<'_> {
        let (body, body_base64) = match std::str::from_utf8(&self.body) {
            Ok(text) => (Some(text), None),
            Err(_) => (
                None,
                Some(base64::engine::general_purpose::STANDARD.encode(&self.body)),
            ),
        };
        EventJson {
            channel: &self.channel,
            offset: self.offset,
            id: &self.id,
            received_at: crate::common::time::format_time_ms(self.received_at_ms),
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: self
                .headers
                .iter()
                .map(|(n, v)| (n.as_str(), String::from_utf8_lossy(v).into_owned()))
                .collect(),
            body,
            body_base64,
        }
    }
}

/// `{"channel","offset","id","received_at","method","path","query","headers","body"}`.
#[derive(Debug, Serialize)]
pub struct EventJson<'a> {
    /// The channel name.
    pub channel: &'a str,
    /// Position in the channel's log.
    pub offset: u64,
    /// The event id (`evt_...`).
    pub id: &'a str,
    /// When the relay received it, RFC 3339 UTC with milliseconds.
    pub received_at: String,
    /// HTTP method of the webhook.
    pub method: &'a str,
    /// Path suffix after `/hooks/{channel}`, or empty.
    pub path: &'a str,
    /// Raw query string without the `?`, or empty.
    pub query: &'a str,
    /// Headers in order received; values decoded as UTF-8 lossily, for reading only.
    pub headers: Vec<(&'a str, String)>,
    /// The body as text when it is valid UTF-8; omitted otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<&'a str>,
    /// The body in standard base64 when it is not valid UTF-8; omitted otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_base64: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(body: &[u8]) -> Record {
        Record {
            id: "evt_1".into(),
            channel: "c".into(),
            offset: 7,
            received_at_ms: 1_700_000_000_123,
            method: "POST".into(),
            path: "/a/b".into(),
            query: "x=1&y=%20".into(),
            headers: vec![
                ("x-a".into(), vec![0xff, b'v']),
                ("x-a".into(), b"2".to_vec()),
            ],
            body: body.to_vec(),
            peer: "127.0.0.1:9".into(),
            scheme: "github".into(),
        }
    }

    #[test]
    fn round_trip_is_exact() {
        let r = sample(&[0, 159, 146, 150, 255]);
        assert_eq!(Record::decode(&r.encode()).expect("decodes"), r);
    }

    #[test]
    fn borrowed_view_encodes_identically() {
        let r = sample(&[1, 2, 3, 255]);
        let view = RecordRef {
            id: &r.id,
            channel: &r.channel,
            offset: r.offset,
            received_at_ms: r.received_at_ms,
            method: &r.method,
            path: &r.path,
            query: &r.query,
            headers: &r.headers,
            body: &r.body,
            peer: &r.peer,
            scheme: &r.scheme,
        };
        assert_eq!(view.encode(), r.encode());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(Record::decode(&[]).is_err());
        assert!(Record::decode(&[9, 1, 2]).is_err());
        assert!(Record::decode(&[RECORD_VERSION, 0xff, 0xff, 0xff, 0xff, 0xff]).is_err());
    }

    #[test]
    fn json_uses_base64_only_for_binary() {
        let r = sample(b"{\"a\":1}");
        let v = serde_json::to_value(r.to_json()).expect("json");
        assert_eq!(v["body"], "{\"a\":1}");
        assert!(v.get("body_base64").is_none());
        assert_eq!(v["received_at"], "2023-11-14T22:13:20.123Z");
        let r = sample(&[0xff, 0]);
        let v = serde_json::to_value(r.to_json()).expect("json");
        assert!(v.get("body").is_none());
        assert_eq!(v["body_base64"], "/wA=");
    }
}
