//! Text forms of URLs that are safe to print: a relay or forward URL may carry a key in
//! its userinfo or query, and guarantee 7 says no secret reaches a log or an error.

/// A URL for messages: the query, fragment and userinfo are dropped, since they may
/// hold a key.
pub fn redact(url: &str) -> String {
    let no_query = url.split(['?', '#']).next().unwrap_or("");
    match no_query.rfind('@') {
        Some(at) => {
            let scheme_end = no_query.find("://").map(|i| i + 3).unwrap_or(0);
            format!(
                "{}{}",
                no_query.get(..scheme_end).unwrap_or(""),
                no_query.get(at + 1..).unwrap_or("")
            )
        }
        None => no_query.to_string(),
    }
}
