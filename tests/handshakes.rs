//! Provider handshakes answered by a real relay: each one correctly (with the
//! provider's documented example values where the docs give them, expected values
//! computed here with `hmac`/`sha2`), none stored, forged or unsigned ones refused,
//! `GET` refused where the channel has no `GET` handshake, and Asana's learned secret
//! kept across a SIGKILL.

mod common;
#[path = "common/hooks.rs"]
mod hooks;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use common::metrics::{scrape, value};
use common::RelayProc;
use hooks::*;

const SLACK_SECRET: &str = "slack-signing-secret";
const ZOOM_SECRET: &str = "zoom-secret-token";
const TWITCH_SECRET: &str = "twitch-eventsub-secret";
const TWITTER_SECRET: &str = "twitter-consumer-secret";
/// Meta's example verify token and challenge (Graph API webhooks, "Getting started").
const META_TOKEN: &str = "meatyhamhock";
const META_CHALLENGE: &str = "1158201444";

fn mac(key: &str, parts: &[&[u8]]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("key");
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().to_vec()
}

fn hdr(n: &str, v: &str) -> (String, String) {
    (n.to_string(), v.to_string())
}

fn channels() -> String {
    format!(
        r#"
[[channel]]
name = "slack"
scheme = "slack"
secrets = ["{SLACK_SECRET}"]

[[channel]]
name = "meta"
scheme = "meta"
secrets = ["meta-app-secret"]
verify_token = "{META_TOKEN}"

[[channel]]
name = "zoom"
scheme = "zoom"
secrets = ["old-zoom-secret", "{ZOOM_SECRET}"]

[[channel]]
name = "x"
scheme = "x"
secrets = ["{TWITTER_SECRET}"]

[[channel]]
name = "graph"
scheme = "none"
msgraph_validation = true

[[channel]]
name = "okta"
scheme = "okta"
secrets = ["okta-auth-value"]

[[channel]]
name = "dropbox"
scheme = "dropbox"
secrets = ["dropbox-app-secret"]

[[channel]]
name = "twitch"
scheme = "twitch"
secrets = ["{TWITCH_SECRET}"]

[[channel]]
name = "gh"
scheme = "github"
secrets = ["gh-secret"]

[[channel]]
name = "zoom-off"
scheme = "zoom"
secrets = ["{ZOOM_SECRET}"]
handshake = false
"#
    )
}

/// One relay with every handshake channel.
fn start(dir: &std::path::Path) -> RelayProc {
    RelayProc::start(dir, &format!("admin_token = \"{ADMIN}\""), &channels())
}

fn assert_not_stored(http: &Http, relay: &RelayProc, channel: &str) {
    assert_eq!(
        head(http, relay, channel),
        0,
        "{channel}: a handshake was stored"
    );
}

fn handshakes_counted(relay: &RelayProc, channel: &str) -> f64 {
    let s = scrape(&relay.url("/metrics"));
    value(
        &s,
        "hookrelay_ingest_requests_total",
        &[("channel", channel), ("result", "handshake")],
    )
    .unwrap_or(0.0)
}

#[test]
fn slack_url_verification_is_verified_then_answered() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(dir.path());
    let http = Http::new();
    // Slack's documented url_verification payload.
    let body = br#"{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
    let url = relay.url("/hooks/slack");
    let r = http.post(&url, &slack(SLACK_SECRET, body, now_secs()), body);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json["challenge"],
        "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    );
    http.post(&url, &[], body)
        .assert_error(401, "missing_signature");
    http.post(&url, &slack("wrong", body, now_secs()), body)
        .assert_error(401, "invalid_signature");
    assert_not_stored(&http, &relay, "slack");
    assert_eq!(handshakes_counted(&relay, "slack"), 1.0);
    // An ordinary event still goes to the log.
    let event = br#"{"type":"event_callback"}"#;
    let r = http.post(&url, &slack(SLACK_SECRET, event, now_secs()), event);
    assert_eq!(r.json["offset"], 1, "{}", r.text());
    let log = relay.stderr_text();
    assert!(
        log.contains("handshake answered") && log.contains("slack_url_verification"),
        "{log}"
    );
    assert!(
        !log.contains("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"),
        "the challenge is not logged"
    );
}

#[test]
fn meta_get_checks_the_verify_token() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(dir.path());
    let http = Http::new();
    let url = |token: &str| {
        relay.url(&format!(
            "/hooks/meta?hub.mode=subscribe&hub.verify_token={token}&hub.challenge={META_CHALLENGE}"
        ))
    };
    let r = http.get(&url(META_TOKEN), None);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), META_CHALLENGE);
    assert!(r
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/plain")));
    http.get(&url("meatyhamhocks"), None)
        .assert_error(401, "unauthorized");
    http.get(
        &relay.url(&format!(
            "/hooks/meta?hub.mode=subscribe&hub.challenge={META_CHALLENGE}"
        )),
        None,
    )
    .assert_error(401, "unauthorized");
    // A GET that is no handshake, and GET on channels without a GET handshake.
    http.get(&relay.url("/hooks/meta"), None)
        .assert_error(405, "method_not_allowed");
    http.get(&relay.url("/hooks/gh?hub.mode=subscribe"), None)
        .assert_error(405, "method_not_allowed");
    http.get(&relay.url("/hooks/slack"), None)
        .assert_error(405, "method_not_allowed");
    assert_not_stored(&http, &relay, "meta");
    assert!(
        !relay.stderr_text().contains(META_TOKEN),
        "the verify token is not logged"
    );
}

fn zoom_headers(secret: &str, body: &[u8]) -> Vec<(String, String)> {
    let ts = now_secs().to_string();
    let sig = mac(secret, &[b"v0:", ts.as_bytes(), b":", body]);
    vec![
        hdr("x-zm-request-timestamp", &ts),
        hdr("x-zm-signature", &format!("v0={}", hex::encode(sig))),
    ]
}

#[test]
fn zoom_url_validation_answers_the_hmac_of_the_plain_token() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(dir.path());
    let http = Http::new();
    // Zoom's documented example plainToken.
    let body = br#"{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1654503849680,"event":"endpoint.url_validation"}"#;
    let r = http.post(
        &relay.url("/hooks/zoom"),
        &zoom_headers(ZOOM_SECRET, body),
        body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json["plainToken"], "qgg8vlvZRS6UYooatFL8Aw");
    // Keyed with the secret that verified (the second of a rotation).
    let expected = hex::encode(mac(ZOOM_SECRET, &[b"qgg8vlvZRS6UYooatFL8Aw"]));
    assert_eq!(r.json["encryptedToken"], expected);
    http.post(&relay.url("/hooks/zoom"), &[], body)
        .assert_error(401, "missing_signature");
    http.post(
        &relay.url("/hooks/zoom"),
        &zoom_headers("forged", body),
        body,
    )
    .assert_error(401, "invalid_signature");
    assert_not_stored(&http, &relay, "zoom");
    // With `handshake = false` the validation is an ordinary (stored) event.
    let r = http.post(
        &relay.url("/hooks/zoom-off"),
        &zoom_headers(ZOOM_SECRET, body),
        body,
    );
    assert_eq!(r.json["offset"], 1, "{}", r.text());
}

#[test]
fn twitter_crc_answers_and_only_json_events_are_stored() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(dir.path());
    let http = Http::new();
    let crc = "9b4507b3-9040-4669-9ba2-1d4d2e0fb8f0";
    let r = http.get(&relay.url(&format!("/hooks/x?crc_token={crc}")), None);
    assert_eq!(r.status, 200, "{}", r.text());
    let b64 =
        base64::engine::general_purpose::STANDARD.encode(mac(TWITTER_SECRET, &[crc.as_bytes()]));
    assert_eq!(r.json["response_token"], format!("sha256={b64}"));
    // Not a token: no HMAC of arbitrary text is handed out.
    http.get(&relay.url("/hooks/x?crc_token=%7B%22a%22%3A1%7D"), None)
        .assert_error(405, "method_not_allowed");
    assert_not_stored(&http, &relay, "x");
    let sign = |body: &[u8]| {
        let b64 = base64::engine::general_purpose::STANDARD.encode(mac(TWITTER_SECRET, &[body]));
        vec![hdr(
            "x-twitter-webhooks-signature",
            &format!("sha256={b64}"),
        )]
    };
    // A CRC answer replayed as an event signature is refused.
    http.post(
        &relay.url("/hooks/x"),
        &sign(crc.as_bytes()),
        crc.as_bytes(),
    )
    .assert_error(400, "bad_request");
    let event = br#"{"for_user_id":"2244994945"}"#;
    http.post(&relay.url("/hooks/x"), &sign(b"{}"), event)
        .assert_error(401, "invalid_signature");
    let r = http.post(&relay.url("/hooks/x"), &sign(event), event);
    assert_eq!(r.json["offset"], 1, "{}", r.text());
}

#[test]
fn graph_okta_and_dropbox_echo_their_challenge() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(dir.path());
    let http = Http::new();
    // Microsoft Graph's documented validation request.
    let graph = relay.url("/hooks/graph?validationToken=Validation%3A%20Testing%20client%20application%20reachability%20for%20subscription%20Request-Id%3A%2025b4b1f4-9e2d-4f5e-8dc6-23c2f1df0c2e");
    let r = http.post(&graph, &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "Validation: Testing client application reachability for subscription Request-Id: 25b4b1f4-9e2d-4f5e-8dc6-23c2f1df0c2e");
    assert!(r
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/plain")));
    let r = http.send(
        "GET",
        &relay.url("/hooks/okta"),
        &[hdr(
            "x-okta-verification-challenge",
            "X5I9LyoYJ-uqDjHvYQWQzr0mlM5P2VUMtsXGN4oQ",
        )],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json["verification"],
        "X5I9LyoYJ-uqDjHvYQWQzr0mlM5P2VUMtsXGN4oQ"
    );
    let r = http.get(
        &relay.url("/hooks/dropbox?challenge=dropbox-challenge-123"),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "dropbox-challenge-123");
    assert!(r
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/plain")));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    for c in ["graph", "okta", "dropbox"] {
        assert_not_stored(&http, &relay, c);
    }
}

fn twitch_headers(secret: &str, kind: &str, body: &[u8]) -> Vec<(String, String)> {
    let id = "e76c6bd4-55c9-4987-8304-da1588d8988b";
    let ts = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let sig = mac(secret, &[id.as_bytes(), ts.as_bytes(), body]);
    vec![
        hdr("twitch-eventsub-message-id", id),
        hdr("twitch-eventsub-message-timestamp", &ts),
        hdr(
            "twitch-eventsub-message-signature",
            &format!("sha256={}", hex::encode(sig)),
        ),
        hdr("twitch-eventsub-message-type", kind),
    ]
}

#[test]
fn twitch_callback_verification_is_verified_then_answered() {
    let dir = tempfile::tempdir().unwrap();
    let relay = start(dir.path());
    let http = Http::new();
    // Twitch's documented challenge request.
    let body = br#"{"challenge":"pogchamp-kappa-360noscope-vohiyo","subscription":{"id":"f1c2a387-161a-49f9-a165-0f21d7a4e1c4","status":"webhook_callback_verification_pending","type":"channel.follow","version":"2"}}"#;
    let url = relay.url("/hooks/twitch");
    let kind = "webhook_callback_verification";
    let r = http.post(&url, &twitch_headers(TWITCH_SECRET, kind, body), body);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "pogchamp-kappa-360noscope-vohiyo");
    assert!(r
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/plain")));
    let unsigned = [hdr("twitch-eventsub-message-type", kind)];
    http.post(&url, &unsigned, body)
        .assert_error(401, "missing_signature");
    http.post(&url, &twitch_headers("forged", kind, body), body)
        .assert_error(401, "invalid_signature");
    assert_not_stored(&http, &relay, "twitch");
}

fn asana_relay(dir: &std::path::Path) -> RelayProc {
    let channels = "[[channel]]\nname = \"asana\"\nscheme = \"asana\"\n";
    RelayProc::start(dir, &format!("admin_token = \"{ADMIN}\""), channels)
}

#[test]
fn asana_hook_secret_is_kept_across_a_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut relay = asana_relay(dir.path());
    let http = Http::new();
    let secret = "b537207f20cbfa02357cf448134da559e8bd39d61597dcd5631b8012eae53e81";
    let url = relay.url("/hooks/asana");
    let r = http.post(&url, &[hdr("x-hook-secret", secret)], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-hook-secret"), Some(secret));
    // A second handshake (a stranger who knows the URL) does not replace it.
    http.post(&url, &[hdr("x-hook-secret", "attacker-secret")], b"")
        .assert_error(401, "unauthorized");
    assert_not_stored(&http, &relay, "asana");
    assert!(
        !relay.stderr_text().contains(secret),
        "the hook secret is not logged"
    );
    relay.kill();
    relay.restart();
    let url = relay.url("/hooks/asana");
    let body = br#"{"events":[{"action":"changed"}]}"#;
    let sig = |key: &str| vec![hdr("x-hook-signature", &hex::encode(mac(key, &[body])))];
    http.post(&url, &sig("attacker-secret"), body)
        .assert_error(401, "invalid_signature");
    http.post(&url, &[], body)
        .assert_error(401, "missing_signature");
    let r = http.post(&url, &sig(secret), body);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json["offset"], 1);
}
