//! `public_url`: the URL providers call, for schemes that sign it (Twilio, Square,
//! HubSpot, Trello, an `hmac` template with `{url}`).
//!
//! Behind a proxy or a load balancer the relay sees another host and scheme than the
//! provider called, so the signed URL cannot be rebuilt from the request. The config
//! gives the base instead: `[server] public_url` (e.g. `https://relay.example.com`)
//! makes a channel's URL `<base>/hooks/<name>`; a channel's own `public_url` replaces
//! that whole channel URL. At ingest the request's path suffix and query are appended
//! (`crate::relay::ingest`), so the signed URL is exactly what the provider posted to.

/// Checks a configured URL: `http://` or `https://`, parsable, and without a query or
/// fragment (those come from each request). Returns it without a trailing `/`.
pub fn check(text: &str) -> Result<String, &'static str> {
    let scheme_ok = text.starts_with("https://") || text.starts_with("http://");
    let uri = text.parse::<http::Uri>().ok().filter(|_| scheme_ok);
    let Some(uri) = uri else {
        return Err("expected an http:// or https:// URL");
    };
    if uri.query().is_some() || text.contains('#') {
        return Err("expected a URL without a query or fragment: each request's query is appended");
    }
    Ok(text.trim_end_matches('/').to_string())
}

/// The channel URL when only `[server] public_url` is set.
pub fn for_channel(base: &str, channel: &str) -> String {
    format!("{base}/hooks/{channel}")
}

/// The URL a request was posted to: the channel URL, the request's path suffix
/// (`/a/b` or empty) and its query (without `?`; empty for none).
pub fn signed_url(channel_url: &str, suffix: &str, query: &str) -> String {
    let mut url = String::with_capacity(channel_url.len() + suffix.len() + query.len() + 1);
    url.push_str(channel_url);
    url.push_str(suffix);
    if !query.is_empty() {
        url.push('?');
        url.push_str(query);
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bases_are_checked_and_trimmed() {
        assert_eq!(
            check("https://relay.example.com/").as_deref(),
            Ok("https://relay.example.com")
        );
        assert_eq!(
            check("http://10.0.0.1:8080/base").as_deref(),
            Ok("http://10.0.0.1:8080/base")
        );
        assert!(check("relay.example.com").is_err());
        assert!(check("ftp://relay.example.com").is_err());
        assert!(check("https://relay.example.com/hooks/c?x=1").is_err());
        assert!(check("https://relay.example.com/#frag").is_err());
        assert!(check("https://exa mple.com").is_err());
    }

    #[test]
    fn the_signed_url_is_the_channel_url_with_the_request_suffix_and_query() {
        let channel = for_channel("https://relay.example.com", "sms");
        assert_eq!(channel, "https://relay.example.com/hooks/sms");
        assert_eq!(signed_url(&channel, "", ""), channel);
        assert_eq!(
            signed_url(&channel, "/inbound", "a=1&b=2"),
            "https://relay.example.com/hooks/sms/inbound?a=1&b=2"
        );
    }
}
