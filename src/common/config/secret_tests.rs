//! Secret formats and handshake keys: each rule refuses with the file, line and key,
//! and says what was expected.

use super::*;

fn channel(body: &str) -> Result<Config, FileError> {
    let text = format!("[[channel]]\nname = \"c\"\n{body}\n");
    Config::parse(&text, "c.toml")
}

/// The refusal of `body`, checked to name line 4 (the third line of `body`) and `key`.
fn refused(body: &str, line: usize, key: &str) -> String {
    let e = channel(body).unwrap_err();
    assert_eq!(e.key, format!("channel[0].{key}"), "{e}");
    assert_eq!(e.line, Some(line), "{e}");
    e.to_string()
}

#[test]
fn standard_secret_is_whsec_base64() {
    let e = refused(
        "scheme = \"standard\"\nsecrets = [\"whsec_not*base64\"]",
        4,
        "secrets[0]",
    );
    assert!(e.contains("expects \"whsec_\" followed by base64"), "{e}");
    assert!(!e.contains("not*base64"), "the secret is not echoed: {e}");
    assert!(
        channel("scheme = \"svix\"\nsecrets = [\"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"]")
            .is_ok()
    );
}

#[test]
fn ed25519_public_keys_are_64_hex_digits_or_base64() {
    let hex = "79b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad049664";
    let b64 = "ebVWLo/mVPlAeLES6KmLp5AfhTrmlb7X4OORC60ElmQ=";
    for scheme in ["discord", "telnyx"] {
        for key in [hex, b64] {
            let ok = channel(&format!("scheme = \"{scheme}\"\nsecrets = [\"{key}\"]"));
            assert!(ok.is_ok(), "{scheme} {key}");
        }
        let e = refused(
            &format!("scheme = \"{scheme}\"\nsecrets = [\"{}\"]", &hex[..62]),
            4,
            "secrets[0]",
        );
        assert!(e.contains("Ed25519 public key: "), "{e}");
    }
}

#[test]
fn sendgrid_key_is_p256_der_base64() {
    let e = refused(
        "scheme = \"sendgrid\"\nsecrets = [\"bm9wZQ==\"]",
        4,
        "secrets[0]",
    );
    assert!(e.contains("ECDSA P-256 public key"), "{e}");
}

#[test]
fn handshake_keys_are_checked() {
    let e = refused(
        "scheme = \"github\"\nsecrets = [\"k\"]\nhandshake = true",
        5,
        "handshake",
    );
    assert!(e.contains("no handshake"), "{e}");
    let e = refused(
        "scheme = \"github\"\nsecrets = [\"k\"]\nverify_token = \"t\"",
        5,
        "verify_token",
    );
    assert!(e.contains("meta"), "{e}");
    let e = refused(
        "scheme = \"meta\"\nsecrets = [\"k\"]\nhandshake = false\nverify_token = \"t\"",
        6,
        "verify_token",
    );
    assert!(e.contains("handshake on"), "{e}");
    let e = refused(
        "scheme = \"slack\"\nsecrets = [\"k\"]\nreplace_hook_secret = true",
        5,
        "replace_hook_secret",
    );
    assert!(e.contains("asana"), "{e}");
    let e = refused(
        "scheme = \"meta\"\nsecrets = [\"k\"]\nverify_token = \"\"",
        5,
        "verify_token",
    );
    assert!(e.contains("empty"), "{e}");
}

#[test]
fn handshakes_default_on_for_presets_that_have_one() {
    let c = channel("scheme = \"meta\"\nsecrets = [\"k\"]\nverify_token = \"tok\"").unwrap();
    let h = &c.channels[0].handshakes;
    assert_eq!(
        h.kind,
        Some(crate::common::verify::HandshakeKind::MetaSubscribe)
    );
    assert!(h.verify_token.as_ref().unwrap().matches("tok"));
    assert!(!h.verify_token.as_ref().unwrap().matches("tok2"));
    assert!(!format!("{h:?}").contains("tok\""));
    let off = channel("scheme = \"zoom\"\nsecrets = [\"k\"]\nhandshake = false").unwrap();
    assert_eq!(off.channels[0].handshakes.kind, None);
    let graph = channel("scheme = \"none\"\nmsgraph_validation = true").unwrap();
    assert!(graph.channels[0].handshakes.msgraph_validation);
}

#[test]
fn asana_needs_no_secret_while_its_handshake_is_on() {
    let c = channel("scheme = \"asana\"\nreplace_hook_secret = true").unwrap();
    assert!(c.channels[0].handshakes.learns_secret());
    assert!(c.channels[0].handshakes.replace_hook_secret);
    let e = refused("scheme = \"asana\"\nhandshake = false", 1, "secrets");
    assert!(e.contains("needs at least one secret"), "{e}");
}
