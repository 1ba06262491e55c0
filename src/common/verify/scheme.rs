//! What a channel's scheme is, and what a check answers: the vocabulary shared by the
//! scheme files and the relay.

use std::fmt;

use http::HeaderName;

/// Which provider convention a channel uses (`scheme = "..."` in `[[channel]]`).
///
/// Every kind but `Hmac` and `None` is a provider preset; what each one checks is
/// declared in the preset table (`preset.rs`), and the README's table is generated
/// from it. The order here is the table's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemeKind {
    /// `X-Hub-Signature-256: sha256=<hex>` over the body.
    Github,
    /// `X-Gitlab-Token` equal to the secret.
    Gitlab,
    /// Bitbucket Cloud and Data Center: `X-Hub-Signature: sha256=<hex>` over the body.
    Bitbucket,
    /// Gitea and Forgejo: `X-Gitea-Signature: <hex>` over the body.
    Gitea,
    /// `Stripe-Signature: t=<unix>,v1=<hex>...` over `"{t}.{body}"`.
    Stripe,
    /// `X-Shopify-Hmac-Sha256: <base64>` over the body.
    Shopify,
    /// `Paddle-Signature: ts=<unix>;h1=<hex>` over `"{ts}:{body}"`.
    Paddle,
    /// Coinbase Commerce: `X-CC-Webhook-Signature: <hex>` over the body.
    Coinbase,
    /// `X-Razorpay-Signature: <hex>` over the body.
    Razorpay,
    /// `X-Paystack-Signature: <hex HMAC-SHA512>` over the body.
    Paystack,
    /// `X-WC-Webhook-Signature: <base64>` over the body.
    Woocommerce,
    /// Lemon Squeezy: `X-Signature: <hex>` over the body.
    Lemonsqueezy,
    /// `X-Slack-Signature: v0=<hex>` over `"v0:{ts}:{body}"`.
    Slack,
    /// Mailgun: `signature.{timestamp,token,signature}` inside the body.
    Mailgun,
    /// `X-Hub-Signature: sha1=<hex HMAC-SHA1>` over the body.
    Intercom,
    /// Meta (Facebook, Instagram, WhatsApp): `X-Hub-Signature-256: sha256=<hex>`.
    Meta,
    /// Standard Webhooks / Svix: `webhook-signature: v1,<base64>...` over `"{id}.{ts}.{body}"`.
    Standard,
    /// `Linear-Signature: <hex>` over the body.
    Linear,
    /// `Typeform-Signature: sha256=<base64>` over the body.
    Typeform,
    /// `X-Vercel-Signature: <hex HMAC-SHA1>` over the body.
    Vercel,
    /// Twitch EventSub: `sha256=<hex>` over message id + timestamp + body.
    Twitch,
    /// `Sentry-Hook-Signature: <hex>` over the body.
    Sentry,
    /// PagerDuty v3: `X-PagerDuty-Signature: v1=<hex>[,v1=<hex>...]` over the body.
    Pagerduty,
    /// `Calendly-Webhook-Signature: t=<unix>,v1=<hex>` over `"{t}.{body}"`.
    Calendly,
    /// `X-Xero-Signature: <base64>` over the body.
    Xero,
    /// `X-Zendesk-Webhook-Signature: <base64>` over timestamp + body.
    Zendesk,
    /// `X-Notion-Signature: sha256=<hex>` over the body.
    Notion,
    /// HubSpot v3: `X-HubSpot-Signature-v3: <base64>` over method + URL + body + timestamp.
    Hubspot,
    /// monday.com: an HS256 JWT in `Authorization`.
    Monday,
    /// Square: `X-Square-HmacSha256-Signature: <base64>` over URL + body.
    Square,
    /// Twilio: `X-Twilio-Signature: <base64 HMAC-SHA1>` over URL + sorted form params.
    Twilio,
    /// Zoom: `x-zm-signature: v0=<hex>` over `"v0:{ts}:{body}"`.
    Zoom,
    /// Dropbox: `X-Dropbox-Signature: <hex>` over the body.
    Dropbox,
    /// Asana: `X-Hook-Signature: <hex>` over the body.
    Asana,
    /// Trello: `X-Trello-Webhook: <base64 HMAC-SHA1>` over body + callback URL.
    Trello,
    /// Atlassian (Jira, Confluence): `X-Hub-Signature: sha256=<hex>` over the body.
    Atlassian,
    /// Okta event hooks: `Authorization` equal to the secret.
    Okta,
    /// Postmark: HTTP basic auth, `Authorization: Basic <base64(user:password)>`.
    Postmark,
    /// Discord interactions: Ed25519 over timestamp + body; the secret is the public key.
    Discord,
    /// Telnyx: Ed25519 over `timestamp|body`; the secret is the public key.
    Telnyx,
    /// SendGrid event webhook: ECDSA P-256 over timestamp + body; the secret is the
    /// verification (public) key.
    Sendgrid,
    /// Twitter / X account activity: `x-twitter-webhooks-signature: sha256=<base64>`
    /// over the body; its CRC handshake is answered with the same key.
    Twitter,
    /// Generic HMAC over a configurable signed content, see [`HmacParams`].
    Hmac,
    /// No verification (explicit opt-in).
    None,
}

impl SchemeKind {
    /// All schemes, in the preset table's order (`hmac` and `none` last).
    pub const ALL: [SchemeKind; 44] = [
        SchemeKind::Github,
        SchemeKind::Gitlab,
        SchemeKind::Bitbucket,
        SchemeKind::Gitea,
        SchemeKind::Stripe,
        SchemeKind::Shopify,
        SchemeKind::Paddle,
        SchemeKind::Coinbase,
        SchemeKind::Razorpay,
        SchemeKind::Paystack,
        SchemeKind::Woocommerce,
        SchemeKind::Lemonsqueezy,
        SchemeKind::Slack,
        SchemeKind::Mailgun,
        SchemeKind::Intercom,
        SchemeKind::Meta,
        SchemeKind::Standard,
        SchemeKind::Linear,
        SchemeKind::Typeform,
        SchemeKind::Vercel,
        SchemeKind::Twitch,
        SchemeKind::Sentry,
        SchemeKind::Pagerduty,
        SchemeKind::Calendly,
        SchemeKind::Xero,
        SchemeKind::Zendesk,
        SchemeKind::Notion,
        SchemeKind::Hubspot,
        SchemeKind::Monday,
        SchemeKind::Square,
        SchemeKind::Twilio,
        SchemeKind::Zoom,
        SchemeKind::Dropbox,
        SchemeKind::Asana,
        SchemeKind::Trello,
        SchemeKind::Atlassian,
        SchemeKind::Okta,
        SchemeKind::Postmark,
        SchemeKind::Discord,
        SchemeKind::Telnyx,
        SchemeKind::Sendgrid,
        SchemeKind::Twitter,
        SchemeKind::Hmac,
        SchemeKind::None,
    ];

    /// The canonical (lowercase) config name: the provider's name.
    pub fn as_str(self) -> &'static str {
        match self {
            SchemeKind::Github => "github",
            SchemeKind::Gitlab => "gitlab",
            SchemeKind::Bitbucket => "bitbucket",
            SchemeKind::Gitea => "gitea",
            SchemeKind::Stripe => "stripe",
            SchemeKind::Shopify => "shopify",
            SchemeKind::Paddle => "paddle",
            SchemeKind::Coinbase => "coinbase",
            SchemeKind::Razorpay => "razorpay",
            SchemeKind::Paystack => "paystack",
            SchemeKind::Woocommerce => "woocommerce",
            SchemeKind::Lemonsqueezy => "lemonsqueezy",
            SchemeKind::Slack => "slack",
            SchemeKind::Mailgun => "mailgun",
            SchemeKind::Intercom => "intercom",
            SchemeKind::Meta => "meta",
            SchemeKind::Standard => "standard",
            SchemeKind::Linear => "linear",
            SchemeKind::Typeform => "typeform",
            SchemeKind::Vercel => "vercel",
            SchemeKind::Twitch => "twitch",
            SchemeKind::Sentry => "sentry",
            SchemeKind::Pagerduty => "pagerduty",
            SchemeKind::Calendly => "calendly",
            SchemeKind::Xero => "xero",
            SchemeKind::Zendesk => "zendesk",
            SchemeKind::Notion => "notion",
            SchemeKind::Hubspot => "hubspot",
            SchemeKind::Monday => "monday",
            SchemeKind::Square => "square",
            SchemeKind::Twilio => "twilio",
            SchemeKind::Zoom => "zoom",
            SchemeKind::Dropbox => "dropbox",
            SchemeKind::Asana => "asana",
            SchemeKind::Trello => "trello",
            SchemeKind::Atlassian => "atlassian",
            SchemeKind::Okta => "okta",
            SchemeKind::Postmark => "postmark",
            SchemeKind::Discord => "discord",
            SchemeKind::Telnyx => "telnyx",
            SchemeKind::Sendgrid => "sendgrid",
            SchemeKind::Twitter => "twitter",
            SchemeKind::Hmac => "hmac",
            SchemeKind::None => "none",
        }
    }
}

impl fmt::Display for SchemeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The hash function of an HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// HMAC-SHA1 (20 bytes), still used by a few providers (Vercel, Intercom).
    Sha1,
    /// HMAC-SHA256 (32 bytes), the common case.
    Sha256,
    /// HMAC-SHA512 (64 bytes), e.g. Paystack.
    Sha512,
}

impl Algorithm {
    /// Parses `sha1`, `sha256` or `sha512` (ASCII case-insensitively).
    pub fn parse(s: &str) -> Option<Algorithm> {
        [Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512]
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
    }

    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "sha1",
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// The MAC's length in bytes.
    pub fn mac_len(self) -> usize {
        match self {
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 => 32,
            Algorithm::Sha512 => 64,
        }
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
/// `<prefix><encoded HMAC(signed content)>` in `header`. The prefix may be empty and is
/// matched ASCII case-insensitively. The signed content is `template` with `{body}`,
/// `{timestamp}` (the value of `timestamp_header`, unix seconds, checked against the
/// tolerance) and `{id}` (the value of `id_header`) filled in.
#[derive(Debug, Clone)]
pub struct HmacParams {
    /// The header carrying the signature.
    pub header: HeaderName,
    /// Text before the encoded MAC, e.g. `sha256=`; may be empty.
    pub prefix: String,
    /// Hex or base64.
    pub encoding: Encoding,
    /// The HMAC's hash function (`sha256` by default).
    pub algorithm: Algorithm,
    /// The signed content (`{body}` by default); see [`validate_template`](crate::common::verify::validate_template).
    pub template: String,
    /// The header whose value `{timestamp}` stands for.
    pub timestamp_header: Option<HeaderName>,
    /// The header whose value `{id}` stands for.
    pub id_header: Option<HeaderName>,
}

impl HmacParams {
    /// HMAC-SHA256 over the bare body, the historical default of scheme `hmac`.
    pub fn new(header: HeaderName, prefix: String, encoding: Encoding) -> HmacParams {
        HmacParams {
            header,
            prefix,
            encoding,
            algorithm: Algorithm::Sha256,
            template: "{body}".to_string(),
            timestamp_header: None,
            id_header: None,
        }
    }
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
