//! The console's files, embedded in the binary (no CDN, works offline): plain ES
//! modules, one stylesheet, two HTML pages. Served with a strict Content Security
//! Policy — scripts and styles only from the relay itself, no inline script — so even
//! a body that slipped into the page as HTML could not run.

use http::{HeaderValue, StatusCode};

/// The console's single page.
pub const INDEX_HTML: &str = include_str!("../../../ui/index.html");
/// The login form (also answered, with an error, on a wrong token).
pub const LOGIN_HTML: &str = include_str!("../../../ui/login.html");
/// Where the login page's error message goes.
pub const LOGIN_ERROR_SLOT: &str = "<!--error-->";

/// Embedded files under `/ui/assets/`: name, content type, bytes.
const FILES: &[(&str, &str, &str)] = &[
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../../../ui/style.css"),
    ),
    ("app.js", JS, include_str!("../../../ui/app.js")),
    ("api.js", JS, include_str!("../../../ui/api.js")),
    ("util.js", JS, include_str!("../../../ui/util.js")),
    ("overview.js", JS, include_str!("../../../ui/overview.js")),
    ("feed.js", JS, include_str!("../../../ui/feed.js")),
    ("event.js", JS, include_str!("../../../ui/event.js")),
    ("actions.js", JS, include_str!("../../../ui/actions.js")),
    ("charts.js", JS, include_str!("../../../ui/charts.js")),
];
const JS: &str = "text/javascript; charset=utf-8";

/// The policy every console response carries.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// An embedded asset by name, if there is one.
pub fn asset(name: &str) -> Option<warp::reply::Response> {
    let (_, kind, text) = FILES.iter().find(|(n, _, _)| *n == name)?;
    Some(respond(StatusCode::OK, kind, text.to_string()))
}

/// An HTML page with the console's headers.
pub fn html(status: StatusCode, text: String) -> warp::reply::Response {
    respond(status, "text/html; charset=utf-8", text)
}

/// Total size of the embedded files, bytes (for the binary-size note in the README).
pub fn embedded_bytes() -> usize {
    FILES.iter().map(|(_, _, t)| t.len()).sum::<usize>() + INDEX_HTML.len() + LOGIN_HTML.len()
}

fn respond(status: StatusCode, kind: &str, text: String) -> warp::reply::Response {
    let mut resp = http::Response::new(text.into());
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    let kind = HeaderValue::from_str(kind).unwrap_or(HeaderValue::from_static("text/plain"));
    h.insert(http::header::CONTENT_TYPE, kind);
    secure_headers(h);
    resp
}

/// The headers every console response carries: CSP, no sniffing, no framing, no cache.
pub fn secure_headers(h: &mut http::HeaderMap) {
    h.insert(
        http::header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        http::header::X_FRAME_OPTIONS,
        HeaderValue::from_static("DENY"),
    );
    h.insert(
        http::header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_are_found_by_name_only() {
        assert!(asset("app.js").is_some());
        assert!(asset("../Cargo.toml").is_none());
        assert!(LOGIN_HTML.contains(LOGIN_ERROR_SLOT));
        assert!(embedded_bytes() > 1000);
    }
}
