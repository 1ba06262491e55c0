//! One `[[channel]]` table: its name, how its signatures are checked, who may read it,
//! and the limits on what it accepts and keeps.

use std::ops::Range;
use std::time::Duration;

use ipnet::IpNet;
use toml::Spanned;

use super::defaults::DEFAULT_DEDUP_WINDOW_SECS;
use super::handshake::{handshakes, Handshakes};
use super::raw::{RawChannel, RawRateLimit, RawRetention};
use super::source::{Entry, FileError, Source};
use super::tokens::{parse_tokens, TokenSet};
use crate::common::verify::{
    secret_format, validate_template, Algorithm, Encoding, HmacParams, SchemeKind, Secret, Verifier,
};

/// One webhook channel: where a provider posts and what an agent subscribes to.
#[derive(Debug, Clone)]
pub struct ChannelConfig {
    /// Channel name, `[A-Za-z0-9_-]{1,64}`: the `{channel}` of `/hooks/{channel}`.
    pub name: String,
    /// How the channel's signatures are checked: scheme, secrets, tolerance.
    pub verifier: Verifier,
    /// Header that carries the delivery id where the scheme defines none.
    pub id_header: Option<http::HeaderName>,
    /// How long a delivery id is remembered: a repeat within it is answered as a
    /// duplicate and not stored again (24 h by default).
    pub dedup_window: Duration,
    /// Refuse requests that carry no delivery id (the scheme's, or `id_header`): a
    /// replay with the id dropped would otherwise be stored again.
    pub require_delivery_id: bool,
    /// How much history the channel keeps; unlimited by default.
    pub retention: Retention,
    /// Sender addresses and CIDR ranges allowed to post (the TCP peer); empty allows all.
    pub allow_ips: Vec<IpNet>,
    /// Ingest rate limit for the channel; `None` is unlimited.
    pub rate_limit: Option<RateLimit>,
    /// Consumer tokens: a stream connection with one of them may read this channel.
    pub tokens: TokenSet,
    /// The provider handshakes the relay answers for this channel.
    pub handshakes: Handshakes,
}

/// How much of a channel's history to keep; `None` keeps everything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Drop events received more than this many seconds ago.
    pub max_age_secs: Option<u64>,
    /// Keep at most this many of the newest events.
    pub max_events: Option<u64>,
    /// Keep at most this many bytes of the newest events (stored key + record sizes).
    pub max_bytes: Option<u64>,
}

/// Token bucket parameters for a channel's ingest.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Tokens added to the bucket per second (> 0): the sustained requests per second.
    pub per_second: f64,
    /// Bucket size (>= 1): requests allowed at once after a quiet spell.
    pub burst: f64,
}

/// `[A-Za-z0-9_-]{1,64}`: names appear in URLs and storage keys, so they stay plain.
pub fn valid_channel_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Validates the `index`th `[[channel]]` table, found at `span`.
pub fn channel(
    src: &Source,
    index: usize,
    raw: &RawChannel,
    span: Range<usize>,
    public_base: Option<&str>,
) -> Result<ChannelConfig, FileError> {
    let at = Entry {
        src,
        array: "channel",
        index,
        span,
    };
    let name = name(&at, raw)?;
    let (verifier, handshakes) = verifier(&at, raw, public_base)?;
    let id_header = match &raw.id_header {
        Some(h) => Some(header_name(&at, h, "id_header")?),
        None => None,
    };
    let dedup_window = Duration::from_secs(match &raw.dedup_window_secs {
        Some(w) => src.positive(w, &at.key("dedup_window_secs"))?,
        None => DEFAULT_DEDUP_WINDOW_SECS,
    });
    Ok(ChannelConfig {
        name,
        verifier,
        id_header,
        dedup_window,
        require_delivery_id: raw
            .require_delivery_id
            .as_ref()
            .is_some_and(|v| *v.get_ref()),
        retention: match &raw.retention {
            Some(r) => retention(&at, r.get_ref())?,
            None => Retention::default(),
        },
        allow_ips: allow_ips(&at, &raw.allow_ips)?,
        rate_limit: raw
            .rate_limit
            .as_ref()
            .map(|r| rate_limit(&at, r))
            .transpose()?,
        tokens: parse_tokens(src, &raw.tokens, &at.key("tokens"))?,
        handshakes,
    })
}

fn name(at: &Entry, raw: &RawChannel) -> Result<String, FileError> {
    let name = raw
        .name
        .as_ref()
        .ok_or_else(|| at.err_here("name", "missing (every channel needs a name)"))?;
    if !valid_channel_name(name.get_ref()) {
        return Err(at.err(name.span(), "name", "must match [A-Za-z0-9_-]{1,64}"));
    }
    Ok(name.get_ref().clone())
}

/// `scheme`, `secrets`, the handshake keys and the keys that only some schemes take.
fn verifier(
    at: &Entry,
    raw: &RawChannel,
    public_base: Option<&str>,
) -> Result<(Verifier, Handshakes), FileError> {
    let names = SchemeKind::ALL.map(SchemeKind::as_str).join(", ");
    let scheme = raw
        .scheme
        .as_ref()
        .ok_or_else(|| at.err_here("scheme", format!("missing: one of {names}")))?;
    let kind = SchemeKind::parse(scheme.get_ref()).ok_or_else(|| {
        at.err(
            scheme.span(),
            "scheme",
            format!(
                "unknown scheme {:?}: expected one of {names}",
                scheme.get_ref()
            ),
        )
    })?;
    let handshakes = handshakes(at, raw, kind)?;
    let secrets = secrets(at, kind, scheme, &raw.secrets, handshakes.learns_secret())?;
    let hmac = if kind == SchemeKind::Hmac {
        Some(hmac_params(at, raw)?)
    } else {
        refuse_hmac_keys(at, raw)?;
        None
    };
    let tolerance_secs = match &raw.tolerance_secs {
        Some(t) => at.src.positive(t, &at.key("tolerance_secs"))?,
        // The provider's documented window (5 minutes when it documents none).
        None => kind.default_tolerance_secs(),
    };
    let verifier = Verifier {
        kind,
        public_url: public_url(at, raw, kind, public_base)?,
        hmac,
        secrets,
        tolerance_secs,
    };
    Ok((verifier, handshakes))
}

/// `public_url`: the URL providers post to, which the URL-signing schemes (and an
/// `hmac` template with `{url}`) sign; see [`super::public_url`]. The channel's own
/// value wins over `[server] public_url` + `/hooks/<name>`. Required where it is
/// signed; a channel's own value is refused where nothing signs it.
fn public_url(
    at: &Entry,
    raw: &RawChannel,
    kind: SchemeKind,
    public_base: Option<&str>,
) -> Result<Option<String>, FileError> {
    let template_url = raw
        .template
        .as_ref()
        .is_some_and(|t| t.get_ref().contains("{url}"));
    let needed = kind.signs_url() || (kind == SchemeKind::Hmac && template_url);
    let from_server = public_base
        .zip(raw.name.as_ref())
        .map(|(base, name)| super::public_url::for_channel(base, name.get_ref()));
    match &raw.public_url {
        None if !needed => Ok(None),
        None => from_server.map(Some).ok_or_else(|| {
            at.err_here(
                "public_url",
                format!(
                    "scheme {:?} signs the URL it posts to: set [server] public_url (e.g. \"https://relay.example.com\") or this channel's public_url",
                    kind.as_str()
                ),
            )
        }),
        Some(u) if !needed => Err(at.err(
            u.span(),
            "public_url",
            "only used by schemes that sign the URL (twilio, square, hubspot, trello, or an hmac template with {url})",
        )),
        Some(u) => super::public_url::check(u.get_ref())
            .map(Some)
            .map_err(|why| at.err(u.span(), "public_url", why)),
    }
}

/// The signing secrets (several = rotation): none for scheme `none`, else at least one
/// (`learned`: the channel may also learn it from the provider's handshake, Asana).
fn secrets(
    at: &Entry,
    kind: SchemeKind,
    scheme: &Spanned<String>,
    raw: &[Spanned<String>],
    learned: bool,
) -> Result<Vec<Secret>, FileError> {
    let mut secrets = Vec::new();
    for (j, s) in raw.iter().enumerate() {
        let key = format!("secrets[{j}]");
        let plain = at.src.resolve(s, &at.key(&key))?;
        let secret = Secret::for_scheme(kind, &plain).map_err(|e| {
            let expected = secret_format(kind);
            at.err(
                s.span(),
                &key,
                format!("{e}; scheme {:?} expects {expected}", kind.as_str()),
            )
        })?;
        secrets.push(secret);
    }
    if kind == SchemeKind::None && !secrets.is_empty() {
        return Err(at.err(
            scheme.span(),
            "secrets",
            "scheme \"none\" checks no signature; remove secrets or pick a scheme",
        ));
    }
    if kind != SchemeKind::None && secrets.is_empty() && !learned {
        return Err(at.err_here(
            "secrets",
            format!("scheme {:?} needs at least one secret", kind.as_str()),
        ));
    }
    Ok(secrets)
}

/// `header`, `prefix` and `encoding` of scheme `hmac`.
fn hmac_params(at: &Entry, raw: &RawChannel) -> Result<HmacParams, FileError> {
    let header = raw
        .header
        .as_ref()
        .ok_or_else(|| at.err_here("header", "scheme \"hmac\" needs the signature header name"))?;
    let header = header_name(at, header, "header")?;
    let encoding = match raw.encoding.as_ref() {
        None => Encoding::Hex,
        Some(e) => match e.get_ref().as_str() {
            "hex" => Encoding::Hex,
            "base64" => Encoding::Base64,
            _ => return Err(at.err(e.span(), "encoding", "expected \"hex\" or \"base64\"")),
        },
    };
    let prefix = raw
        .prefix
        .as_ref()
        .map(|p| p.get_ref().clone())
        .unwrap_or_default();
    let algorithm = match raw.algorithm.as_ref() {
        None => Algorithm::Sha256,
        Some(a) => Algorithm::parse(a.get_ref()).ok_or_else(|| {
            at.err(
                a.span(),
                "algorithm",
                "expected \"sha1\", \"sha256\" or \"sha512\"",
            )
        })?,
    };
    let mut params = HmacParams::new(header, prefix, encoding);
    params.algorithm = algorithm;
    if let Some(t) = &raw.template {
        template_fields(at, raw, t)?;
        params.template = t.get_ref().clone();
        params.timestamp_header = match &raw.timestamp_header {
            Some(h) => Some(header_name(at, h, "timestamp_header")?),
            None => None,
        };
        params.id_header = match &raw.id_header {
            Some(h) => Some(header_name(at, h, "id_header")?),
            None => None,
        };
    } else if let Some(h) = &raw.timestamp_header {
        return Err(at.err(
            h.span(),
            "timestamp_header",
            "only used by a template with {timestamp}",
        ));
    }
    Ok(params)
}

/// A `template` must be valid, and its `{timestamp}` and `{id}` need their headers
/// (`timestamp_header`, `id_header`); a `timestamp_header` needs a `{timestamp}`.
fn template_fields(at: &Entry, raw: &RawChannel, t: &Spanned<String>) -> Result<(), FileError> {
    let used = validate_template(t.get_ref()).map_err(|m| at.err(t.span(), "template", m))?;
    if used.contains(&"timestamp") && raw.timestamp_header.is_none() {
        return Err(at.err(
            t.span(),
            "template",
            "uses {timestamp}: set timestamp_header",
        ));
    }
    if used.contains(&"id") && raw.id_header.is_none() {
        return Err(at.err(t.span(), "template", "uses {id}: set id_header"));
    }
    match &raw.timestamp_header {
        Some(h) if !used.contains(&"timestamp") => Err(at.err(
            h.span(),
            "timestamp_header",
            "the template does not use {timestamp}",
        )),
        _ => Ok(()),
    }
}

/// Keys only scheme `hmac` reads are refused elsewhere rather than silently ignored.
fn refuse_hmac_keys(at: &Entry, raw: &RawChannel) -> Result<(), FileError> {
    for (field, value) in [
        ("header", &raw.header),
        ("prefix", &raw.prefix),
        ("encoding", &raw.encoding),
        ("algorithm", &raw.algorithm),
        ("template", &raw.template),
        ("timestamp_header", &raw.timestamp_header),
    ] {
        if let Some(v) = value {
            return Err(at.err(v.span(), field, "only used with scheme = \"hmac\""));
        }
    }
    Ok(())
}

fn header_name(
    at: &Entry,
    value: &Spanned<String>,
    key: &str,
) -> Result<http::HeaderName, FileError> {
    http::HeaderName::from_bytes(value.get_ref().as_bytes())
        .map_err(|_| at.err(value.span(), key, "not a valid HTTP header name"))
}

fn retention(at: &Entry, raw: &RawRetention) -> Result<Retention, FileError> {
    let limit = |v: &Option<Spanned<i64>>, key: &str| {
        v.as_ref()
            .map(|v| at.src.positive(v, &at.key(key)))
            .transpose()
    };
    Ok(Retention {
        max_age_secs: limit(&raw.max_age_secs, "retention.max_age_secs")?,
        max_events: limit(&raw.max_events, "retention.max_events")?,
        max_bytes: limit(&raw.max_bytes, "retention.max_bytes")?,
    })
}

/// Addresses (`10.0.0.1`) and CIDR ranges (`10.0.0.0/8`) allowed to post.
fn allow_ips(at: &Entry, raw: &[Spanned<String>]) -> Result<Vec<IpNet>, FileError> {
    raw.iter()
        .enumerate()
        .map(|(j, a)| {
            let text = a.get_ref();
            text.parse::<IpNet>()
                .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    at.err(
                        a.span(),
                        &format!("allow_ips[{j}]"),
                        format!("{text:?} is not an IP address or CIDR range"),
                    )
                })
        })
        .collect()
}

/// `burst` defaults to `per_second` (one second's worth).
fn rate_limit(at: &Entry, raw: &Spanned<RawRateLimit>) -> Result<RateLimit, FileError> {
    let r = raw.get_ref();
    let per_second = *r.per_second.get_ref();
    let burst = r.burst.as_ref().map(|b| *b.get_ref()).unwrap_or(per_second);
    if !(per_second > 0.0 && per_second.is_finite() && burst >= 1.0 && burst.is_finite()) {
        return Err(at.err(
            raw.span(),
            "rate_limit",
            "per_second must be > 0 and burst >= 1",
        ));
    }
    Ok(RateLimit { per_second, burst })
}
