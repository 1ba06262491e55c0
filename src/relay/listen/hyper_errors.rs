//! JSON bodies for the refusals hyper writes itself.
//!
//! hyper answers a request it cannot parse — a malformed request line or header (400),
//! more than 100 headers or a head over 64 KiB (431), a target too long (414) — on its
//! own, with an empty body, before any service of ours is called. Every refusal of the
//! relay must be `{"error": "<code>", "message": "..."}`, so those answers are
//! replaced on their way to the socket.
//!
//! Why here, in the socket wrapper, and not another way:
//! - Parsing heads ourselves before hyper (httparse with the same limits) would work for
//!   the first request only: on a keep-alive connection the next head starts wherever
//!   the previous body ended, and finding that means re-implementing HTTP/1 framing.
//! - Waiting for hyper's connection to return its parse error is too late: by then
//!   hyper has written and flushed its empty answer.
//! - hyper's automatic answers have one fixed shape: written only while no response is
//!   in progress (so at the start of a write), a 400/414/431 status line, `content-length:
//!   0` and no `content-type`. Every response of the relay's own routes is JSON with a
//!   `content-type`, so that shape cannot be ours. [`replacement`] recognises it and the
//!   socket wrapper writes the JSON answer instead, then closes lingering (the client
//!   may still be sending the rest of an oversized head).
//!
//! The one case left as hyper wrote it: a parse error on a pipelined request while the
//! previous response is still partly unsent (then hyper's answer does not start a
//! write). HTTP/2 has no such answers (hyper resets the stream).

use http::StatusCode;

use crate::relay::api_error::ApiError;

/// The statuses hyper answers parse errors with, with the relay's code and message.
fn refusal(status: &[u8]) -> Option<ApiError> {
    let (status, code, message) = match status {
        b"400" => (
            StatusCode::BAD_REQUEST,
            "bad_request",
            "the request line or a header could not be parsed",
        ),
        b"414" => (
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            "the request target is too long",
        ),
        b"431" => (
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request_header_fields_too_large",
            "the request head is too large: at most 100 headers and 64 KiB",
        ),
        _ => return None,
    };
    Some(ApiError::new(status, code, message))
}

/// If `buf` starts with one of hyper's automatic answers: how many bytes of `buf` it
/// takes, and the JSON answer to write instead.
pub fn replacement(buf: &[u8]) -> Option<(usize, Vec<u8>)> {
    if !(buf.starts_with(b"HTTP/1.1 ") || buf.starts_with(b"HTTP/1.0 ")) {
        return None;
    }
    let error = refusal(buf.get(9..12)?)?;
    let head_len = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = buf[..head_len].to_ascii_lowercase();
    let has = |needle: &[u8]| head.windows(needle.len()).any(|w| w == needle);
    if !has(b"\r\ncontent-length: 0\r\n") || has(b"\r\ncontent-type:") {
        return None;
    }
    Some((head_len, error.http1_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYPER_431: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: Wed, 25 Nov 2026 13:16:13 GMT\r\n\r\n";

    #[test]
    fn hyper_answers_become_json() {
        let (used, bytes) = replacement(HYPER_431).expect("replaced");
        assert_eq!(used, HYPER_431.len());
        let text = String::from_utf8(bytes).expect("utf-8");
        assert!(
            text.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
            "{text}"
        );
        assert!(
            text.contains("\r\ncontent-type: application/json\r\n"),
            "{text}"
        );
        let body: serde_json::Value =
            serde_json::from_str(text.split("\r\n\r\n").nth(1).expect("body")).expect("json");
        assert_eq!(body["error"], "request_header_fields_too_large");
        let len = text.split("\r\n\r\n").nth(1).expect("body").len();
        assert!(
            text.contains(&format!("\r\ncontent-length: {len}\r\n")),
            "{text}"
        );

        let bad = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";
        let (_, bytes) = replacement(bad).expect("replaced");
        assert!(String::from_utf8_lossy(&bytes).contains("\"error\":\"bad_request\""));
    }

    #[test]
    fn the_relays_own_answers_are_left_alone() {
        let ours = ApiError::bad_request("nope").http1_bytes();
        assert_eq!(replacement(&ours), None);
        for other in [
            &b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 10\r\n\r\n0123456789",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n",
            b"\x00\x00\x12\x04\x00\x00\x00\x00\x00",
        ] {
            assert_eq!(
                replacement(other),
                None,
                "{:?}",
                String::from_utf8_lossy(other)
            );
        }
    }
}
