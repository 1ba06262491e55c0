//! Event filters: `--filter EXPR` and a route's `filter = [...]`.
//!
//! An expression tests one header or one value in a JSON body, by equality or prefix:
//!
//! - `header:NAME=VALUE` — some value of header NAME (any case) is exactly VALUE;
//! - `header:NAME^=PREFIX` — some value of header NAME starts with PREFIX;
//! - `json:/POINTER=VALUE` — the body is JSON and the value at POINTER (RFC 6901) is
//!   VALUE: a string compares as its text, anything else as its JSON text (`5`,
//!   `true`, `null`);
//! - `json:/POINTER^=PREFIX` — that text starts with PREFIX.
//!
//! The first `=` ends the name or pointer (a pointer with `=` in it cannot be
//! written). A missing header, a body that is not JSON or a pointer that leads
//! nowhere never matches. Values compare byte for byte (case-sensitive).

use crate::common::event::Record;

/// What an expression looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Subject {
    /// A header name, lower case.
    Header(String),
    /// A JSON pointer into the body.
    Json(String),
}

/// One parsed filter expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    subject: Subject,
    value: String,
    prefix: bool,
    /// The expression as written, for logs and errors.
    text: String,
}

/// An event being matched: the body is parsed as JSON at most once, however many
/// filters look into it.
pub struct Candidate<'a> {
    record: &'a Record,
    json: Option<Option<serde_json::Value>>,
}

impl<'a> Candidate<'a> {
    /// An event to match; its body is parsed as JSON at most once, on first use.
    pub fn new(record: &'a Record) -> Candidate<'a> {
        Candidate { record, json: None }
    }

    fn json(&mut self) -> Option<&serde_json::Value> {
        let body = &self.record.body;
        self.json
            .get_or_insert_with(|| serde_json::from_slice(body).ok())
            .as_ref()
    }
}

impl Filter {
    /// Parses `header:NAME=VALUE`, `header:NAME^=PREFIX`, `json:/PTR=VALUE` or
    /// `json:/PTR^=PREFIX`.
    pub fn parse(expr: &str) -> Result<Filter, String> {
        let bad = |why: &str| format!("filter {expr:?}: {why}");
        let (kind, rest) = expr
            .split_once(':')
            .ok_or_else(|| bad("expected header:NAME=VALUE or json:/POINTER=VALUE"))?;
        let (left, value) = rest
            .split_once('=')
            .ok_or_else(|| bad("no '=' (use = for equality, ^= for a prefix)"))?;
        let (left, prefix) = match left.strip_suffix('^') {
            Some(l) => (l, true),
            None => (left, false),
        };
        let subject = match kind {
            "header" => {
                http::HeaderName::from_bytes(left.as_bytes())
                    .map_err(|_| bad("not a valid header name"))?;
                Subject::Header(left.to_ascii_lowercase())
            }
            "json" if left.is_empty() || left.starts_with('/') => Subject::Json(left.to_string()),
            "json" => return Err(bad("a JSON pointer starts with '/'")),
            _ => return Err(bad("the kind must be header or json")),
        };
        Ok(Filter {
            subject,
            value: value.to_string(),
            prefix,
            text: expr.to_string(),
        })
    }

    /// The expression as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    fn accepts(&self, text: &[u8]) -> bool {
        if self.prefix {
            text.starts_with(self.value.as_bytes())
        } else {
            text == self.value.as_bytes()
        }
    }

    /// Whether the event passes this filter.
    pub fn matches(&self, event: &mut Candidate<'_>) -> bool {
        match &self.subject {
            Subject::Header(name) => event
                .record
                .headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .any(|(_, v)| self.accepts(v)),
            Subject::Json(pointer) => match event.json().and_then(|j| j.pointer(pointer)) {
                Some(serde_json::Value::String(s)) => self.accepts(s.as_bytes()),
                Some(other) => self.accepts(other.to_string().as_bytes()),
                None => false,
            },
        }
    }
}

/// Whether the event passes every filter (an empty list passes everything).
pub fn all_match(filters: &[Filter], event: &mut Candidate<'_>) -> bool {
    filters.iter().all(|f| f.matches(event))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(headers: &[(&str, &str)], body: &str) -> Record {
        Record {
            id: "id".into(),
            channel: "c".into(),
            offset: 1,
            received_at_ms: 0,
            method: "POST".into(),
            path: String::new(),
            query: String::new(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                .collect(),
            body: body.as_bytes().to_vec(),
            peer: "p".into(),
            scheme: "none".into(),
        }
    }

    fn check(expr: &str, r: &Record) -> bool {
        Filter::parse(expr)
            .expect("parses")
            .matches(&mut Candidate::new(r))
    }

    #[test]
    fn headers_match_by_equality_or_prefix_in_any_case() {
        let r = record(&[("X-GitHub-Event", "pull_request")], "");
        assert!(check("header:x-github-event=pull_request", &r));
        assert!(check("header:X-GitHub-Event^=pull_", &r));
        assert!(!check("header:X-GitHub-Event=pull_", &r));
        assert!(!check("header:X-GitHub-Event=Pull_request", &r));
        assert!(!check("header:X-Other=pull_request", &r));
        assert!(
            check("header:X-GitHub-Event^=", &r),
            "empty prefix: present"
        );
    }

    #[test]
    fn json_pointers_match_strings_and_other_values_as_text() {
        let r = record(
            &[],
            r#"{"action":"opened","ref":"refs/tags/v1","n":5,"ok":true,"a":[{"b":"x"}]}"#,
        );
        assert!(check("json:/action=opened", &r));
        assert!(!check("json:/action=closed", &r));
        assert!(check("json:/ref^=refs/tags/", &r));
        assert!(check("json:/n=5", &r));
        assert!(check("json:/ok=true", &r));
        assert!(check("json:/a/0/b=x", &r));
        assert!(!check("json:/missing=x", &r));
        assert!(!check("json:/action=opened", &record(&[], "not json")));
    }

    #[test]
    fn bad_expressions_are_refused() {
        for bad in [
            "",
            "header",
            "header:X-A",
            "header:bad name=1",
            "json:action=opened",
            "body:/a=1",
        ] {
            assert!(Filter::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_filter_must_match() {
        let r = record(&[("X-A", "1")], r#"{"k":"v"}"#);
        let fs: Vec<Filter> = ["header:X-A=1", "json:/k=v"]
            .iter()
            .map(|e| Filter::parse(e).expect("parses"))
            .collect();
        assert!(all_match(&fs, &mut Candidate::new(&r)));
        let fs2 = vec![fs[0].clone(), Filter::parse("json:/k=w").expect("parses")];
        assert!(!all_match(&fs2, &mut Candidate::new(&r)));
        assert!(all_match(&[], &mut Candidate::new(&r)));
    }
}
