//! What an agent's WebSocket message is, before any connection state: the message
//! classified and decoded, and the version chosen from a `Hello`. Pure functions, so
//! each refusal and its code is checked without a socket.

use bincode::error::DecodeError;

use super::socket::Message;
use crate::common::protocol::{
    codes, ClientMsg, Refusal, MAX_CLIENT_FRAME_BYTES, MAX_SERVER_FRAME_BYTES, SUPPORTED_VERSIONS,
};

/// The names of the agent's frame types, by type number (docs/protocol.md).
const CLIENT_FRAME_NAMES: [&str; 9] = [
    "Hello",
    "Subscribe",
    "Ack",
    "Nack",
    "Unsubscribe",
    "Ping",
    "Pong",
    "Read",
    "AckRange",
];

/// One WebSocket message from an agent.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Inbound {
    /// The agent closes the connection.
    Close,
    /// A WebSocket-level ping or pong: it only resets the idle timer.
    Heartbeat,
    /// A protocol frame.
    Frame(ClientMsg),
}

/// Classifies and decodes one message; anything that is not a protocol frame is
/// refused with `bad_frame` or `frame_too_large` (the connection then ends).
pub(crate) fn decode(m: Message) -> Result<Inbound, Refusal> {
    if m.is_close() {
        return Ok(Inbound::Close);
    }
    if m.is_text() {
        return Err(Refusal::new(
            codes::BAD_FRAME,
            "text frames are not part of the protocol: send each frame as a binary message",
        ));
    }
    let Message::Binary(bytes) = m else {
        // Pings and pongs; raw frames are never surfaced by tungstenite's reader.
        return Ok(Inbound::Heartbeat);
    };
    if bytes.len() > MAX_CLIENT_FRAME_BYTES {
        return Err(Refusal::new(
            codes::FRAME_TOO_LARGE,
            format!(
                "a frame of {} bytes exceeds the limit of {MAX_CLIENT_FRAME_BYTES} bytes",
                bytes.len()
            ),
        ));
    }
    ClientMsg::decode(&bytes)
        .map(Inbound::Frame)
        .map_err(|_| Refusal::new(codes::BAD_FRAME, undecodable(&bytes)))
}

/// What is wrong with a frame that did not decode, in a sentence for a person (the
/// decoder's own errors are Rust debug text). The frame is decoded again for the
/// details, the way [`ClientMsg::decode`] does: this only runs on a connection's last
/// frame.
fn undecodable(bytes: &[u8]) -> String {
    let Some(&tag) = bytes.first() else {
        return "the frame is empty: each frame is one protocol message".into();
    };
    let config = bincode::config::standard().with_limit::<MAX_SERVER_FRAME_BYTES>();
    let name = CLIENT_FRAME_NAMES.get(usize::from(tag)).copied();
    let problem = match bincode::decode_from_slice::<ClientMsg, _>(bytes, config) {
        Ok((_, used)) => match bytes.len() - used {
            1 => "has 1 byte after its end".to_string(),
            n => format!("has {n} bytes after its end"),
        },
        Err(DecodeError::UnexpectedVariant { found, .. }) if name.is_none() => {
            return format!(
                "frame type {found} is not part of the protocol; this relay knows types 0 to {}",
                CLIENT_FRAME_NAMES.len() - 1
            );
        }
        Err(e) => field_problem(&e),
    };
    format!("the {} frame {problem}", name.unwrap_or("agent's"))
}

/// A decoder error about a field, as the end of a sentence.
fn field_problem(e: &DecodeError) -> String {
    match e {
        DecodeError::UnexpectedEnd { .. } => "ends before its last field".into(),
        DecodeError::LimitExceeded => "declares a length larger than a frame can be".into(),
        DecodeError::Utf8 { .. } => "holds text that is not valid UTF-8".into(),
        DecodeError::InvalidBooleanValue(v) => {
            format!("holds {v} where a boolean, 0 or 1, belongs")
        }
        DecodeError::UnexpectedVariant { found, .. } => {
            format!("holds the unknown choice {found} in one of its fields")
        }
        _ => "holds a field that is not encoded as the protocol says".into(),
    }
}

/// The version for a connection: the highest this relay shares with the agent.
pub(crate) fn negotiate(offered: &[u16]) -> Result<u16, Refusal> {
    offered
        .iter()
        .copied()
        .filter(|v| SUPPORTED_VERSIONS.contains(v))
        .max()
        .ok_or_else(|| {
            Refusal::new(
                codes::UNSUPPORTED_VERSION,
                format!(
                    "no protocol version in common: this relay speaks {SUPPORTED_VERSIONS:?}, \
                     the agent offered {} version(s), none of them",
                    offered.len()
                ),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::protocol::{ServerMsg, PROTOCOL_VERSION};

    fn binary(bytes: Vec<u8>) -> Message {
        Message::Binary(bytes.into())
    }

    /// The `Error` frame a refusal of the whole connection becomes.
    fn error_code(r: Refusal) -> String {
        match r.frame(None) {
            ServerMsg::Error {
                sub: None, code, ..
            } => code,
            other => panic!("not a connection error: {other:?}"),
        }
    }

    #[test]
    fn the_highest_shared_version_wins() {
        assert_eq!(negotiate(&[1]), Ok(1));
        assert_eq!(negotiate(&[1, PROTOCOL_VERSION]), Ok(PROTOCOL_VERSION));
        assert_eq!(negotiate(&[PROTOCOL_VERSION, 1, 99]), Ok(PROTOCOL_VERSION));
        for offered in [&[][..], &[0], &[99, 1000]] {
            let r = negotiate(offered).expect_err("nothing in common");
            assert_eq!(error_code(r.clone()), codes::UNSUPPORTED_VERSION);
            assert!(
                r.message.contains(&format!("{} version(s)", offered.len())),
                "{}",
                r.message
            );
        }
    }

    #[test]
    fn frames_decode_and_websocket_control_messages_are_told_apart() {
        let ping = ClientMsg::Ping { nonce: 7 };
        assert_eq!(decode(binary(ping.encode())), Ok(Inbound::Frame(ping)));
        assert_eq!(decode(Message::Close(None)), Ok(Inbound::Close));
        assert_eq!(
            decode(Message::Ping(vec![1].into())),
            Ok(Inbound::Heartbeat)
        );
        assert_eq!(decode(Message::Pong(vec![].into())), Ok(Inbound::Heartbeat));
    }

    #[test]
    fn undecodable_frames_are_told_in_words() {
        let mut trailing = ClientMsg::Pong { nonce: 1 }.encode();
        trailing.extend([0, 0]);
        let ack = ClientMsg::Ack { sub: 1, offset: 1 }.encode();
        for (bytes, want) in [
            (
                vec![],
                "the frame is empty: each frame is one protocol message",
            ),
            (
                vec![9],
                "frame type 9 is not part of the protocol; this relay knows types 0 to 8",
            ),
            (trailing, "the Pong frame has 2 bytes after its end"),
            (
                ack[..2].to_vec(),
                "the Ack frame ends before its last field",
            ),
            (
                vec![7, 1, 1, 1, 0, 0, 5, 1],
                "the Read frame holds 5 where a boolean, 0 or 1, belongs",
            ),
            (
                vec![1, 1, 1, b'c', 1, b'g', 9, 1],
                "the Subscribe frame holds the unknown choice 9 in one of its fields",
            ),
            (
                vec![4, 1, 0xff],
                "the Unsubscribe frame has 1 byte after its end",
            ),
        ] {
            let r = decode(binary(bytes.clone())).expect_err("undecodable");
            assert_eq!(
                (r.code, r.message.as_str()),
                (codes::BAD_FRAME, want),
                "{bytes:?}"
            );
        }
    }

    #[test]
    fn what_is_no_frame_is_refused_with_a_code() {
        let text = decode(Message::text("{}")).expect_err("text");
        assert_eq!(error_code(text), codes::BAD_FRAME);
        for garbage in [vec![], vec![200, 1, 2], {
            let mut trailing = ClientMsg::Ping { nonce: 1 }.encode();
            trailing.push(0);
            trailing
        }] {
            let r = decode(binary(garbage.clone())).expect_err("garbage");
            assert_eq!(error_code(r), codes::BAD_FRAME, "{garbage:?}");
        }
        let big = decode(binary(vec![0; MAX_CLIENT_FRAME_BYTES + 1])).expect_err("too large");
        assert!(big.message.contains(&MAX_CLIENT_FRAME_BYTES.to_string()));
        assert_eq!(error_code(big), codes::FRAME_TOO_LARGE);
        // Exactly at the limit is decoded (and is garbage here).
        let at = decode(binary(vec![0; MAX_CLIENT_FRAME_BYTES])).expect_err("garbage");
        assert_eq!(at.code, codes::BAD_FRAME);
    }
}
