//! The generic engine: verifies and signs any declarative [`Spec`] (every HMAC preset
//! and the configurable `hmac` scheme), and the token compare of [`Check::Token`].
//!
//! Order of checks, as for the hand-written schemes: signature (and signed timestamp
//! and id) headers present, else `MissingSignature`; well-formed, else
//! `InvalidSignature`; some secret's MAC equals some candidate, in constant time, else
//! `InvalidSignature`; only then the timestamp's tolerance, in either direction.
//!
//! [`Check::Token`]: super::spec::Check::Token

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use http::{HeaderMap, HeaderName};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

use super::scheme::{Encoding, Verified, VerifyError};
use super::secret::{MacBytes, Secret, BASE64};
use super::spec::{Layout, Spec, TsFormat, TsSource};
use super::template::{feed, Fields};
use super::util::{check_tolerance, generated_id, header_str, parse_timestamp, required_header};

/// What the request carries for `spec`: the signature header's value, the signed
/// timestamp text and the signed id (empty when the spec has none).
struct Carried<'h> {
    value: &'h str,
    timestamp: Option<&'h str>,
    id: Option<&'h str>,
}

fn carried<'h>(spec: &Spec<'_>, headers: &'h HeaderMap) -> Result<Carried<'h>, VerifyError> {
    let value = required_header(headers, spec.header)?;
    let timestamp = match spec.timestamp.map(|t| t.source) {
        None => None,
        Some(TsSource::Header(h)) => Some(required_header(headers, h)?),
        Some(TsSource::Field) => match spec.layout {
            Layout::Fields { sep, ts_key, .. } => Some(
                fields(value, sep)
                    .find(|(k, _)| *k == ts_key)
                    .map(|(_, v)| v)
                    .ok_or(VerifyError::InvalidSignature)?,
            ),
            _ => return Err(VerifyError::InvalidSignature),
        },
    };
    let id = match spec.id_header {
        Some(h) => Some(required_header(headers, h)?),
        None => None,
    };
    Ok(Carried {
        value,
        timestamp,
        id,
    })
}

/// The `key=value` fields of a header, trimmed.
fn fields(value: &str, sep: char) -> impl Iterator<Item = (&str, &str)> {
    value
        .split(sep)
        .filter_map(|e| e.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
}

/// The encoded candidate MACs of a signature header.
fn candidates<'v>(layout: Layout<'v>, value: &'v str) -> Box<dyn Iterator<Item = &'v str> + 'v> {
    match layout {
        Layout::Single { prefix } => Box::new(strip_prefix_ci(value, prefix).into_iter()),
        Layout::List { sep, prefix } => Box::new(
            value
                .split(sep)
                .filter_map(move |e| strip_prefix_ci(e.trim(), prefix)),
        ),
        Layout::Fields { sep, sig_key, .. } => Box::new(
            fields(value, sep)
                .filter(move |(k, _)| *k == sig_key)
                .map(|(_, v)| v),
        ),
    }
}

/// `value` without `prefix` (ASCII case-insensitive), if it starts with it.
fn strip_prefix_ci<'v>(value: &'v str, prefix: &str) -> Option<&'v str> {
    value
        .get(..prefix.len())
        .filter(|p| p.eq_ignore_ascii_case(prefix))
        .and_then(|_| value.get(prefix.len()..))
}

/// Decodes an encoded MAC of exactly `len` bytes; `None` for anything else.
fn decode(encoding: Encoding, s: &str, len: usize) -> Option<MacBytes> {
    let mut buf = [0u8; 96];
    let n = match encoding {
        Encoding::Hex => {
            let out = buf.get_mut(..s.len() / 2)?;
            hex::decode_to_slice(s, out).ok()?;
            s.len() / 2
        }
        Encoding::Base64 => BASE64.decode_slice(s, &mut buf).ok()?,
    };
    (n == len).then(|| MacBytes::from_slice(&buf[..n]))?
}

fn encode(encoding: Encoding, mac: &MacBytes) -> String {
    match encoding {
        Encoding::Hex => hex::encode(mac.as_bytes()),
        Encoding::Base64 => BASE64.encode(mac.as_bytes()),
    }
}

/// The MAC of `spec`'s signed content under `secret`.
fn compute(spec: &Spec<'_>, secret: &Secret, f: &Fields<'_>) -> MacBytes {
    let mut mac = secret.mac_of(spec.algorithm);
    feed(spec.template, f, |piece| mac.update(piece));
    mac.finish()
}

/// A signed timestamp as unix seconds; anything unreadable is `InvalidSignature`.
pub(crate) fn parse_ts(format: TsFormat, text: &str) -> Result<i64, VerifyError> {
    match format {
        TsFormat::UnixSecs => parse_timestamp(text),
        TsFormat::UnixMillis => parse_timestamp(text).map(|ms| ms / 1000),
        TsFormat::Rfc3339 => humantime::parse_rfc3339(text)
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .and_then(|d| i64::try_from(d.as_secs()).ok())
            .ok_or(VerifyError::InvalidSignature),
    }
}

/// One request, as the engine sees it.
pub(crate) struct Request<'r> {
    /// Its headers.
    pub headers: &'r HeaderMap,
    /// Its raw body.
    pub body: &'r [u8],
    /// The URL the provider posted to (the channel's `public_url`), for `{url}`.
    pub url: Option<&'r str>,
    /// The current unix time, seconds.
    pub now: i64,
}

/// Checks one request against `spec`. The delivery id is the signed `{id}` when the
/// spec has one, else the (unsigned, ignored when unreadable) `delivery_header`. A
/// template with `{url}` and no URL fails closed.
pub(crate) fn verify(
    spec: &Spec<'_>,
    delivery_header: Option<&str>,
    req: &Request<'_>,
    secrets: &[Secret],
    tolerance_secs: u64,
) -> Result<Verified, VerifyError> {
    let (headers, body, now) = (req.headers, req.body, req.now);
    let c = carried(spec, headers)?;
    if spec.template.contains("{url}") && req.url.is_none() {
        return Err(VerifyError::InvalidSignature);
    }
    let ts = match (spec.timestamp, c.timestamp) {
        (Some(t), Some(text)) => Some(parse_ts(t.format, text)?),
        _ => None,
    };
    let len = spec.algorithm.mac_len();
    if candidates(spec.layout, c.value).next().is_none() {
        return Err(VerifyError::InvalidSignature);
    }
    let f = Fields {
        body,
        timestamp: c.timestamp.unwrap_or(""),
        id: c.id.unwrap_or(""),
        url: req.url.unwrap_or(""),
    };
    let matched = secrets.iter().any(|s| {
        let mac = compute(spec, s, &f);
        candidates(spec.layout, c.value)
            .filter_map(|enc| decode(spec.encoding, enc, len))
            .any(|given| bool::from(mac.as_bytes().ct_eq(given.as_bytes())))
    });
    if !matched {
        return Err(VerifyError::InvalidSignature);
    }
    if let Some(ts) = ts {
        check_tolerance(ts, now, tolerance_secs)?;
    }
    let delivery_id = match (c.id, delivery_header) {
        (Some(id), _) => Some(id.to_owned()),
        (None, Some(h)) => header_str(headers, h).ok().flatten().map(str::to_owned),
        (None, None) => None,
    };
    Ok(Verified { delivery_id })
}

/// The timestamp text `format` writes for `now`.
fn ts_text(format: TsFormat, now: i64) -> String {
    match format {
        TsFormat::UnixSecs => now.to_string(),
        TsFormat::UnixMillis => now.saturating_mul(1000).to_string(),
        TsFormat::Rfc3339 => {
            let secs = u64::try_from(now).unwrap_or(0);
            let t = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
            humantime::format_rfc3339_seconds(t).to_string()
        }
    }
}

fn header(name: &str) -> Option<HeaderName> {
    HeaderName::from_bytes(name.as_bytes()).ok()
}

/// Headers that make `body` pass [`verify`] under `secret` at `now`, posted to `url`.
/// The `{id}` is `delivery_id`, or a generated one; an unsigned delivery header is sent
/// only when a `delivery_id` is given.
pub(crate) fn sign(
    spec: &Spec<'_>,
    delivery_header: Option<&str>,
    secret: &Secret,
    body: &[u8],
    now: i64,
    ids: (Option<&str>, Option<&str>),
) -> Vec<(HeaderName, String)> {
    let (delivery_id, url) = ids;
    let ts = spec.timestamp.map(|t| ts_text(t.format, now));
    let id = spec
        .id_header
        .map(|_| delivery_id.map_or_else(|| generated_id(now), str::to_owned));
    let f = Fields {
        body,
        timestamp: ts.as_deref().unwrap_or(""),
        id: id.as_deref().unwrap_or(""),
        url: url.unwrap_or(""),
    };
    let mac = encode(spec.encoding, &compute(spec, secret, &f));
    let value = match spec.layout {
        Layout::Single { prefix } | Layout::List { prefix, .. } => format!("{prefix}{mac}"),
        Layout::Fields {
            sep,
            ts_key,
            sig_key,
        } => format!("{ts_key}={}{sep}{sig_key}={mac}", f.timestamp),
    };
    let mut out: Vec<(Option<HeaderName>, String)> = vec![(header(spec.header), value)];
    if let (Some(t), Some(text)) = (spec.timestamp, ts) {
        if let TsSource::Header(h) = t.source {
            out.push((header(h), text));
        }
    }
    if let (Some(h), Some(id)) = (spec.id_header, id) {
        out.push((header(h), id));
    } else if let (Some(h), Some(id)) = (delivery_header, delivery_id) {
        out.push((header(h), id.to_owned()));
    }
    out.into_iter().filter_map(|(n, v)| Some((n?, v))).collect()
}

/// Checks that header `name` carries one of the secrets, in constant time (both
/// sides are hashed first, so lengths leak nothing either).
pub(crate) fn verify_token(
    name: &str,
    delivery_header: Option<&str>,
    headers: &HeaderMap,
    secrets: &[Secret],
) -> Result<Verified, VerifyError> {
    let given: [u8; 32] = Sha256::digest(required_header(headers, name)?.as_bytes()).into();
    if !secrets
        .iter()
        .any(|s| bool::from(s.token_digest().ct_eq(&given)))
    {
        return Err(VerifyError::InvalidSignature);
    }
    let delivery_id = delivery_header
        .and_then(|h| header_str(headers, h).ok().flatten())
        .map(str::to_owned);
    Ok(Verified { delivery_id })
}
