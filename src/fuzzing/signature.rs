//! Every signature header parser: one input is tried against every scheme, with its
//! parts in every header any scheme reads.

use std::sync::OnceLock;

use base64::Engine as _;
use http::{HeaderMap, HeaderName, HeaderValue};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};

use crate::common::verify::{Algorithm, Encoding, HmacParams, SchemeKind, Secret, Verifier};

/// Every header a scheme reads a signature, timestamp or id from (lower case).
const HEADERS: &[&str] = &[
    "authorization",
    "calendly-webhook-signature",
    "linear-delivery",
    "linear-signature",
    "paddle-signature",
    "sentry-hook-signature",
    "stripe-signature",
    "svix-id",
    "svix-signature",
    "svix-timestamp",
    "telnyx-signature-ed25519",
    "telnyx-timestamp",
    "twitch-eventsub-message-id",
    "twitch-eventsub-message-signature",
    "twitch-eventsub-message-timestamp",
    "typeform-signature",
    "webhook-id",
    "webhook-signature",
    "webhook-timestamp",
    "x-atlassian-webhook-identifier",
    "x-cc-webhook-signature",
    "x-dropbox-signature",
    "x-gitea-delivery",
    "x-gitea-signature",
    "x-github-delivery",
    "x-gitlab-token",
    "x-hook-signature",
    "x-hub-signature",
    "x-hub-signature-256",
    "x-hubspot-request-timestamp",
    "x-hubspot-signature-v3",
    "x-notion-signature",
    "x-okta-verification-challenge",
    "x-pagerduty-signature",
    "x-paystack-signature",
    "x-razorpay-event-id",
    "x-razorpay-signature",
    "x-shopify-hmac-sha256",
    "x-shopify-webhook-id",
    "x-signature",
    "x-signature-ed25519",
    "x-signature-timestamp",
    "x-slack-request-timestamp",
    "x-slack-signature",
    "x-square-hmacsha256-signature",
    "x-trello-webhook",
    "x-twilio-email-event-webhook-signature",
    "x-twilio-email-event-webhook-timestamp",
    "x-twilio-signature",
    "x-vercel-signature",
    "x-wc-webhook-delivery-id",
    "x-wc-webhook-signature",
    "x-xero-signature",
    "x-zendesk-webhook-invocation-id",
    "x-zendesk-webhook-signature",
    "x-zendesk-webhook-signature-timestamp",
    "x-zm-request-timestamp",
    "x-zm-signature",
];

/// A fixed clock: timestamps in corpus files stay inside or outside the tolerance
/// whenever they are replayed.
const NOW_UNIX: i64 = 1_700_000_000;

/// The input is: one byte choosing the generic `hmac` layout, then up to three
/// newline-separated header values (signature, timestamp, id), then the body.
pub fn signature(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let mut parts = rest.splitn(4, |&b| b == b'\n');
    let sig = parts.next().unwrap_or_default();
    let ts = parts.next().unwrap_or_default();
    let id = parts.next().unwrap_or_default();
    let body = parts.next().unwrap_or_default();
    let headers = headers(sig, ts, id);
    for verifier in verifiers(selector) {
        let _ = verifier.verify(&headers, body, NOW_UNIX);
    }
}

/// Each header gets the part its name suggests; values that are not valid header
/// bytes are left out, as hyper would have refused them.
fn headers(sig: &[u8], ts: &[u8], id: &[u8]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for name in HEADERS {
        let value = if name.contains("timestamp") {
            ts
        } else if name.ends_with("-id") || name.contains("delivery") || name.contains("identifier")
        {
            id
        } else {
            sig
        };
        if let Ok(v) = HeaderValue::from_bytes(value) {
            map.insert(HeaderName::from_static(name), v);
        }
    }
    map
}

/// A verifier for every scheme, plus the generic `hmac` in the layout `selector` picks.
fn verifiers(selector: u8) -> Vec<Verifier> {
    let keys = keys();
    let mut out: Vec<Verifier> = SchemeKind::ALL
        .iter()
        .filter_map(|&kind| verifier(kind, keys, None))
        .collect();
    const TEMPLATES: [&str; 4] = [
        "{body}",
        "{timestamp}.{body}",
        "{id}.{timestamp}.{body}",
        "{url}{body}",
    ];
    const ALGORITHMS: [Algorithm; 3] = [Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512];
    let params = HmacParams {
        header: HeaderName::from_static("x-signature"),
        prefix: if selector & 1 == 0 { "sha256=" } else { "" }.into(),
        encoding: if selector & 2 == 0 {
            Encoding::Hex
        } else {
            Encoding::Base64
        },
        algorithm: ALGORITHMS[usize::from(selector >> 2) % ALGORITHMS.len()],
        template: TEMPLATES[usize::from(selector >> 4) % TEMPLATES.len()].into(),
        timestamp_header: Some(HeaderName::from_static("webhook-timestamp")),
        id_header: Some(HeaderName::from_static("webhook-id")),
    };
    out.extend(verifier(SchemeKind::Hmac, keys, Some(params)));
    out
}

fn verifier(kind: SchemeKind, keys: &Keys, hmac: Option<HmacParams>) -> Option<Verifier> {
    let raw = match kind {
        SchemeKind::Discord => keys.discord.as_str(),
        SchemeKind::Telnyx => keys.telnyx.as_str(),
        SchemeKind::Sendgrid => keys.sendgrid.as_str(),
        SchemeKind::Standard => "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        _ => "fuzz-secret",
    };
    Some(Verifier {
        kind,
        hmac,
        secrets: vec![Secret::for_scheme(kind, raw).ok()?],
        tolerance_secs: 300,
        public_url: Some("https://relay.example.com/hooks/c?a=1".into()),
    })
}

/// The public keys asymmetric schemes are configured with.
struct Keys {
    discord: String,
    telnyx: String,
    sendgrid: String,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let ed = Ed25519KeyPair::from_seed_unchecked(&[7; 32]).ok();
        let ed_public = ed
            .map(|k| k.public_key().as_ref().to_vec())
            .unwrap_or_default();
        Keys {
            discord: hex::encode(&ed_public),
            telnyx: base64::engine::general_purpose::STANDARD.encode(&ed_public),
            sendgrid: sendgrid_key().unwrap_or_default(),
        }
    })
}

/// A P-256 public key as SendGrid shows it: base64 of the DER SubjectPublicKeyInfo.
fn sendgrid_key() -> Option<String> {
    const SPKI_PREFIX: [u8; 26] = [
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08,
        0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
    ];
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).ok()?;
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).ok()?;
    let mut der = SPKI_PREFIX.to_vec();
    der.extend_from_slice(pair.public_key().as_ref());
    Some(base64::engine::general_purpose::STANDARD.encode(der))
}
