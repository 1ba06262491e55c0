//! Webhook signature verification (and signing, for `hookrelay send` and benchmarks).
//!
//! Every channel names a provider convention ([`SchemeKind`]); a [`Verifier`] holds the
//! channel's scheme, its secrets and its timestamp tolerance, and checks one request's
//! headers and raw body bytes. The body is never parsed: the MAC is computed over the
//! exact bytes the provider sent, which is also what the log stores (guarantee 5).
//!
//! Design choices, and why:
//!
//! - **Constant-time comparison.** The expected MAC is computed, the provider's signature
//!   is decoded into raw bytes, and the two are compared with
//!   [`subtle::ConstantTimeEq`]. Comparing hex strings with `==` would leak, through
//!   timing, how many leading characters of a forged signature are right.
//! - **Several secrets (rotation).** Any secret may match. Checking stops at the first
//!   match; which secret matched is not secret, only the secrets themselves are.
//! - **Signature first, timestamp second.** A correctly signed but stale (or future)
//!   request gets [`VerifyError::TimestampOutOfTolerance`]; a forged one always gets
//!   [`VerifyError::InvalidSignature`], whatever its timestamp. So the tolerance error
//!   tells a real sender that its clock (or a replay) is the problem, and tells a forger
//!   nothing it did not already know.
//! - **Timestamp errors.** A missing timestamp header is
//!   [`VerifyError::MissingSignature`] (the timestamp is part of the signed material); a
//!   timestamp that is not a plain decimal unix time is [`VerifyError::InvalidSignature`].
//!   Stripe carries its timestamp inside `Stripe-Signature`, so a header without `t=`
//!   is malformed: [`VerifyError::InvalidSignature`].
//! - **Empty header values count as absent** ([`VerifyError::MissingSignature`]); values
//!   that are not visible ASCII, bad hex/base64, wrong lengths or missing prefixes are
//!   [`VerifyError::InvalidSignature`]. Nothing from the request can panic.
//! - **Secrets stay secret** (guarantee 7). A [`Secret`] keeps only the keyed HMAC state
//!   (the inner and outer pads already absorbed), never the configured string; its
//!   `Debug`/`Display` print `Secret(<redacted>)`, and no error carries key material.
//!   Pre-keying also saves two SHA-256 blocks per check.
//! - **No needless allocation.** Signed content such as `"{t}.{body}"` is fed into the MAC
//!   piece by piece; signatures are decoded into fixed 32-byte arrays. The only
//!   allocation on success is the delivery id string.

use std::fmt;

use ::hmac::{Hmac, Mac};
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use http::{HeaderMap, HeaderName};
use sha2::Sha256;
use subtle::ConstantTimeEq;

mod github;
mod hmac;
mod slack;
mod standard;
mod stripe;

/// HMAC-SHA256, the MAC of every scheme.
pub(crate) type HmacSha256 = Hmac<Sha256>;

/// A decoded HMAC-SHA256 tag.
pub(crate) type Tag = [u8; 32];

/// Standard base64 alphabet; encodes with padding, decodes with or without it.
pub(crate) const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Which provider convention a channel uses (`scheme = "..."` in `[[channel]]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemeKind {
    /// `X-Hub-Signature-256: sha256=<hex>` over the body.
    Github,
    /// `Stripe-Signature: t=<unix>,v1=<hex>...` over `"{t}.{body}"`.
    Stripe,
    /// `X-Slack-Signature: v0=<hex>` over `"v0:{ts}:{body}"`.
    Slack,
    /// Standard Webhooks / Svix: `webhook-signature: v1,<base64>...` over `"{id}.{ts}.{body}"`.
    Standard,
    /// Generic HMAC-SHA256 over the body, see [`HmacParams`].
    Hmac,
    /// No verification (explicit opt-in).
    None,
}

impl SchemeKind {
    /// All schemes, in the order the spec lists them.
    pub const ALL: [SchemeKind; 6] = [
        SchemeKind::Github,
        SchemeKind::Stripe,
        SchemeKind::Slack,
        SchemeKind::Standard,
        SchemeKind::Hmac,
        SchemeKind::None,
    ];

    /// Parses a config name (`github`, `stripe`, `slack`, `standard`, `hmac`, `none`),
    /// ASCII case-insensitively.
    pub fn parse(s: &str) -> Option<SchemeKind> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s))
    }

    /// The canonical (lowercase) config name.
    pub fn as_str(self) -> &'static str {
        match self {
            SchemeKind::Github => "github",
            SchemeKind::Stripe => "stripe",
            SchemeKind::Slack => "slack",
            SchemeKind::Standard => "standard",
            SchemeKind::Hmac => "hmac",
            SchemeKind::None => "none",
        }
    }

    /// Whether the scheme signs a timestamp (and so uses `tolerance_secs`).
    pub fn has_timestamp(self) -> bool {
        matches!(
            self,
            SchemeKind::Stripe | SchemeKind::Slack | SchemeKind::Standard
        )
    }
}

impl fmt::Display for SchemeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the generic `hmac` scheme spells the MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Hexadecimal, either case.
    Hex,
    /// Standard base64, padding optional.
    Base64,
}

/// Generic HMAC scheme parameters (scheme `hmac`): the signature is
/// `<prefix><encoded HMAC-SHA256(body)>` in `header`. The prefix may be empty and is
/// matched ASCII case-insensitively.
#[derive(Debug, Clone)]
pub struct HmacParams {
    /// The header carrying the signature.
    pub header: HeaderName,
    /// Text before the encoded MAC, e.g. `sha256=`; may be empty.
    pub prefix: String,
    /// Hex or base64.
    pub encoding: Encoding,
}

/// A signing secret, held as a keyed HMAC-SHA256 state (the configured string itself
/// is not kept). Its `Debug`/`Display` print `Secret(<redacted>)`.
#[derive(Clone)]
pub struct Secret {
    keyed: HmacSha256,
}

/// Why a configured secret cannot be used. Messages never contain the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The secret (or, for `standard`, its decoded key) is empty.
    #[error("the secret is empty")]
    Empty,
    /// A `standard` secret is not base64 after its optional `whsec_` prefix.
    #[error("a \"standard\" secret must be \"whsec_\" followed by base64 (the part after the prefix is not valid base64)")]
    InvalidBase64,
}

impl Secret {
    /// Builds the HMAC key for the scheme from the configured string: for `standard`,
    /// `whsec_<base64>` (the prefix is optional) is base64-decoded and the key is the
    /// decoded bytes; for every other scheme the whole string's bytes are the key
    /// (Stripe's `whsec_...` is *not* decoded).
    pub fn for_scheme(kind: SchemeKind, raw: &str) -> Result<Secret, SecretError> {
        if raw.is_empty() {
            return Err(SecretError::Empty);
        }
        if kind == SchemeKind::Standard {
            let b64 = raw.strip_prefix("whsec_").unwrap_or(raw);
            let key = BASE64.decode(b64).map_err(|_| SecretError::InvalidBase64)?;
            Self::from_key(&key)
        } else {
            Self::from_key(raw.as_bytes())
        }
    }

    /// A secret whose HMAC key is exactly `key`.
    pub fn from_key(key: &[u8]) -> Result<Secret, SecretError> {
        if key.is_empty() {
            return Err(SecretError::Empty);
        }
        // HMAC accepts keys of any length, so this never fails in practice; the error
        // path exists only so that no `expect` is needed.
        let keyed = HmacSha256::new_from_slice(key).map_err(|_| SecretError::Empty)?;
        Ok(Secret { keyed })
    }

    /// A fresh MAC keyed with this secret, ready to absorb signed content.
    pub(crate) fn mac(&self) -> HmacSha256 {
        self.keyed.clone()
    }

    /// The HMAC-SHA256 tag of the concatenation of `parts`.
    pub(crate) fn tag(&self, parts: &[&[u8]]) -> Tag {
        let mut mac = self.mac();
        for p in parts {
            mac.update(p);
        }
        mac.finalize().into_bytes().into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Everything needed to check one channel's requests.
#[derive(Debug, Clone)]
pub struct Verifier {
    /// The provider convention.
    pub kind: SchemeKind,
    /// Parameters of the generic `hmac` scheme; must be `Some` when `kind` is `Hmac`.
    pub hmac: Option<HmacParams>,
    /// Accepted secrets (several during a rotation); any one may match.
    pub secrets: Vec<Secret>,
    /// Allowed distance, in either direction, between a signed timestamp and now.
    pub tolerance_secs: u64,
}

/// What a successful check learnt.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The provider's delivery id when the scheme defines one (`X-GitHub-Delivery`;
    /// `webhook-id` or `svix-id`).
    pub delivery_id: Option<String>,
}

/// Why a request was refused. Each maps to a stable error code (HTTP 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A signature (or signed timestamp/id) header is absent or empty.
    #[error("the request carries no signature for this channel's scheme")]
    MissingSignature,
    /// The signature is malformed or matches none of the channel's secrets.
    #[error("the signature is malformed or does not match")]
    InvalidSignature,
    /// Correctly signed, but the signed timestamp is too old or in the future.
    #[error("the signed timestamp is outside the allowed tolerance")]
    TimestampOutOfTolerance,
}

impl VerifyError {
    /// Stable error code: `missing_signature` | `invalid_signature` |
    /// `timestamp_out_of_tolerance`.
    pub fn code(self) -> &'static str {
        match self {
            VerifyError::MissingSignature => "missing_signature",
            VerifyError::InvalidSignature => "invalid_signature",
            VerifyError::TimestampOutOfTolerance => "timestamp_out_of_tolerance",
        }
    }
}

impl Verifier {
    /// Checks one request. `now_unix` is the current unix time in seconds (injected so
    /// tests need no clock). A `Hmac` verifier without [`HmacParams`] refuses everything
    /// (fails closed) with `InvalidSignature`; so does any scheme with no secrets.
    pub fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now_unix: i64,
    ) -> Result<Verified, VerifyError> {
        let (secrets, tol) = (&self.secrets[..], self.tolerance_secs);
        match self.kind {
            SchemeKind::Github => github::verify(headers, body, secrets),
            SchemeKind::Stripe => stripe::verify(headers, body, secrets, tol, now_unix),
            SchemeKind::Slack => slack::verify(headers, body, secrets, tol, now_unix),
            SchemeKind::Standard => standard::verify(headers, body, secrets, tol, now_unix),
            SchemeKind::Hmac => match &self.hmac {
                Some(params) => hmac::verify(params, headers, body, secrets),
                None => Err(VerifyError::InvalidSignature),
            },
            SchemeKind::None => Ok(Verified::default()),
        }
    }

    /// The header that carries the signature (`None` for scheme `none`). Where a
    /// request has no delivery id, the relay deduplicates on this header's value: the
    /// same signature means the same request (a replay).
    pub fn signature_header(&self) -> Option<HeaderName> {
        let name = match self.kind {
            SchemeKind::Github => "x-hub-signature-256",
            SchemeKind::Stripe => "stripe-signature",
            SchemeKind::Slack => "x-slack-signature",
            SchemeKind::Standard => "webhook-signature",
            SchemeKind::Hmac => return self.hmac.as_ref().map(|p| p.header.clone()),
            SchemeKind::None => return None,
        };
        Some(HeaderName::from_static(name))
    }
}

/// Headers that make `body` pass `kind`'s check with `secret` at time `now_unix`.
///
/// `delivery_id` is sent by schemes that carry one (GitHub's `X-GitHub-Delivery`,
/// standard's `webhook-id`). GitHub sends none when it is `None`; standard requires
/// one and generates `msg_<hex>` from `now_unix`, the process id and a counter (no
/// randomness). `hmac` must be `Some` for [`SchemeKind::Hmac`] (otherwise nothing is
/// returned). Returns an empty `Vec` for [`SchemeKind::None`].
pub fn sign(
    kind: SchemeKind,
    hmac: Option<&HmacParams>,
    secret: &Secret,
    body: &[u8],
    now_unix: i64,
    delivery_id: Option<&str>,
) -> Vec<(HeaderName, String)> {
    match kind {
        SchemeKind::Github => github::sign(secret, body, delivery_id),
        SchemeKind::Stripe => stripe::sign(secret, body, now_unix),
        SchemeKind::Slack => slack::sign(secret, body, now_unix),
        SchemeKind::Standard => standard::sign(secret, body, now_unix, delivery_id),
        SchemeKind::Hmac => hmac.map_or_else(Vec::new, |p| hmac::sign(p, secret, body)),
        SchemeKind::None => Vec::new(),
    }
}

// ---- helpers shared by the scheme files ----

/// The first value of header `name`, trimmed. `Ok(None)` when absent or empty;
/// `InvalidSignature` when it is not visible ASCII.
pub(crate) fn header_str<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
) -> Result<Option<&'a str>, VerifyError> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => {
            let s = v
                .to_str()
                .map_err(|_| VerifyError::InvalidSignature)?
                .trim();
            Ok((!s.is_empty()).then_some(s))
        }
    }
}

/// Like [`header_str`], but absence is `MissingSignature`.
pub(crate) fn required_header<'a>(
    headers: &'a HeaderMap,
    name: &HeaderName,
) -> Result<&'a str, VerifyError> {
    header_str(headers, name)?.ok_or(VerifyError::MissingSignature)
}

/// A unix timestamp in plain decimal digits; anything else is `InvalidSignature`.
pub(crate) fn parse_timestamp(s: &str) -> Result<i64, VerifyError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VerifyError::InvalidSignature);
    }
    s.parse().map_err(|_| VerifyError::InvalidSignature)
}

/// Refuses timestamps more than `tolerance_secs` away from `now`, in either direction.
pub(crate) fn check_tolerance(ts: i64, now: i64, tolerance_secs: u64) -> Result<(), VerifyError> {
    if ts.abs_diff(now) > tolerance_secs {
        Err(VerifyError::TimestampOutOfTolerance)
    } else {
        Ok(())
    }
}

/// Constant-time equality of two tags.
pub(crate) fn tags_equal(a: &Tag, b: &Tag) -> bool {
    a.ct_eq(b).into()
}

/// Decodes a 64-digit hex tag (either case); `None` for anything else.
pub(crate) fn decode_hex_tag(s: &str) -> Option<Tag> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

/// Decodes a base64 tag of exactly 32 bytes (padding optional); `None` for anything else.
pub(crate) fn decode_base64_tag(s: &str) -> Option<Tag> {
    let mut buf = [0u8; 48];
    let n = BASE64.decode_slice(s, &mut buf).ok()?;
    buf.get(..n)?.try_into().ok()
}

/// Whether any secret's tag over the concatenation of `parts` satisfies `matches`
/// (which compares against the request's candidate signatures in constant time).
pub(crate) fn any_secret_matches(
    secrets: &[Secret],
    parts: &[&[u8]],
    mut matches: impl FnMut(&Tag) -> bool,
) -> bool {
    secrets.iter().any(|s| matches(&s.tag(parts)))
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Helpers for the scheme tests.
    use super::*;
    use http::HeaderValue;

    /// A header map from (name, raw value bytes) pairs.
    pub fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            let name = HeaderName::from_bytes(n.as_bytes()).unwrap();
            h.append(name, HeaderValue::from_bytes(v).unwrap());
        }
        h
    }

    /// A header map from `sign`'s output.
    pub fn from_signed(signed: &[(HeaderName, String)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in signed {
            h.append(n.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    /// A verifier for `kind` with the given secrets and a 300 s tolerance.
    pub fn verifier(kind: SchemeKind, secrets: &[&str]) -> Verifier {
        Verifier {
            kind,
            hmac: None,
            secrets: secrets
                .iter()
                .map(|s| Secret::for_scheme(kind, s).unwrap())
                .collect(),
            tolerance_secs: 300,
        }
    }

    /// The value `sign` produced for header `name`.
    pub fn value_of<'a>(signed: &'a [(HeaderName, String)], name: &str) -> &'a str {
        &signed.iter().find(|(n, _)| n == name).unwrap().1
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;

    #[test]
    fn scheme_names_round_trip() {
        for k in SchemeKind::ALL {
            assert_eq!(SchemeKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(SchemeKind::parse("GitHub"), Some(SchemeKind::Github));
        assert_eq!(SchemeKind::parse("svix"), None);
        assert_eq!(SchemeKind::parse(""), None);
        assert!(SchemeKind::Stripe.has_timestamp());
        assert!(SchemeKind::Slack.has_timestamp());
        assert!(SchemeKind::Standard.has_timestamp());
        assert!(!SchemeKind::Github.has_timestamp());
        assert!(!SchemeKind::Hmac.has_timestamp());
        assert!(!SchemeKind::None.has_timestamp());
    }

    #[test]
    fn error_codes_are_stable() {
        assert_eq!(VerifyError::MissingSignature.code(), "missing_signature");
        assert_eq!(VerifyError::InvalidSignature.code(), "invalid_signature");
        assert_eq!(
            VerifyError::TimestampOutOfTolerance.code(),
            "timestamp_out_of_tolerance"
        );
    }

    #[test]
    fn secrets_are_redacted() {
        let raw = "super-secret-value-123";
        for k in SchemeKind::ALL {
            if k == SchemeKind::Standard {
                continue;
            }
            let s = Secret::for_scheme(k, raw).unwrap();
            assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
            assert_eq!(format!("{s}"), "Secret(<redacted>)");
            let v = Verifier {
                kind: k,
                hmac: None,
                secrets: vec![s],
                tolerance_secs: 1,
            };
            assert!(!format!("{v:?}").contains(raw));
        }
        let std_raw = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let s = Secret::for_scheme(SchemeKind::Standard, std_raw).unwrap();
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
        assert!(!dbg.contains("whsec_"));
    }

    #[test]
    fn secret_errors() {
        for k in SchemeKind::ALL {
            assert_eq!(Secret::for_scheme(k, "").unwrap_err(), SecretError::Empty);
        }
        let bad = "whsec_not*base64!";
        let e = Secret::for_scheme(SchemeKind::Standard, bad).unwrap_err();
        assert_eq!(e, SecretError::InvalidBase64);
        assert!(!e.to_string().contains("not*base64"));
        assert_eq!(
            Secret::for_scheme(SchemeKind::Standard, "whsec_").unwrap_err(),
            SecretError::Empty
        );
        // The prefix is optional, and padding too.
        assert!(
            Secret::for_scheme(SchemeKind::Standard, "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_ok()
        );
        assert!(Secret::for_scheme(SchemeKind::Standard, "whsec_dGVzdA").is_ok());
        // Stripe's whsec_ string is a plain key, even when it is not base64.
        assert!(Secret::for_scheme(SchemeKind::Stripe, bad).is_ok());
    }

    #[test]
    fn none_always_passes() {
        let v = Verifier {
            kind: SchemeKind::None,
            hmac: None,
            secrets: vec![],
            tolerance_secs: 0,
        };
        let h = headers(&[("x-hub-signature-256", b"sha256=00")]);
        assert_eq!(v.verify(&h, b"x", 0), Ok(Verified::default()));
        assert_eq!(
            v.verify(&HeaderMap::new(), b"", i64::MIN),
            Ok(Verified::default())
        );
        let s = Secret::for_scheme(SchemeKind::None, "k").unwrap();
        assert!(sign(SchemeKind::None, None, &s, b"x", 0, None).is_empty());
    }

    #[test]
    fn hmac_without_params_fails_closed() {
        let v = verifier(SchemeKind::Hmac, &["k"]);
        let h = headers(&[("x-signature", b"00")]);
        assert_eq!(v.verify(&h, b"x", 0), Err(VerifyError::InvalidSignature));
        let s = Secret::for_scheme(SchemeKind::Hmac, "k").unwrap();
        assert!(sign(SchemeKind::Hmac, None, &s, b"x", 0, None).is_empty());
    }

    #[test]
    fn no_secrets_fails_closed() {
        for k in [
            SchemeKind::Github,
            SchemeKind::Stripe,
            SchemeKind::Slack,
            SchemeKind::Standard,
        ] {
            let signer = Secret::for_scheme(k, "whsec_dGVzdA").unwrap();
            let h = from_signed(&sign(k, None, &signer, b"x", 100, Some("id")));
            let v = verifier(k, &[]);
            assert_eq!(
                v.verify(&h, b"x", 100),
                Err(VerifyError::InvalidSignature),
                "{k}"
            );
        }
    }

    #[test]
    fn tolerance_is_inclusive_and_symmetric() {
        assert!(check_tolerance(1000, 1300, 300).is_ok());
        assert!(check_tolerance(1300, 1000, 300).is_ok());
        assert!(check_tolerance(999, 1300, 300).is_err());
        assert!(check_tolerance(1301, 1000, 300).is_err());
        assert!(check_tolerance(i64::MAX, i64::MIN, u64::MAX).is_ok());
        assert!(check_tolerance(i64::MAX, i64::MIN, 0).is_err());
    }

    #[test]
    fn tag_decoding() {
        let hex_tag = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        let t = decode_hex_tag(hex_tag).unwrap();
        assert_eq!(decode_hex_tag(&hex_tag.to_uppercase()), Some(t));
        assert_eq!(decode_hex_tag(&hex_tag[..62]), None);
        assert_eq!(decode_hex_tag(&format!("{hex_tag}00")), None);
        assert_eq!(decode_hex_tag("zz"), None);
        let b = BASE64.encode(t);
        assert_eq!(decode_base64_tag(&b), Some(t));
        assert_eq!(decode_base64_tag(b.trim_end_matches('=')), Some(t));
        assert_eq!(decode_base64_tag(&BASE64.encode([1u8; 31])), None);
        assert_eq!(decode_base64_tag(&BASE64.encode([1u8; 33])), None);
        assert_eq!(decode_base64_tag(&"A".repeat(10_000)), None);
        assert_eq!(decode_base64_tag("!!!"), None);
        assert_eq!(parse_timestamp("+5"), Err(VerifyError::InvalidSignature));
        assert_eq!(
            parse_timestamp("99999999999999999999"),
            Err(VerifyError::InvalidSignature)
        );
        assert_eq!(parse_timestamp("1614265330"), Ok(1614265330));
    }
}
