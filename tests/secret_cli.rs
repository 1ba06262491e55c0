//! `hookrelay secret new --scheme S`: the printed secret has the scheme's format and
//! `hookrelay check` accepts it in a channel; schemes whose provider issues the secret
//! exit 2 saying where to get it.

mod common;

use std::process::{Command, Output, Stdio};

use base64::Engine as _;
use common::bin;

fn run(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run hookrelay")
}

fn new_secret(scheme: &str) -> String {
    let out = run(&["secret", "new", "--scheme", scheme]);
    assert!(
        out.status.success(),
        "{scheme}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    assert!(
        text.ends_with('\n') && text.lines().count() == 1,
        "{text:?}"
    );
    text.trim_end().to_string()
}

/// `hookrelay check` on a one-channel config with `secret`.
fn check(scheme: &str, secret: &str) -> Output {
    let dir = tempfile::tempdir().expect("tempdir");
    let extra = if scheme == "hmac" {
        "header = \"X-Signature\"\n"
    } else {
        ""
    };
    let text = format!(
        "[[channel]]\nname = \"c\"\nscheme = \"{scheme}\"\nsecrets = [\"{secret}\"]\n{extra}"
    );
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).expect("write");
    run(&["check", "--config", path.to_str().expect("path")])
}

#[test]
fn standard_secrets_are_whsec_base64_of_32_random_bytes() {
    for scheme in ["standard", "svix"] {
        let s = new_secret(scheme);
        let b64 = s.strip_prefix("whsec_").expect("whsec_ prefix");
        let key = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("base64");
        assert_eq!(key.len(), 32);
        assert_ne!(s, new_secret(scheme), "two secrets are never the same");
        let out = check(scheme, &s);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn receiver_chosen_secrets_are_64_hex_digits_and_pass_check() {
    for scheme in [
        "hmac",
        "github",
        "gitlab",
        "bitbucket",
        "gitea",
        "okta",
        "twitch",
    ] {
        let s = new_secret(scheme);
        assert_eq!(s.len(), 64, "{scheme}: {s}");
        assert!(s.bytes().all(|b| b.is_ascii_hexdigit()), "{scheme}: {s}");
        let out = check(scheme, &s);
        assert!(
            out.status.success(),
            "{scheme}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let basic = new_secret("postmark");
    assert!(basic.starts_with("hookrelay:"), "{basic}");
    assert!(check("postmark", &basic).status.success());
}

#[test]
fn provider_issued_secrets_exit_2_saying_where_to_get_them() {
    for (scheme, says) in [
        ("stripe", "issues the signing secret"),
        ("slack", "issues the signing secret"),
        ("discord", "public key"),
        ("sendgrid", "public key"),
        ("asana", "X-Hook-Secret"),
        ("none", "no secret"),
        ("nonsense", "unknown scheme"),
    ] {
        let out = run(&["secret", "new", "--scheme", scheme]);
        assert_eq!(out.status.code(), Some(2), "{scheme}");
        assert!(out.stdout.is_empty(), "{scheme}: nothing on stdout");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{scheme}: {err}");
    }
}
