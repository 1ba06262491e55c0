//! What a channel's scheme is, and what a check answers: the vocabulary shared by the
//! scheme files and the relay.

use std::fmt;

use http::HeaderName;

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
