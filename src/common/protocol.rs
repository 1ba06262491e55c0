//! The wire protocol between the relay's stream endpoint and agents.
//!
//! Each WebSocket *binary* message is one frame: a [`ClientMsg`] (agent → relay) or a
//! [`ServerMsg`] (relay → agent), encoded with bincode 2's standard configuration
//! (little-endian, variable-length integers; an enum is its variant index as a varint
//! followed by its fields). `docs/protocol.md` is the reference for other languages.
//!
//! Why this shape:
//! - **Version negotiation first** (`Hello`/`Welcome`), so a relay can serve old and new
//!   agents side by side.
//! - **Flow control by window**: a subscription names how many unacknowledged events it
//!   accepts; the relay never has more than that in flight, so a slow agent costs the
//!   relay a bounded amount of memory, not a growing buffer.
//! - **Events carry the stored record bytes** ([`crate::common::event::Record`] encoding, with its
//!   version byte), so the relay streams what is on disk without decoding and
//!   re-encoding it, and the agent sees exactly what was stored.

use bincode::{Decode, Encode};

/// The newest protocol version this build speaks. Version 2 added
/// [`ClientMsg::AckRange`]; everything else is as in version 1.
pub const PROTOCOL_VERSION: u16 = 2;

/// Every version this build speaks, oldest first: an agent offers them all in `Hello`,
/// and a relay picks the highest it shares with the agent.
pub const SUPPORTED_VERSIONS: &[u16] = &[1, PROTOCOL_VERSION];

/// The first version with [`ClientMsg::AckRange`].
pub const ACK_RANGE_VERSION: u16 = 2;

/// Largest frame an agent may send; client frames are small control messages.
pub const MAX_CLIENT_FRAME_BYTES: usize = 64 * 1024;

/// Largest frame the relay sends (an event holds a body of at most `max_body_bytes`
/// plus headers; this bound only protects the agent from a broken relay).
pub const MAX_SERVER_FRAME_BYTES: usize = 64 * 1024 * 1024;

/// How often each side sends a `Ping` when it has nothing else to say, by default: the
/// relay's `[server] stream_heartbeat_secs` overrides it and announces its value in
/// `Welcome.heartbeat_secs`, which the agent follows.
pub const HEARTBEAT_INTERVAL_SECS: u64 = 10;

/// By default, a peer silent for this long (no frame of any kind) is dropped: the
/// relay's `[server] stream_idle_timeout_secs` overrides it; an agent uses three
/// heartbeats of the relay (`Welcome.heartbeat_secs`), 30 s with the default.
pub const IDLE_TIMEOUT_SECS: u64 = 30;

/// The largest window a subscription may ask for; larger requests are clamped.
pub const MAX_WINDOW: u32 = 4096;

/// Where a consumer group *without* a committed cursor starts. A group with a cursor
/// always resumes at cursor + 1, whatever the start says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub enum Start {
    /// Resume at the committed cursor; a new group starts at the earliest retained event.
    Committed,
    /// The earliest retained event.
    Earliest,
    /// Only events appended after the subscription.
    Latest,
    /// This offset (it must be retained and at most head + 1).
    Offset(u64),
    /// The first retained event received at or after this time (unix ms), found by a
    /// binary search over received-at, never a scan; head + 1 when there is none.
    /// Added after version 1 shipped, at the end, so older encodings are unchanged.
    Time(u64),
}

/// Agent → relay.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub enum ClientMsg {
    /// First frame on a connection: the protocol versions the agent speaks.
    Hello {
        /// Every protocol version the agent speaks; the relay picks the highest shared one.
        versions: Vec<u16>,
        /// Free-form agent name and version, for the relay's logs.
        agent: String,
    },
    /// Start receiving a channel as a member of a consumer group. `sub` is chosen by the
    /// agent, unique on the connection, and tags every frame about this subscription.
    Subscribe {
        /// Subscription id chosen by the agent, unique on the connection.
        sub: u32,
        /// The channel to receive; the connection's token must grant it.
        channel: String,
        /// Consumer group name, `[A-Za-z0-9_-]{1,64}`; the group owns the cursor.
        group: String,
        /// Where to start if the group has no committed cursor yet.
        start: Start,
        /// Most unacknowledged events the agent accepts at once (1 = strict order).
        window: u32,
    },
    /// The local service accepted the event at `offset` (2xx).
    Ack {
        /// The subscription the event was delivered on.
        sub: u32,
        /// Offset of the acknowledged event.
        offset: u64,
    },
    /// The agent gave up on the event at `offset`; the relay records a dead letter for
    /// the group and counts the event as done, so the stream goes on.
    Nack {
        /// The subscription the event was delivered on.
        sub: u32,
        /// Offset of the event given up on.
        offset: u64,
        /// Why the agent gave up, for the dead letter (the relay keeps 1 024 bytes).
        reason: String,
        /// How many delivery attempts the agent made.
        attempts: u32,
        /// Last HTTP status from the local service, if it answered at all.
        last_status: Option<u16>,
    },
    /// Stop a subscription; unacknowledged events will be redelivered to the group.
    Unsubscribe {
        /// The subscription to end; an unknown id is ignored.
        sub: u32,
    },
    /// Heartbeat; the relay answers `Pong` with the same nonce.
    Ping {
        /// Arbitrary value echoed back in the `Pong`.
        nonce: u64,
    },
    /// Answer to the relay's `Ping`.
    Pong {
        /// The nonce of the `Ping` being answered.
        nonce: u64,
    },
    /// Read a channel without a consumer group (replay, tail): no cursor is read or
    /// moved and there is no standby; acks only return window credit, nacks are
    /// ignored. `start` is `Earliest`, `Latest`, `Time` or `Offset` (`Committed` means
    /// `Earliest`). Delivery stops after `to` (inclusive) if given; otherwise, without
    /// `follow`, at the head as of the subscription, with an `End` frame either way.
    Read {
        /// Subscription id chosen by the agent, unique on the connection.
        sub: u32,
        /// The channel to read; the connection's token must grant it.
        channel: String,
        /// First event to deliver (`Committed` means `Earliest`).
        start: Start,
        /// Last offset to deliver (inclusive), or `None` for no upper bound.
        to: Option<u64>,
        /// Keep delivering live events after the head instead of ending there.
        follow: bool,
        /// Most unacknowledged events the agent accepts at once.
        window: u32,
    },
    /// The local service accepted every event from `first` to `last` (inclusive): the
    /// same as one `Ack` per offset, in order, in one frame. Every offset in the range
    /// must be in flight. An agent coalesces acks of consecutive offsets into it, so a
    /// fast consumer sends one frame per burst instead of one per event. Protocol
    /// version 2; added at the end so that every version-1 encoding is unchanged.
    AckRange {
        /// The subscription the events were delivered on.
        sub: u32,
        /// First acknowledged offset (inclusive).
        first: u64,
        /// Last acknowledged offset (inclusive); never below `first`.
        last: u64,
    },
}

/// Relay → agent.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub enum ServerMsg {
    /// Answer to `Hello`: the version chosen for this connection.
    Welcome {
        /// The protocol version chosen for this connection.
        version: u16,
        /// The relay's name and version.
        relay: String,
        /// Seconds between the relay's heartbeats.
        heartbeat_secs: u32,
    },
    /// The subscription exists. When `active` is false the agent is a hot standby for
    /// the group and receives nothing until an `Active` frame.
    Subscribed {
        /// The agent's subscription id from `Subscribe` or `Read`.
        sub: u32,
        /// The first offset that will be delivered when active.
        next: u64,
        /// The channel's durable head at subscription time.
        head: u64,
        /// The window granted (the requested one, clamped to [`MAX_WINDOW`]).
        window: u32,
        /// Whether this subscription is the group's active consumer (false: hot standby).
        active: bool,
    },
    /// A standby subscription became the group's active consumer; delivery starts at `next`.
    Active {
        /// The standby subscription that is now active.
        sub: u32,
        /// The first offset that will be delivered: the group's acknowledged prefix + 1.
        next: u64,
    },
    /// One event. `record` is the stored record encoding: a version byte (1) followed by
    /// the bincode of [`crate::common::event::Record`].
    Event {
        /// The subscription this event is delivered on.
        sub: u32,
        /// The event's offset in its channel.
        offset: u64,
        /// The stored record bytes: version byte, then the bincode of the record.
        record: Vec<u8>,
    },
    /// Every durable event up to `head` has been sent; later events follow live.
    CaughtUp {
        /// The subscription that caught up.
        sub: u32,
        /// The channel's durable head; every event up to it has been sent.
        head: u64,
    },
    /// A refusal. With `sub`, it concerns that subscription (which is closed); without
    /// it, the connection, which the relay closes after this frame.
    Error {
        /// The subscription refused (and closed), or `None` for the whole connection.
        sub: Option<u32>,
        /// A stable code, listed in `docs/protocol.md`.
        code: String,
        /// A human-readable explanation; never holds a token.
        message: String,
    },
    /// Heartbeat; the agent answers `Pong` with the same nonce.
    Ping {
        /// Arbitrary value echoed back in the `Pong`.
        nonce: u64,
    },
    /// Answer to the agent's `Ping`.
    Pong {
        /// The nonce of the `Ping` being answered.
        nonce: u64,
    },
    /// A `Read` subscription delivered its whole range; the relay sends nothing more for it.
    End {
        /// The `Read` subscription that finished.
        sub: u32,
        /// The last offset of the range (the upper bound, whether or not an event had it).
        last: u64,
    },
}

/// Stable error codes of `ServerMsg::Error`.
pub mod codes {
    /// No protocol version in common.
    pub const UNSUPPORTED_VERSION: &str = "unsupported_version";
    /// A frame did not decode, was not binary, or came out of order (e.g. before Hello).
    pub const BAD_FRAME: &str = "bad_frame";
    /// A frame exceeded [`super::MAX_CLIENT_FRAME_BYTES`].
    pub const FRAME_TOO_LARGE: &str = "frame_too_large";
    /// The connection's token does not grant this channel.
    pub const FORBIDDEN_CHANNEL: &str = "forbidden_channel";
    /// No such channel is configured.
    pub const UNKNOWN_CHANNEL: &str = "unknown_channel";
    /// A group name outside `[A-Za-z0-9_-]{1,64}`.
    pub const INVALID_GROUP: &str = "invalid_group";
    /// The `sub` id is already in use on this connection.
    pub const DUPLICATE_SUBSCRIPTION: &str = "duplicate_subscription";
    /// An ack or nack for an offset that is not in flight, or an unknown `sub`.
    pub const UNKNOWN_OFFSET: &str = "unknown_offset";
    /// A start offset older than the earliest retained event.
    pub const OFFSET_COMPACTED: &str = "offset_compacted";
    /// A start offset beyond head + 1.
    pub const OFFSET_OUT_OF_RANGE: &str = "offset_out_of_range";
    /// The peer was silent for longer than the idle timeout (by default
    /// [`super::IDLE_TIMEOUT_SECS`]).
    pub const IDLE_TIMEOUT: &str = "idle_timeout";
    /// The relay is shutting down.
    pub const SHUTTING_DOWN: &str = "shutting_down";
    /// A storage or other internal failure.
    pub const INTERNAL: &str = "internal";
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<MAX_SERVER_FRAME_BYTES>()
}

/// A frame that could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("undecodable frame: {0}")]
pub struct FrameError(String);

impl ClientMsg {
    /// Encodes the message as one binary frame.
    pub fn encode(&self) -> Vec<u8> {
        bincode::encode_to_vec(self, config()).unwrap_or_default()
    }

    /// Decodes one frame; trailing bytes are an error (a frame is exactly one message).
    pub fn decode(bytes: &[u8]) -> Result<ClientMsg, FrameError> {
        decode_exact(bytes)
    }
}

impl ServerMsg {
    /// Encodes the message as one binary frame.
    pub fn encode(&self) -> Vec<u8> {
        bincode::encode_to_vec(self, config()).unwrap_or_default()
    }

    /// Decodes one frame; trailing bytes are an error (a frame is exactly one message).
    pub fn decode(bytes: &[u8]) -> Result<ServerMsg, FrameError> {
        decode_exact(bytes)
    }
}

fn decode_exact<T: Decode<()>>(bytes: &[u8]) -> Result<T, FrameError> {
    let (msg, used) =
        bincode::decode_from_slice(bytes, config()).map_err(|e| FrameError(e.to_string()))?;
    if used != bytes.len() {
        return Err(FrameError(format!("{} trailing bytes", bytes.len() - used)));
    }
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip() {
        let msgs = vec![
            ClientMsg::Hello {
                versions: vec![1],
                agent: "t".into(),
            },
            ClientMsg::Subscribe {
                sub: 1,
                channel: "c".into(),
                group: "g".into(),
                start: Start::Offset(5),
                window: 32,
            },
            ClientMsg::Nack {
                sub: 1,
                offset: 9,
                reason: "http 400".into(),
                attempts: 1,
                last_status: Some(400),
            },
        ];
        for m in msgs {
            assert_eq!(ClientMsg::decode(&m.encode()).expect("decodes"), m);
        }
        let read = ClientMsg::Read {
            sub: 2,
            channel: "c".into(),
            start: Start::Time(1_700_000_000_123),
            to: None,
            follow: false,
            window: 4,
        };
        assert_eq!(ClientMsg::decode(&read.encode()).expect("decodes"), read);
        let s = ServerMsg::Event {
            sub: 3,
            offset: 7,
            record: vec![1, 2, 3],
        };
        assert_eq!(ServerMsg::decode(&s.encode()).expect("decodes"), s);
    }

    #[test]
    fn documented_byte_layout() {
        // docs/protocol.md shows this example; keep them in sync.
        let m = ClientMsg::Ack {
            sub: 1,
            offset: 300,
        };
        assert_eq!(m.encode(), vec![2, 1, 251, 0x2c, 0x01]);
        // Version 2's AckRange is variant 8, after every version-1 message.
        let m = ClientMsg::AckRange {
            sub: 1,
            first: 1,
            last: 300,
        };
        assert_eq!(m.encode(), vec![8, 1, 1, 251, 0x2c, 0x01]);
        // `Start::Time` is variant 4 and a u64 of unix ms (docs/protocol.md, section 3).
        let mut want = vec![4, 253];
        want.extend_from_slice(&1_700_000_000_123u64.to_le_bytes());
        assert_eq!(
            bincode::encode_to_vec(Start::Time(1_700_000_000_123), config()).expect("encodes"),
            want
        );
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(ClientMsg::decode(&[]).is_err());
        assert!(ClientMsg::decode(&[200, 1, 2]).is_err());
        assert!(
            ClientMsg::decode(&[0, 0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).is_err()
        );
        let mut ok = ClientMsg::Ping { nonce: 1 }.encode();
        ok.push(0);
        assert!(ClientMsg::decode(&ok).is_err());
    }
}

/// A refusal of one request on the stream, with a stable code from
/// [`crate::common::protocol::codes`] and a message for a person. Messages never hold a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Refusal {
    /// The stable code, one of [`codes`].
    pub code: &'static str,
    /// What was refused and why, for a person.
    pub message: String,
}

impl Refusal {
    /// A refusal with `code` (one of [`codes`]) and a message for a person.
    pub fn new(code: &'static str, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            message: message.into(),
        }
    }

    /// The `Error` frame; `sub` is `None` when it concerns the whole connection.
    pub fn frame(&self, sub: Option<u32>) -> ServerMsg {
        ServerMsg::Error {
            sub,
            code: self.code.to_string(),
            message: self.message.clone(),
        }
    }
}
