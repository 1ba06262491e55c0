//! The README's "Provider presets" table, rendered from the preset table so that the
//! documentation cannot drift from the code (a unit test compares the two).

use std::fmt::Write as _;

use super::handshake::HandshakeKind;
use super::scheme::{Encoding, SchemeKind};
use super::spec::{Check, Layout, Spec, TsFormat, TsSource};

/// The README line before the generated table.
pub const PRESETS_START: &str = "<!-- presets:start -->";
/// The README line after the generated table.
pub const PRESETS_END: &str = "<!-- presets:end -->";

/// The Markdown table of every scheme: config name, provider (linked to the
/// documentation followed), what is checked, the dedup id and the handshake.
pub fn presets_markdown() -> String {
    let mut out = String::from(
        "| `scheme` | Provider | What is checked | Dedup id | Handshake |\n|---|---|---|---|---|\n",
    );
    for kind in SchemeKind::ALL {
        let p = kind.preset();
        let mut names = format!("`{kind}`");
        for a in p.aliases {
            let _ = write!(names, ", `{a}`");
        }
        let provider = if p.doc.is_empty() {
            p.provider.to_string()
        } else {
            format!("[{}]({})", p.provider, p.doc)
        };
        let _ = writeln!(
            out,
            "| {names} | {provider} | {} | {} | {} |",
            checked(kind, &p.check),
            dedup(kind),
            handshake(kind, p.handshake)
        );
    }
    out
}

/// "Handshake" for one entry: what the relay answers, else the table's note.
fn handshake(kind: SchemeKind, note: Option<&'static str>) -> &'static str {
    match (HandshakeKind::of_scheme(kind), note) {
        (Some(h), _) => h.describe(),
        (None, Some(n)) => n,
        (None, None) => "—",
    }
}

/// "What is checked" for one entry.
fn checked(kind: SchemeKind, check: &Check) -> String {
    match check {
        Check::Hmac(spec) => describe(spec),
        Check::Token { header } if kind == SchemeKind::Postmark => format!(
            "`{header}: Basic <base64(secret)>` with the secret `user:password` (constant-time compare)"
        ),
        Check::Token { header } => {
            format!("`{header}` equals the secret (constant-time compare)")
        }
        Check::Custom(text) => (*text).to_string(),
        Check::Nothing => "nothing (explicit opt-in)".into(),
    }
}

fn describe(spec: &Spec<'_>) -> String {
    let mac = match spec.encoding {
        Encoding::Hex => "<hex>",
        Encoding::Base64 => "<base64>",
    };
    let value = match spec.layout {
        Layout::Single { prefix } => format!("{prefix}{mac}"),
        Layout::List { sep, prefix } => format!("{prefix}{mac}[{sep}{prefix}{mac}…]"),
        Layout::Fields {
            sep,
            ts_key,
            sig_key,
        } => format!("{ts_key}=<timestamp>{sep}{sig_key}={mac}"),
    };
    let alg = spec
        .algorithm
        .as_str()
        .to_ascii_uppercase()
        .replace("SHA", "SHA-");
    let mut out = format!(
        "`{}: {value}`, HMAC-{alg} of `{}`",
        spec.header, spec.template
    );
    if let Some(t) = spec.timestamp {
        let at = match t.source {
            TsSource::Header(h) => format!("`{h}`"),
            TsSource::Field => "the signature header".into(),
        };
        let format = match t.format {
            TsFormat::UnixSecs => "unix seconds",
            TsFormat::UnixMillis => "unix milliseconds",
            TsFormat::Rfc3339 => "RFC 3339",
        };
        let _ = write!(
            out,
            "; timestamp in {at} ({format}) within ±{} s by default",
            t.default_tolerance_secs
        );
    }
    if spec.template.contains("{url}") {
        out.push_str("; `{url}` is the channel's `public_url`");
    }
    if let Some(id) = spec.id_header {
        let _ = write!(out, "; `{{id}}` is `{id}`");
    }
    out
}

/// "Dedup id" for one scheme: what the relay deduplicates on.
fn dedup(kind: SchemeKind) -> String {
    let signed_id = matches!(&kind.preset().check, Check::Hmac(s) if s.id_header.is_some())
        || kind == SchemeKind::Standard;
    match (kind, kind.delivery_header()) {
        (SchemeKind::Mailgun, _) => "`signature.token` (signed)".into(),
        (_, Some(h)) if signed_id => format!("`{h}` (signed)"),
        (_, Some(h)) => format!("`{h}`"),
        (SchemeKind::None, None) | (SchemeKind::Hmac, None) => "`id_header` if set".into(),
        (_, None) if kind.has_timestamp() => "the signature (timestamped)".into(),
        (_, None) => "`id_header` if set".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readme_table_is_generated() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
        let readme = std::fs::read_to_string(path).expect("README.md");
        let start = readme
            .find(PRESETS_START)
            .expect("README lacks <!-- presets:start -->");
        let end = readme
            .find(PRESETS_END)
            .expect("README lacks <!-- presets:end -->");
        let current = readme[start + PRESETS_START.len()..end].trim();
        let generated = presets_markdown();
        if std::env::var_os("HOOKRELAY_BLESS_README").is_some() {
            let fresh = format!(
                "{}{PRESETS_START}\n{generated}{}",
                &readme[..start],
                &readme[end..]
            );
            std::fs::write(path, fresh).expect("write README.md");
            return;
        }
        assert!(
            current == generated.trim(),
            "README.md's preset table is stale: run `HOOKRELAY_BLESS_README=1 cargo test --lib readme` or put between the markers:\n\n{generated}"
        );
    }

    #[test]
    fn every_scheme_has_a_row() {
        let table = presets_markdown();
        for k in SchemeKind::ALL {
            assert!(table.contains(&format!("| `{k}`")), "{k}");
        }
    }
}
