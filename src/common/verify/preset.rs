//! The provider preset table: one small entry per provider, in [`SchemeKind::ALL`]
//! order, each citing the provider documentation it follows. The generic engine
//! (`engine.rs`) verifies and signs every [`Check::Hmac`] entry; the README's preset
//! table is rendered from these entries (`readme.rs`).

use super::scheme::{Algorithm, Encoding, SchemeKind};
use super::spec::{Check, Layout, Preset, Spec, Timestamp, TsFormat, TsSource};

/// Tolerance for providers that document none: five minutes, as Stripe and Slack.
pub(crate) const DEFAULT_TOLERANCE_SECS: u64 = 300;

/// HMAC over the bare body, `<prefix><mac>` in `header`.
const fn body(header: &'static str, prefix: &'static str, e: Encoding, a: Algorithm) -> Check {
    Check::Hmac(Spec {
        header,
        layout: Layout::Single { prefix },
        encoding: e,
        algorithm: a,
        template: "{body}",
        timestamp: None,
        id_header: None,
    })
}

/// A timestamp in its own header.
const fn ts_header(h: &'static str, format: TsFormat, tol: u64) -> Option<Timestamp<'static>> {
    Some(Timestamp {
        source: TsSource::Header(h),
        format,
        default_tolerance_secs: tol,
    })
}

/// A timestamp in the signature header's `ts_key` field, unix seconds.
const fn ts_field(tol: u64) -> Option<Timestamp<'static>> {
    Some(Timestamp {
        source: TsSource::Field,
        format: TsFormat::UnixSecs,
        default_tolerance_secs: tol,
    })
}

/// `<ts_key>=<unix>,<sig_key>=<hex>` over `"{timestamp}<sep>{body}"`, HMAC-SHA256.
const fn fields(
    header: &'static str,
    sep: char,
    ts_key: &'static str,
    sig_key: &'static str,
    template: &'static str,
    tol: u64,
) -> Check {
    Check::Hmac(Spec {
        header,
        layout: Layout::Fields {
            sep,
            ts_key,
            sig_key,
        },
        encoding: Encoding::Hex,
        algorithm: Algorithm::Sha256,
        template,
        timestamp: ts_field(tol),
        id_header: None,
    })
}

const fn row(
    kind: SchemeKind,
    provider: &'static str,
    check: Check,
    delivery_header: Option<&'static str>,
    doc: &'static str,
) -> Preset {
    Preset {
        kind,
        provider,
        aliases: &[],
        check,
        delivery_header,
        handshake: None,
        doc,
    }
}

use Algorithm::{Sha1, Sha256, Sha512};
use Encoding::{Base64, Hex};

/// Every scheme's entry, indexed by `SchemeKind as usize`.
pub(crate) static PRESETS: [Preset; SchemeKind::ALL.len()] = [
    row(SchemeKind::Github, "GitHub", body("x-hub-signature-256", "sha256=", Hex, Sha256), Some("x-github-delivery"),
        "https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries"),
    row(SchemeKind::Gitlab, "GitLab", Check::Token { header: "x-gitlab-token" }, Some("idempotency-key"),
        "https://docs.gitlab.com/user/project/integrations/webhooks/#validate-requests-with-a-secret-token"),
    row(SchemeKind::Bitbucket, "Bitbucket", body("x-hub-signature", "sha256=", Hex, Sha256), Some("x-request-uuid"),
        "https://support.atlassian.com/bitbucket-cloud/docs/manage-webhooks/#Secure-webhooks"),
    Preset {
        aliases: &["forgejo"],
        ..row(SchemeKind::Gitea, "Gitea / Forgejo", body("x-gitea-signature", "", Hex, Sha256), Some("x-gitea-delivery"),
            "https://docs.gitea.com/usage/webhooks")
    },
    row(SchemeKind::Stripe, "Stripe", fields("stripe-signature", ',', "t", "v1", "{timestamp}.{body}", DEFAULT_TOLERANCE_SECS), None,
        "https://docs.stripe.com/webhooks#verify-manually"),
    row(SchemeKind::Shopify, "Shopify", body("x-shopify-hmac-sha256", "", Base64, Sha256), Some("x-shopify-webhook-id"),
        "https://shopify.dev/docs/apps/build/webhooks/subscribe/https#step-5-verify-the-webhook"),
    // Paddle's SDKs allow 5 seconds of variance; `tolerance_secs` can widen it.
    row(SchemeKind::Paddle, "Paddle", fields("paddle-signature", ';', "ts", "h1", "{timestamp}:{body}", 5), None,
        "https://developer.paddle.com/webhooks/signature-verification"),
    row(SchemeKind::Coinbase, "Coinbase Commerce", body("x-cc-webhook-signature", "", Hex, Sha256), None,
        "https://docs.cdp.coinbase.com/commerce/docs/webhooks-security"),
    row(SchemeKind::Razorpay, "Razorpay", body("x-razorpay-signature", "", Hex, Sha256), Some("x-razorpay-event-id"),
        "https://razorpay.com/docs/webhooks/validate-test/"),
    row(SchemeKind::Paystack, "Paystack", body("x-paystack-signature", "", Hex, Sha512), None,
        "https://paystack.com/docs/payments/webhooks/#verify-event-origin"),
    row(SchemeKind::Woocommerce, "WooCommerce", body("x-wc-webhook-signature", "", Base64, Sha256), Some("x-wc-webhook-delivery-id"),
        "https://woocommerce.github.io/woocommerce-rest-api-docs/#webhooks"),
    row(SchemeKind::Lemonsqueezy, "Lemon Squeezy", body("x-signature", "", Hex, Sha256), None,
        "https://docs.lemonsqueezy.com/help/webhooks/signing-requests"),
    Preset {
        // Handshake: answered by the relay (`HandshakeKind::of_scheme`).
        ..row(SchemeKind::Slack, "Slack", Check::Hmac(Spec {
            header: "x-slack-signature",
            layout: Layout::Single { prefix: "v0=" },
            encoding: Hex,
            algorithm: Sha256,
            template: "v0:{timestamp}:{body}",
            timestamp: ts_header("x-slack-request-timestamp", TsFormat::UnixSecs, DEFAULT_TOLERANCE_SECS),
            id_header: None,
        }), None, "https://docs.slack.dev/authentication/verifying-requests-from-slack")
    },
    row(SchemeKind::Mailgun, "Mailgun",
        Check::Custom("HMAC-SHA256 (hex) of `signature.timestamp` + `signature.token` in the JSON body, timestamp within tolerance"),
        None, "https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/securing-webhooks"),
    row(SchemeKind::Intercom, "Intercom", body("x-hub-signature", "sha1=", Hex, Sha1), None,
        "https://developers.intercom.com/docs/references/webhooks/webhook-models#signed-notifications"),
    Preset {
        // Handshake: answered by the relay (`HandshakeKind::of_scheme`).
        ..row(SchemeKind::Meta, "Meta (Facebook, Instagram, WhatsApp)", body("x-hub-signature-256", "sha256=", Hex, Sha256), None,
            "https://developers.facebook.com/docs/graph-api/webhooks/getting-started#validate-payloads")
    },
    Preset {
        aliases: &["svix", "clerk", "resend", "openai"],
        ..row(SchemeKind::Standard, "Standard Webhooks (Svix, Clerk, Resend, OpenAI)",
            Check::Custom("`webhook-signature: v1,<base64>` HMAC-SHA256 of `{id}.{timestamp}.{body}` (`svix-*` headers too), key = base64 after `whsec_`, timestamp within tolerance"),
            Some("webhook-id"),
            "https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md")
    },
    row(SchemeKind::Linear, "Linear", body("linear-signature", "", Hex, Sha256), Some("linear-delivery"),
        "https://linear.app/developers/webhooks#securing-webhooks"),
    row(SchemeKind::Typeform, "Typeform", body("typeform-signature", "sha256=", Base64, Sha256), None,
        "https://www.typeform.com/developers/webhooks/secure-your-webhooks/"),
    row(SchemeKind::Vercel, "Vercel", body("x-vercel-signature", "", Hex, Sha1), None,
        "https://vercel.com/docs/webhooks/webhooks-api#securing-webhooks"),
    Preset {
        // Handshake: answered by the relay (`HandshakeKind::of_scheme`).
        ..row(SchemeKind::Twitch, "Twitch EventSub", Check::Hmac(Spec {
            header: "twitch-eventsub-message-signature",
            layout: Layout::Single { prefix: "sha256=" },
            encoding: Hex,
            algorithm: Sha256,
            template: "{id}{timestamp}{body}",
            // Twitch: "make sure the message was sent within the last 10 minutes".
            timestamp: ts_header("twitch-eventsub-message-timestamp", TsFormat::Rfc3339, 600),
            id_header: Some("twitch-eventsub-message-id"),
        }), None, "https://dev.twitch.tv/docs/eventsub/handling-webhook-events/#verifying-the-event-message")
    },
    row(SchemeKind::Sentry, "Sentry", body("sentry-hook-signature", "", Hex, Sha256), Some("request-id"),
        "https://docs.sentry.io/organization/integrations/integration-platform/webhooks/#sentry-hook-signature"),
    row(SchemeKind::Pagerduty, "PagerDuty", Check::Hmac(Spec {
            header: "x-pagerduty-signature",
            layout: Layout::List { sep: ',', prefix: "v1=" },
            encoding: Hex,
            algorithm: Sha256,
            template: "{body}",
            timestamp: None,
            id_header: None,
        }), None, "https://developer.pagerduty.com/docs/webhooks/webhook-signatures/"),
    // Calendly's examples refuse signatures older than three minutes.
    row(SchemeKind::Calendly, "Calendly", fields("calendly-webhook-signature", ',', "t", "v1", "{timestamp}.{body}", 180), None,
        "https://developer.calendly.com/api-docs/4c305798a61d3-webhook-signatures"),
    Preset {
        handshake: Some("\"intent to receive\": answered by the signature check itself (401 for a bad signature, 200 for a good one)"),
        ..row(SchemeKind::Xero, "Xero", body("x-xero-signature", "", Base64, Sha256), None,
            "https://developer.xero.com/documentation/guides/webhooks/configuring-your-server/")
    },
    row(SchemeKind::Zendesk, "Zendesk", Check::Hmac(Spec {
            header: "x-zendesk-webhook-signature",
            layout: Layout::Single { prefix: "" },
            encoding: Base64,
            algorithm: Sha256,
            template: "{timestamp}{body}",
            timestamp: ts_header("x-zendesk-webhook-signature-timestamp", TsFormat::Rfc3339, DEFAULT_TOLERANCE_SECS),
            id_header: None,
        }), Some("x-zendesk-webhook-invocation-id"), "https://developer.zendesk.com/documentation/webhooks/verifying/"),
    Preset {
        handshake: Some("one-time unsigned `verification_token` POST: not answered by the relay yet"),
        ..row(SchemeKind::Notion, "Notion", body("x-notion-signature", "sha256=", Hex, Sha256), None,
            "https://developers.notion.com/reference/webhooks#step-3-validating-event-payloads-recommended")
    },
    // HubSpot signs the URL it posted to: the channel's `public_url`.
    row(SchemeKind::Hubspot, "HubSpot (v3)", Check::Hmac(Spec {
            header: "x-hubspot-signature-v3",
            layout: Layout::Single { prefix: "" },
            encoding: Base64,
            algorithm: Sha256,
            template: "POST{url}{body}{timestamp}",
            timestamp: ts_header("x-hubspot-request-timestamp", TsFormat::UnixMillis, DEFAULT_TOLERANCE_SECS),
            id_header: None,
        }), None, "https://developers.hubspot.com/docs/apps/legacy-apps/authentication/validating-requests"),
    row(SchemeKind::Monday, "monday.com",
        Check::Custom("HS256 JWT in `authorization` signed with the app's signing secret, `exp` not passed (the body is not signed)"),
        None, "https://developer.monday.com/apps/docs/integration-authorization"),
    // Square signs the notification URL it posted to: the channel's `public_url`.
    row(SchemeKind::Square, "Square", Check::Hmac(Spec {
            header: "x-square-hmacsha256-signature",
            layout: Layout::Single { prefix: "" },
            encoding: Base64,
            algorithm: Sha256,
            template: "{url}{body}",
            timestamp: None,
            id_header: None,
        }), None, "https://developer.squareup.com/docs/webhooks/step3validate"),
    row(SchemeKind::Twilio, "Twilio",
        Check::Custom("`x-twilio-signature: <base64>`, HMAC-SHA-1 of the channel's `public_url` + the form parameters sorted by name (name, value, ...)"),
        Some("i-twilio-idempotency-token"), "https://www.twilio.com/docs/usage/webhooks/webhooks-security"),
    Preset {
        // Handshake: answered by the relay (`HandshakeKind::of_scheme`).
        ..row(SchemeKind::Zoom, "Zoom", Check::Hmac(Spec {
            header: "x-zm-signature",
            layout: Layout::Single { prefix: "v0=" },
            encoding: Hex,
            algorithm: Sha256,
            template: "v0:{timestamp}:{body}",
            timestamp: ts_header("x-zm-request-timestamp", TsFormat::UnixSecs, DEFAULT_TOLERANCE_SECS),
            id_header: None,
        }), None, "https://developers.zoom.us/docs/api/webhooks/#verify-webhook-events")
    },
    Preset {
        // Handshake: answered by the relay (`HandshakeKind::of_scheme`).
        ..row(SchemeKind::Dropbox, "Dropbox", body("x-dropbox-signature", "", Hex, Sha256), None,
            "https://www.dropbox.com/developers/reference/webhooks")
    },
    Preset {
        // Handshake: answered by the relay (`HandshakeKind::of_scheme`).
        ..row(SchemeKind::Asana, "Asana", body("x-hook-signature", "", Hex, Sha256), None,
            "https://developers.asana.com/docs/webhooks-guide")
    },
    // Trello signs the callback URL it posted to: the channel's `public_url`.
    row(SchemeKind::Trello, "Trello", Check::Hmac(Spec {
            header: "x-trello-webhook",
            layout: Layout::Single { prefix: "" },
            encoding: Base64,
            algorithm: Sha1,
            template: "{body}{url}",
            timestamp: None,
            id_header: None,
        }), None, "https://developer.atlassian.com/cloud/trello/guides/rest-api/webhooks/#webhook-signatures"),
    row(SchemeKind::Atlassian, "Atlassian (Jira, Confluence)", body("x-hub-signature", "sha256=", Hex, Sha256),
        Some("x-atlassian-webhook-identifier"),
        "https://developer.atlassian.com/cloud/jira/platform/webhooks/#secure-admin-webhooks"),
    Preset {
        // Handshake: answered by the relay (`HandshakeKind::of_scheme`).
        ..row(SchemeKind::Okta, "Okta event hooks", Check::Token { header: "authorization" }, None,
            "https://developer.okta.com/docs/concepts/event-hooks/")
    },
    row(SchemeKind::Postmark, "Postmark", Check::Token { header: "authorization" }, None,
        "https://postmarkapp.com/support/article/1207-how-to-secure-webhooks"),
    Preset {
        handshake: Some("`PING` interaction (answer `{\"type\":1}`): not answered by the relay yet"),
        ..row(SchemeKind::Discord, "Discord interactions",
            Check::Custom("`x-signature-ed25519: <hex>`, Ed25519 of `{timestamp}{body}` under the app's public key (the `secrets` entry: hex, or base64); timestamp in `x-signature-timestamp` within ±300 s by default"),
            None, "https://discord.com/developers/docs/interactions/overview#setting-up-an-endpoint-validating-security-request-headers")
    },
    row(SchemeKind::Telnyx, "Telnyx",
        Check::Custom("`telnyx-signature-ed25519: <base64>`, Ed25519 of `{timestamp}|{body}` under the account's public key (the `secrets` entry: base64, or hex); timestamp in `telnyx-timestamp` within ±300 s by default"),
        None, "https://developers.telnyx.com/docs/messaging/messages/receiving-webhooks#webhook-signing"),
    row(SchemeKind::Sendgrid, "SendGrid event webhook",
        Check::Custom("`x-twilio-email-event-webhook-signature: <base64 DER>`, ECDSA P-256 SHA-256 of `{timestamp}{body}` under the verification key (the `secrets` entry, base64 DER); timestamp in `x-twilio-email-event-webhook-timestamp` within ±300 s by default"),
        None, "https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features"),
    Preset {
        aliases: &["x"],
        ..row(SchemeKind::Twitter, "Twitter / X (account activity)", body("x-twitter-webhooks-signature", "sha256=", Base64, Sha256), None,
            "https://docs.x.com/x-api/webhooks/introduction")
    },
    row(SchemeKind::Hmac, "Any other HMAC sender (`hmac`)",
        Check::Custom("configurable: `header`, `prefix`, `encoding` (hex, base64), `algorithm` (sha1, sha256, sha512), `template` with `{body}`, `{timestamp}` (`timestamp_header`), `{id}` (`id_header`)"),
        None, ""),
    row(SchemeKind::None, "No verification (`none`)", Check::Nothing, None, ""),
];

impl SchemeKind {
    /// Parses a config name (the provider's lower-case name, or an alias such as
    /// `svix` or `forgejo`), ASCII case-insensitively.
    pub fn parse(s: &str) -> Option<SchemeKind> {
        PRESETS
            .iter()
            .find(|p| {
                p.kind.as_str().eq_ignore_ascii_case(s)
                    || p.aliases.iter().any(|a| a.eq_ignore_ascii_case(s))
            })
            .map(|p| p.kind)
    }

    /// The other names this scheme is accepted under (e.g. `svix` for `standard`).
    pub fn aliases(self) -> &'static [&'static str] {
        self.preset().aliases
    }

    /// The provider documentation the preset follows (empty for `hmac`, `none`).
    pub fn doc_url(self) -> &'static str {
        self.preset().doc
    }

    /// This scheme's table entry.
    pub(crate) fn preset(self) -> &'static Preset {
        &PRESETS[self as usize]
    }

    /// Whether the scheme signs a timestamp (and so uses `tolerance_secs`).
    pub fn has_timestamp(self) -> bool {
        match &self.preset().check {
            Check::Hmac(spec) => spec.timestamp.is_some(),
            Check::Custom(_) => matches!(
                self,
                SchemeKind::Standard
                    | SchemeKind::Mailgun
                    | SchemeKind::Monday
                    | SchemeKind::Discord
                    | SchemeKind::Telnyx
                    | SchemeKind::Sendgrid
            ),
            Check::Token { .. } | Check::Nothing => false,
        }
    }

    /// The provider's recommended timestamp tolerance (a channel's default).
    pub fn default_tolerance_secs(self) -> u64 {
        match &self.preset().check {
            Check::Hmac(Spec {
                timestamp: Some(t), ..
            }) => t.default_tolerance_secs,
            _ => DEFAULT_TOLERANCE_SECS,
        }
    }

    /// The header carrying the provider's delivery id, used for dedup.
    pub fn delivery_header(self) -> Option<&'static str> {
        match (
            self.preset().check_id_header(),
            self.preset().delivery_header,
        ) {
            (Some(h), _) => Some(h),
            (None, h) => h,
        }
    }

    /// Whether the scheme signs the URL it was posted to (the channel's `public_url`).
    pub fn signs_url(self) -> bool {
        self == SchemeKind::Twilio
            || matches!(&self.preset().check, Check::Hmac(s) if s.template.contains("{url}"))
    }

    /// The value a token scheme's header carries for the configured `secret`: the
    /// secret itself, or for Postmark `Basic <base64(user:password)>`.
    pub fn token_value(self, secret: &str) -> String {
        use base64::Engine as _;
        match self {
            SchemeKind::Postmark => format!("Basic {}", super::secret::BASE64.encode(secret)),
            _ => secret.to_owned(),
        }
    }

    /// The header a token scheme (GitLab) sends the secret itself in.
    pub fn token_header(self) -> Option<&'static str> {
        match self.preset().check {
            Check::Token { header } => Some(header),
            _ => None,
        }
    }
}

impl Preset {
    /// The signed id header of an HMAC entry, if it has one.
    fn check_id_header(&self) -> Option<&'static str> {
        match &self.check {
            Check::Hmac(spec) => spec.id_header,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_in_kind_order_and_documented() {
        for (i, k) in SchemeKind::ALL.into_iter().enumerate() {
            assert_eq!(k as usize, i);
            assert_eq!(PRESETS[i].kind, k);
            let doc = PRESETS[i].doc;
            let documented =
                doc.starts_with("https://") || matches!(k, SchemeKind::Hmac | SchemeKind::None);
            assert!(documented, "{k} cites no documentation");
        }
    }

    #[test]
    fn names_and_aliases_are_unique_lower_case() {
        let mut seen = std::collections::BTreeSet::new();
        for p in &PRESETS {
            for n in std::iter::once(&p.kind.as_str()).chain(p.aliases) {
                assert_eq!(*n, n.to_ascii_lowercase());
                assert!(seen.insert(*n), "{n} twice");
            }
        }
    }

    #[test]
    fn header_names_are_valid_lower_case() {
        let ok = |h: &str| {
            http::HeaderName::from_bytes(h.as_bytes()).is_ok() && h == h.to_ascii_lowercase()
        };
        for p in &PRESETS {
            if let Check::Hmac(s) = &p.check {
                assert!(ok(s.header), "{}", s.header);
                assert!(s.id_header.is_none_or(ok));
                if let Some(Timestamp {
                    source: TsSource::Header(h),
                    ..
                }) = s.timestamp
                {
                    assert!(ok(h), "{h}");
                }
                assert!(super::super::template::validate_template(s.template).is_ok());
            }
            assert!(p.delivery_header.is_none_or(ok));
        }
    }
}
