//! Request checks for the console's cookie sessions: reading the session cookie, and
//! deciding whether a state-changing request came from the relay's own pages (its
//! `Origin`, else its `Referer`, names the host the request was sent to, or the
//! configured `public_url`). Pure functions, so they are tested without a server.

use subtle::ConstantTimeEq;

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header
        .split(';')
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// The `host[:port]` of an absolute `http(s)://` URL, lower-cased.
pub fn authority(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let auth = &rest[..end];
    (!auth.is_empty() && !auth.contains('@')).then(|| auth.to_ascii_lowercase())
}

/// Whether the request's `Origin` (or, without one, its `Referer`) is the relay itself:
/// the `Host` it was sent to. Neither header present is a refusal: browsers send
/// `Origin` on every cross-origin and same-origin POST. Behind a reverse proxy, the
/// proxy must pass the original `Host` on.
pub fn same_origin(origin: Option<&str>, referer: Option<&str>, host: Option<&str>) -> bool {
    let Some(from) = origin.or(referer).and_then(authority) else {
        return false;
    };
    host.map(str::to_ascii_lowercase).as_deref() == Some(from.as_str())
}

/// Constant-time equality of a sent CSRF token and the session's.
pub fn token_matches(sent: &str, expected: &str) -> bool {
    !expected.is_empty() && bool::from(sent.as_bytes().ct_eq(expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_by_name() {
        let h = "a=1; hookrelay_session=abc ; b=2";
        assert_eq!(cookie(h, "hookrelay_session"), Some("abc"));
        assert_eq!(cookie(h, "c"), None);
        assert_eq!(cookie("x=", "x"), None);
    }

    #[test]
    fn origins_must_name_the_relay() {
        let host = Some("127.0.0.1:8080");
        assert!(same_origin(Some("http://127.0.0.1:8080"), None, host));
        assert!(same_origin(None, Some("http://127.0.0.1:8080/ui/"), host));
        assert!(!same_origin(Some("http://evil.example"), None, host));
        assert!(!same_origin(Some("null"), None, host));
        assert!(!same_origin(None, None, host));
        assert!(!same_origin(Some("http://u@127.0.0.1:8080"), None, host));
        assert!(same_origin(
            Some("https://RELAY.example.com"),
            None,
            Some("relay.example.com")
        ));
    }

    #[test]
    fn csrf_tokens_compare_exactly() {
        assert!(token_matches("abc", "abc"));
        assert!(!token_matches("abd", "abc"));
        assert!(!token_matches("", ""));
    }
}
