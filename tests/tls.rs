//! `[server.tls]`: the relay serves HTTPS with a certificate from a private CA (made
//! here with rcgen), says so in its readiness line, accepts signed webhooks over it, and
//! never answers plain HTTP on the TLS port with a 200.

mod common;
#[path = "common/hooks.rs"]
mod hooks;

use std::path::{Path, PathBuf};

use common::{install_crypto, RelayProc};
use hooks::*;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

const SECRET: &str = "tls-secret";

/// A CA and a leaf for `127.0.0.1` and `localhost`, written as PEM files into `dir`.
struct Pki {
    ca_pem: String,
    cert: PathBuf,
    key: PathBuf,
}

fn make_pki(dir: &Path) -> Pki {
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "hookrelay test CA");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca, ca_key);

    let leaf_key = KeyPair::generate().expect("leaf key");
    let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .expect("leaf params");
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_cert = leaf
        .signed_by(&leaf_key, &issuer)
        .expect("leaf certificate");

    let pki = Pki {
        ca_pem: ca_cert.pem(),
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    std::fs::write(&pki.cert, leaf_cert.pem()).expect("write cert");
    std::fs::write(&pki.key, leaf_key.serialize_pem()).expect("write key");
    std::fs::write(dir.join("ca.pem"), &pki.ca_pem).expect("write ca");
    pki
}

fn start_tls(dir: &Path, pki: &Pki) -> RelayProc {
    RelayProc::start(
        dir,
        &format!(
            "admin_token = \"{ADMIN}\"\n\n[server.tls]\ncert = {:?}\nkey = {:?}",
            pki.cert.display().to_string(),
            pki.key.display().to_string()
        ),
        &format!("[[channel]]\nname = \"gh\"\nscheme = \"github\"\nsecrets = [\"{SECRET}\"]\n"),
    )
}

/// A client that trusts only the test CA.
fn https_client(pki: &Pki) -> Http {
    install_crypto();
    let ca = reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).expect("CA pem");
    Http::with_client(
        reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca)
            .build()
            .expect("client"),
    )
}

#[test]
fn signed_webhook_over_https_with_a_private_ca() {
    let dir = tempfile::tempdir().expect("tmp");
    let pki = make_pki(dir.path());
    let relay = start_tls(dir.path(), &pki);
    assert!(
        relay.base.starts_with("https://127.0.0.1:"),
        "readiness line must say https: {}",
        relay.base
    );
    let http = https_client(&pki);
    let port = relay.addr.port();
    for (i, host) in ["127.0.0.1", "localhost"].into_iter().enumerate() {
        let body = format!("{{\"over\":\"tls\",\"host\":\"{host}\"}}");
        let url = format!("https://{host}:{port}/hooks/gh");
        let r = http.post(
            &url,
            &github(SECRET, body.as_bytes(), None),
            body.as_bytes(),
        );
        assert_eq!(r.status, 200, "{host}: {}", r.text());
        assert_eq!(r.json["offset"], i as u64 + 1);
        let e = event_at(&http, &relay, "gh", i as u64 + 1).expect("stored");
        assert_eq!(body_of(&e), body.as_bytes());
    }
    // A refusal over TLS is the same JSON error.
    http.post(
        &relay.url("/hooks/gh"),
        &github("wrong", b"{}", None),
        b"{}",
    )
    .assert_error(401, "invalid_signature");
}

#[test]
fn a_client_that_does_not_trust_the_ca_cannot_talk_to_the_relay() {
    let dir = tempfile::tempdir().expect("tmp");
    let pki = make_pki(dir.path());
    let relay = start_tls(dir.path(), &pki);
    install_crypto();
    let untrusting = Http::with_client(
        reqwest::Client::builder()
            .use_rustls_tls()
            .build()
            .expect("client"),
    );
    let body = b"{}";
    let r = untrusting.try_send(
        "POST",
        &relay.url("/hooks/gh"),
        &github(SECRET, body, None),
        body,
    );
    assert!(r.is_err(), "an unknown CA was accepted: {r:?}");
    // Nothing got through.
    assert_eq!(head(&https_client(&pki), &relay, "gh"), 0);
}

#[test]
fn plain_http_on_the_tls_port_never_gets_a_200() {
    let dir = tempfile::tempdir().expect("tmp");
    let pki = make_pki(dir.path());
    let mut relay = start_tls(dir.path(), &pki);
    let body = b"{\"plain\":true}";

    // Raw plaintext HTTP: whatever comes back (a TLS alert, or nothing), it is no 200.
    let req = raw_request("POST", "/hooks/gh", &github(SECRET, body, None), body, true);
    let answer = raw_exchange(relay.addr, &req);
    assert!(
        !answer.starts_with(b"HTTP/1.1 2") && !answer.starts_with(b"HTTP/1.0 2"),
        "plain HTTP was answered: {:?}",
        String::from_utf8_lossy(&answer)
    );
    // An HTTP client pointed at the TLS port fails or gets no 2xx.
    let plain = Http::new();
    let url = format!("http://{}/hooks/gh", relay.addr);
    if let Ok(r) = plain.try_send("POST", &url, &github(SECRET, body, None), body) {
        assert!(
            !(200..300).contains(&r.status),
            "plain HTTP got {}",
            r.status
        );
    }

    // The relay is unharmed, stored nothing, and still serves HTTPS.
    assert!(relay.alive(), "stderr:\n{}", relay.stderr_text());
    let https = https_client(&pki);
    assert_eq!(head(&https, &relay, "gh"), 0, "plain HTTP stored an event");
    let r = https.post(&relay.url("/hooks/gh"), &github(SECRET, body, None), body);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json["offset"], 1);
}

#[test]
fn unusable_tls_files_are_a_configuration_error() {
    let dir = tempfile::tempdir().expect("tmp");
    let pki = make_pki(dir.path());
    std::fs::write(dir.path().join("garbage.pem"), "not a certificate").expect("write");
    for (cert, key, expect) in [
        (
            dir.path().join("missing.pem"),
            pki.key.clone(),
            "server.tls.cert",
        ),
        (
            pki.cert.clone(),
            dir.path().join("missing.pem"),
            "server.tls.key",
        ),
        (
            dir.path().join("garbage.pem"),
            pki.key.clone(),
            "garbage.pem",
        ),
        (
            pki.cert.clone(),
            dir.path().join("garbage.pem"),
            "garbage.pem",
        ),
    ] {
        let config = dir.path().join("bad-tls.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\n\n[server.tls]\ncert = {:?}\nkey = {:?}\n",
                dir.path().join("data").display().to_string(),
                cert.display().to_string(),
                key.display().to_string()
            ),
        )
        .expect("config");
        let out = std::process::Command::new(common::bin())
            .args(["serve", "--config"])
            .arg(&config)
            .output()
            .expect("run serve");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{expect}: {stderr}");
        assert!(stderr.contains(expect), "{expect} not named: {stderr}");
        assert!(
            out.stdout.is_empty(),
            "no readiness line on a bad TLS config"
        );
    }
}
