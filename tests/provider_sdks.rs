//! Every preset whose provider ships an SDK (or reference code) on PyPI or npm, checked
//! against that code: it signs a request (or verifies what `hookrelay send` signed),
//! a real relay accepts it, and refuses it tampered, under another key, stale and
//! unsigned. The SDKs run from `tests/sdk/` (`sign.py`, `sign.mjs`); `.ci/run`
//! installs them, and a missing one fails the test with its name.
//!
//! Providers without a packaged SDK are tested against their documented examples in
//! `src/common/verify/presets_tests.rs`.

mod common;
#[path = "sdk/driver.rs"]
mod driver;
#[path = "common/hooks.rs"]
mod hooks;

use common::keys::{
    ED_PUBLIC_B64, ED_PUBLIC_HEX, ED_SEED_HEX, OTHER_ED_PUBLIC_B64, OTHER_ED_PUBLIC_HEX,
    OTHER_P256_SPKI_B64, P256_PKCS8_B64, P256_SPKI_B64,
};
use driver::{form_body, json_body, Case, Sdk, Sig};

const SECRET: &str = "sdk-test-secret-0123456789abcdef";
const OTHER: &str = "another-secret-0123456789abcdef";
/// A Standard Webhooks / Svix secret: `whsec_` + base64 of the key.
const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OTHER_WHSEC: &str = "whsec_c2RrLXRlc3Qtb3RoZXIta2V5LTAxMjM0NQ==";

/// An HMAC provider whose secret is a plain string.
fn hmac_case(scheme: &'static str, sdk: Sdk, header: &'static str) -> Case {
    Case {
        scheme,
        sdk,
        sig: Sig::Header(header),
        secret: SECRET,
        signing_key: SECRET,
        other_secret: OTHER,
        body: json_body,
        channel_extra: "",
    }
}

#[test]
fn github_octokit_webhooks() {
    hmac_case("github", Sdk::NodeSign("github"), "x-hub-signature-256").run();
}

#[test]
fn stripe_python_sdk() {
    hmac_case("stripe", Sdk::PySign("stripe"), "stripe-signature").run();
}

#[test]
fn slack_sdk_signature_verifier() {
    hmac_case("slack", Sdk::PySign("slack"), "x-slack-signature").run();
}

#[test]
fn standard_webhooks_python() {
    let c = Case {
        secret: WHSEC,
        signing_key: WHSEC,
        other_secret: OTHER_WHSEC,
        ..hmac_case("standard", Sdk::PySign("standard"), "webhook-signature")
    };
    c.run();
}

#[test]
fn svix_python_with_svix_headers() {
    let c = Case {
        secret: WHSEC,
        signing_key: WHSEC,
        other_secret: OTHER_WHSEC,
        ..hmac_case("svix", Sdk::PySign("svix"), "svix-signature")
    };
    c.run();
}

#[test]
fn twilio_request_validator() {
    let c = Case {
        body: form_body,
        ..hmac_case("twilio", Sdk::PySign("twilio"), "x-twilio-signature")
    };
    c.run();
}

#[test]
fn hubspot_api_client_v3() {
    hmac_case("hubspot", Sdk::PySign("hubspot"), "x-hubspot-signature-v3").run();
}

#[test]
fn monday_jwt_by_pyjwt() {
    let c = Case {
        sig: Sig::HeaderOnly("authorization"),
        ..hmac_case("monday", Sdk::PySign("monday"), "authorization")
    };
    c.run();
}

#[test]
fn razorpay_python_verifies_send() {
    hmac_case(
        "razorpay",
        Sdk::PyVerify("razorpay"),
        "x-razorpay-signature",
    )
    .run();
}

#[test]
fn square_python_verifies_send() {
    let c = hmac_case(
        "square",
        Sdk::PyVerify("square"),
        "x-square-hmacsha256-signature",
    );
    c.run();
}

#[test]
fn shopify_api_verifies_send() {
    let c = hmac_case(
        "shopify",
        Sdk::NodeVerify("shopify"),
        "x-shopify-hmac-sha256",
    );
    c.run();
}

#[test]
fn coinbase_commerce_verifies_send() {
    hmac_case(
        "coinbase",
        Sdk::PyVerify("coinbase"),
        "x-cc-webhook-signature",
    )
    .run();
}

#[test]
fn paddle_python_sdk_verifies_send() {
    let c = Case {
        // Paddle's 5 s default is too tight for a busy test machine.
        channel_extra: "tolerance_secs = 60\n",
        ..hmac_case("paddle", Sdk::PyVerify("paddle"), "paddle-signature")
    };
    c.run();
}

#[test]
fn mailgun_python_sdk_verifies_send() {
    let c = Case {
        sig: Sig::InBody,
        ..hmac_case("mailgun", Sdk::PyVerify("mailgun"), "")
    };
    c.run();
}

/// Linear's client checks `webhookTimestamp` (milliseconds, within a minute) in the body.
fn linear_body(now: i64) -> String {
    format!(
        r#"{{"action":"create","type":"Issue","data":{{"estimate":4200}},"webhookTimestamp":{}}}"#,
        now * 1000
    )
}

#[test]
fn linear_sdk_verifies_send() {
    let c = Case {
        body: linear_body,
        ..hmac_case("linear", Sdk::NodeVerify("linear"), "linear-signature")
    };
    c.run();
}

#[test]
fn discord_pynacl_and_discord_interactions() {
    let c = Case {
        secret: ED_PUBLIC_HEX,
        signing_key: ED_SEED_HEX,
        other_secret: OTHER_ED_PUBLIC_HEX,
        ..hmac_case("discord", Sdk::PySign("discord"), "x-signature-ed25519")
    };
    c.run();
}

#[test]
fn telnyx_pynacl() {
    let c = Case {
        secret: ED_PUBLIC_B64,
        signing_key: ED_SEED_HEX,
        other_secret: OTHER_ED_PUBLIC_B64,
        ..hmac_case("telnyx", Sdk::PySign("telnyx"), "telnyx-signature-ed25519")
    };
    c.run();
}

#[test]
fn telnyx_python_sdk_verifies_send() {
    let c = Case {
        secret: ED_PUBLIC_B64,
        signing_key: ED_SEED_HEX,
        other_secret: OTHER_ED_PUBLIC_B64,
        ..hmac_case(
            "telnyx",
            Sdk::PyVerify("telnyx"),
            "telnyx-signature-ed25519",
        )
    };
    c.run();
}

#[test]
fn openai_python_sdk_verifies_send() {
    let c = Case {
        secret: WHSEC,
        signing_key: WHSEC,
        other_secret: OTHER_WHSEC,
        ..hmac_case("openai", Sdk::PyVerify("openai"), "webhook-signature")
    };
    c.run();
}

#[test]
fn resend_python_sdk_verifies_send() {
    let c = Case {
        secret: WHSEC,
        signing_key: WHSEC,
        other_secret: OTHER_WHSEC,
        ..hmac_case("resend", Sdk::PyVerify("resend"), "webhook-signature")
    };
    c.run();
}

#[test]
fn sendgrid_eventwebhook_verifies_send() {
    let c = Case {
        secret: P256_SPKI_B64,
        signing_key: P256_PKCS8_B64,
        other_secret: OTHER_P256_SPKI_B64,
        ..hmac_case(
            "sendgrid",
            Sdk::NodeVerify("sendgrid"),
            "x-twilio-email-event-webhook-signature",
        )
    };
    c.run();
}

/// The README's table says, for every preset, which provider code tests it.
#[test]
fn readme_names_the_code_testing_every_preset() {
    use hookrelay::common::verify::SchemeKind;
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let table = readme
        .split_once("<!-- sdks:start -->")
        .and_then(|(_, rest)| rest.split_once("<!-- sdks:end -->"))
        .expect("README has the sdks table")
        .0;
    let first_columns: Vec<&str> = table
        .lines()
        .filter_map(|l| l.strip_prefix("| ")?.split(" | ").next())
        .collect();
    for kind in SchemeKind::ALL {
        if matches!(kind, SchemeKind::Hmac | SchemeKind::None) {
            continue;
        }
        let name = format!("`{kind}`");
        assert!(
            first_columns.iter().any(|c| c.contains(&name)),
            "README's SDK table does not list {name}"
        );
    }
}
