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

use http::{HeaderMap, HeaderName};

mod asymmetric;
mod ecdsa;
mod ed25519;
mod engine;
#[cfg(test)]
mod github;
mod handshake;
mod hmac;
mod mailgun;
mod monday;
mod preset;
#[cfg(test)]
mod presets_tests;
mod pubkey;
mod readme;
mod scheme;
mod secret;
#[cfg(test)]
mod slack;
mod spec;
mod standard;
#[cfg(test)]
mod stripe;
mod template;
mod twilio;
mod util;

pub use handshake::{twitter_response_token, zoom_encrypted_token, HandshakeKind};
pub use readme::{presets_markdown, PRESETS_END, PRESETS_START};
pub use scheme::{Algorithm, Encoding, HmacParams, SchemeKind, Verified, VerifyError};
pub use secret::{secret_format, Secret, SecretError};
pub use template::validate_template;

use spec::Check;

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
    /// The URL providers post to (`public_url`), for schemes that sign it (HubSpot).
    pub public_url: Option<String>,
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
        self.verify_posted_to(headers, body, now_unix, self.public_url.as_deref())
    }

    /// [`Verifier::verify`] for a request posted to `url` (the channel's `public_url`
    /// with the request's path suffix and query), which URL-signing schemes sign.
    pub fn verify_posted_to(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now_unix: i64,
        url: Option<&str>,
    ) -> Result<Verified, VerifyError> {
        let (secrets, tol) = (&self.secrets[..], self.tolerance_secs);
        let preset = self.kind.preset();
        let req = engine::Request {
            headers,
            body,
            url,
            now: now_unix,
        };
        match (&preset.check, self.kind) {
            (Check::Hmac(spec), _) => {
                engine::verify(spec, preset.delivery_header, &req, secrets, tol)
            }
            (Check::Token { header }, _) => {
                engine::verify_token(header, preset.delivery_header, headers, secrets)
            }
            (_, SchemeKind::Standard) => standard::verify(headers, body, secrets, tol, now_unix),
            (_, SchemeKind::Mailgun) => mailgun::verify(body, secrets, tol, now_unix),
            (_, SchemeKind::Monday) => monday::verify(headers, secrets, now_unix),
            (_, SchemeKind::Twilio) => twilio::verify(headers, body, req.url, secrets),
            (_, kind @ (SchemeKind::Discord | SchemeKind::Telnyx)) => {
                ed25519::verify(kind, headers, body, secrets, tol, now_unix)
            }
            (_, SchemeKind::Sendgrid) => ecdsa::verify(headers, body, secrets, tol, now_unix),
            (_, SchemeKind::Hmac) => match &self.hmac {
                Some(p) => engine::verify(&hmac::spec(p), None, &req, secrets, tol),
                None => Err(VerifyError::InvalidSignature),
            },
            (Check::Nothing, _) => Ok(Verified::default()),
            // Every custom check is dispatched above; fail closed if one is not.
            (Check::Custom(_), _) => Err(VerifyError::InvalidSignature),
        }
    }

    /// Like [`Verifier::verify`], also saying which secret matched (Zoom keys its
    /// handshake answer with it); `None` for schemes that check no secret.
    pub fn verify_which(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        now_unix: i64,
    ) -> Result<(Verified, Option<&Secret>), VerifyError> {
        if self.secrets.len() > 1 {
            for s in &self.secrets {
                let one = Verifier {
                    secrets: vec![s.clone()],
                    ..self.clone()
                };
                if let Ok(v) = one.verify(headers, body, now_unix) {
                    return Ok((v, Some(s)));
                }
            }
        }
        // One secret (or none matched: this gives the right error for all of them).
        let verified = self.verify(headers, body, now_unix)?;
        Ok((verified, self.secrets.first()))
    }

    /// The header that carries the signature (`None` for scheme `none`). Where a
    /// request has no delivery id, the relay deduplicates on this header's value: the
    /// same signature means the same request (a replay).
    pub fn signature_header(&self) -> Option<HeaderName> {
        let name = match (&self.kind.preset().check, self.kind) {
            (Check::Hmac(spec), _) => spec.header,
            (Check::Token { header }, _) => header,
            (_, SchemeKind::Standard) => "webhook-signature",
            (_, SchemeKind::Monday) => "authorization",
            (_, SchemeKind::Twilio) => "x-twilio-signature",
            (_, SchemeKind::Discord) => "x-signature-ed25519",
            (_, SchemeKind::Telnyx) => "telnyx-signature-ed25519",
            (_, SchemeKind::Sendgrid) => "x-twilio-email-event-webhook-signature",
            (_, SchemeKind::Hmac) => return self.hmac.as_ref().map(|p| p.header.clone()),
            _ => return None,
        };
        HeaderName::from_bytes(name.as_bytes()).ok()
    }
}

/// Headers that make `body` pass `kind`'s check with `secret` at time `now_unix`.
///
/// `delivery_id` is sent by schemes that carry one (GitHub's `X-GitHub-Delivery`,
/// standard's `webhook-id`, ...). Schemes whose delivery id is unsigned send none when
/// it is `None`; schemes that sign an id (standard, twitch) require one and generate
/// `msg_<hex>` from `now_unix`, the process id and a counter (no randomness). `hmac`
/// must be `Some` for [`SchemeKind::Hmac`] (otherwise nothing is returned). Returns an
/// empty `Vec` for [`SchemeKind::None`], for token schemes (the header carries the
/// secret itself, which a [`Secret`] does not keep: see [`SchemeKind::token_header`])
/// and for schemes signed inside the body (see [`sign_body`]). Schemes that sign the
/// URL need [`sign_for_url`].
pub fn sign(
    kind: SchemeKind,
    hmac: Option<&HmacParams>,
    secret: &Secret,
    body: &[u8],
    now_unix: i64,
    delivery_id: Option<&str>,
) -> Vec<(HeaderName, String)> {
    sign_for_url(kind, hmac, secret, body, now_unix, (delivery_id, None))
}

/// [`sign`] for a request posted to the URL `ids.1`, which schemes that sign the URL
/// (HubSpot) need; `ids.0` is the delivery id.
pub fn sign_for_url(
    kind: SchemeKind,
    hmac: Option<&HmacParams>,
    secret: &Secret,
    body: &[u8],
    now_unix: i64,
    ids: (Option<&str>, Option<&str>),
) -> Vec<(HeaderName, String)> {
    let preset = kind.preset();
    match (&preset.check, kind) {
        (Check::Hmac(spec), _) => {
            engine::sign(spec, preset.delivery_header, secret, body, now_unix, ids)
        }
        (_, SchemeKind::Standard) => standard::sign(secret, body, now_unix, ids.0),
        (_, SchemeKind::Monday) => monday::sign(secret, now_unix),
        (_, SchemeKind::Twilio) => ids
            .1
            .map_or_else(Vec::new, |u| twilio::sign(secret, body, u)),
        (_, SchemeKind::Hmac) => hmac.map_or_else(Vec::new, |p| {
            engine::sign(&hmac::spec(p), None, secret, body, now_unix, ids)
        }),
        _ => Vec::new(),
    }
}

/// For asymmetric schemes (discord, telnyx, sendgrid), where `hookrelay send` signs
/// with a private key (`private_key`: the Ed25519 seed in hex or base64, or SendGrid's
/// P-256 key as base64 PKCS#8 DER) while channels
/// configure the public key: the signature headers, or why the key is unusable.
/// `None` for every other scheme.
pub fn sign_with_private_key(
    kind: SchemeKind,
    private_key: &str,
    body: &[u8],
    now_unix: i64,
) -> Option<Result<Vec<(HeaderName, String)>, String>> {
    match kind {
        SchemeKind::Discord | SchemeKind::Telnyx => {
            Some(ed25519::sign(kind, private_key, body, now_unix))
        }
        SchemeKind::Sendgrid => Some(ecdsa::sign(private_key, body, now_unix)),
        _ => None,
    }
}

/// For schemes that carry their signature inside the body (Mailgun): `body` with a
/// signature added, or `None` for every other scheme. `Err` explains why the body
/// cannot carry one (Mailgun's must be a JSON object).
pub fn sign_body(
    kind: SchemeKind,
    secret: &Secret,
    body: &[u8],
    now_unix: i64,
    delivery_id: Option<&str>,
) -> Option<Result<Vec<u8>, String>> {
    match kind {
        SchemeKind::Mailgun => Some(mailgun::sign_body(secret, body, now_unix, delivery_id)),
        _ => None,
    }
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
            public_url: None,
        }
    }

    /// The value `sign` produced for header `name`.
    pub fn value_of<'a>(signed: &'a [(HeaderName, String)], name: &str) -> &'a str {
        &signed.iter().find(|(n, _)| n == name).unwrap().1
    }
}

#[cfg(test)]
mod tests {
    use super::secret::*;
    use super::testutil::*;
    use super::util::*;
    use super::*;
    use base64::Engine as _;

    #[test]
    fn scheme_names_round_trip() {
        for k in SchemeKind::ALL {
            assert_eq!(SchemeKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(SchemeKind::parse("GitHub"), Some(SchemeKind::Github));
        assert_eq!(SchemeKind::parse("svix"), Some(SchemeKind::Standard));
        assert_eq!(SchemeKind::parse("Forgejo"), Some(SchemeKind::Gitea));
        assert_eq!(SchemeKind::parse("x-hub"), None);
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
            // Standard decodes base64; discord and telnyx take a public key.
            if matches!(
                k,
                SchemeKind::Standard
                    | SchemeKind::Discord
                    | SchemeKind::Telnyx
                    | SchemeKind::Sendgrid
            ) {
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
                public_url: None,
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
            public_url: None,
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
