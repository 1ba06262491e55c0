//! Signed-content templates: literal text with `{body}`, `{timestamp}`, `{id}` and
//! `{url}`.
//!
//! A template is walked piece by piece straight into the MAC, so filling it in never
//! allocates.

/// The values a template's fields stand for in one request.
pub(crate) struct Fields<'a> {
    /// The raw body bytes.
    pub body: &'a [u8],
    /// The signed timestamp exactly as sent (empty when the scheme has none).
    pub timestamp: &'a str,
    /// The signed id exactly as sent (empty when the scheme has none).
    pub id: &'a str,
    /// The URL the provider posted to (the channel's `public_url`; empty if none).
    pub url: &'a str,
}

/// The field names a template may use.
const FIELD_NAMES: [&str; 4] = ["body", "timestamp", "id", "url"];

/// Feeds the signed content described by `template` to `out`, piece by piece. An
/// unknown `{name}` is fed literally (templates are validated before use).
pub(crate) fn feed(template: &str, f: &Fields<'_>, mut out: impl FnMut(&[u8])) {
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out(&rest.as_bytes()[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out(&rest.as_bytes()[open..]);
            return;
        };
        match &after[..close] {
            "body" => out(f.body),
            "timestamp" => out(f.timestamp.as_bytes()),
            "id" => out(f.id.as_bytes()),
            "url" => out(f.url.as_bytes()),
            _ => out(&rest.as_bytes()[open..open + close + 2]),
        }
        rest = &after[close + 1..];
    }
    out(rest.as_bytes());
}

/// The field names `template` uses, in order, or why it is not a usable template:
/// unknown field, unbalanced brace, or not exactly one `{body}` (a template without
/// the body would leave the body unauthenticated).
pub fn validate_template(template: &str) -> Result<Vec<&'static str>, String> {
    let mut used = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find(['{', '}']) {
        if rest[open..].starts_with('}') {
            return Err("a '}' without its '{'".into());
        }
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| "a '{' without its '}'".to_string())?;
        let name = &after[..close];
        let known = FIELD_NAMES.iter().find(|n| **n == name).ok_or_else(|| {
            format!("unknown field {{{name}}}: expected {{body}}, {{timestamp}}, {{id}} or {{url}}")
        })?;
        used.push(*known);
        rest = &after[close + 1..];
    }
    match used.iter().filter(|n| **n == "body").count() {
        1 => Ok(used),
        0 => Err("the template must contain {body}".into()),
        _ => Err("{body} may appear only once".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(t: &str) -> Vec<u8> {
        let f = Fields {
            body: b"B",
            timestamp: "T",
            id: "I",
            url: "U",
        };
        let mut out = Vec::new();
        feed(t, &f, |p| out.extend_from_slice(p));
        out
    }

    #[test]
    fn fills_fields_and_literals() {
        assert_eq!(filled("{body}"), b"B");
        assert_eq!(filled("v0:{timestamp}:{body}"), b"v0:T:B");
        assert_eq!(filled("{id}{timestamp}{body}"), b"ITB");
        assert_eq!(filled("POST{url}{body}{timestamp}"), b"POSTUBT");
        assert_eq!(filled("a{x}b{body"), b"a{x}b{body");
    }

    #[test]
    fn validation() {
        assert_eq!(validate_template("{body}"), Ok(vec!["body"]));
        assert_eq!(
            validate_template("{id}.{timestamp}.{body}"),
            Ok(vec!["id", "timestamp", "body"])
        );
        assert!(validate_template("{timestamp}")
            .unwrap_err()
            .contains("{body}"));
        assert!(validate_template("{body}{body}").is_err());
        assert!(validate_template("{uri}{body}")
            .unwrap_err()
            .contains("{uri}"));
        assert!(validate_template("{body").is_err());
        assert!(validate_template("body}").is_err());
    }
}
