//! What every handshake file shares: the request's parts, query parsing, and the
//! answers' shapes. A leaf: the handshake files import it, it imports none of them.

use http::{HeaderMap, HeaderValue, Method};
use serde::Serialize;

use crate::common::verify::HandshakeKind;

/// Longest value (challenge, token) a handshake echoes, in bytes: providers send
/// short random strings, and an echo must not become a reflection channel for
/// anything bigger.
pub const MAX_ECHO_BYTES: usize = 1024;

/// The parts of a request a handshake looks at.
pub struct Req<'a> {
    /// The request method.
    pub method: &'a Method,
    /// The raw query string, without `?`.
    pub query: &'a str,
    /// The request headers.
    pub headers: &'a HeaderMap,
}

/// A handshake's answer, and which one it was (for the log line).
pub struct Answer {
    /// What the provider gets.
    pub response: warp::reply::Response,
    /// Which handshake.
    pub kind: HandshakeKind,
}

impl Req<'_> {
    /// The first value of query parameter `name`, form-decoded (`+` is a space).
    pub fn param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k) == name).then(|| decode(v))
        })
    }

    /// A header's value as text, if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)?.to_str().ok()
    }
}

fn decode(s: &str) -> String {
    let spaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

/// Whether `value` may be echoed: non-empty, at most [`MAX_ECHO_BYTES`], and printable
/// ASCII (what providers send; anything else is not their handshake).
pub fn echoable(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_ECHO_BYTES
        && value.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
}

/// 200 `text/plain` with `text`; `nosniff` so that no browser ever renders an echo.
pub fn text(text: String) -> warp::reply::Response {
    let mut resp = http::Response::new(text.into());
    let h = resp.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// 200 JSON.
pub fn json<T: Serialize>(value: &T) -> warp::reply::Response {
    let mut resp = crate::relay::api_error::json_ok(value);
    resp.headers_mut().insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_form_decoded_and_first_wins() {
        let headers = HeaderMap::new();
        let req = Req {
            method: &Method::GET,
            query: "a=1&hub.challenge=x%20y+z&a=2&empty&validationToken=V%3A%20t",
            headers: &headers,
        };
        assert_eq!(req.param("a").as_deref(), Some("1"));
        assert_eq!(req.param("hub.challenge").as_deref(), Some("x y z"));
        assert_eq!(req.param("empty").as_deref(), Some(""));
        assert_eq!(req.param("validationToken").as_deref(), Some("V: t"));
        assert_eq!(req.param("missing"), None);
    }

    #[test]
    fn only_short_printable_values_are_echoed() {
        assert!(echoable("1158201444"));
        assert!(echoable("Validation: Testing"));
        assert!(!echoable(""));
        assert!(!echoable("a\nb"));
        assert!(!echoable("é"));
        assert!(!echoable(&"a".repeat(MAX_ECHO_BYTES + 1)));
    }
}
