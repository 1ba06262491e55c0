//! Ingest against a real relay: every error code of the spec with its status and JSON
//! body (and nothing stored for any refusal), every signature scheme end to end, dedup
//! across restarts, byte-exact storage, offsets across restarts, and a real disk-full
//! storage failure answered 503 without losing an acknowledged event.

mod common;
#[path = "common/hooks.rs"]
mod hooks;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{RelayProc, DEADLINE};
use hooks::*;

const GH_SECRET: &str = "gh-secret-ingest";
const STRIPE_SECRET: &str = "whsec_stripe_ingest";
const SLACK_SECRET: &str = "slack-secret-ingest";
const STANDARD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const HMAC_SECRET: &str = "hmac-secret-ingest";
/// Body limit of the relays started here (small, so 413 tests send little).
const LIMIT: usize = 64 * 1024;

fn server_extra() -> String {
    format!("admin_token = \"{ADMIN}\"\nmax_body_bytes = {LIMIT}")
}

/// Channels for every scheme; names are what tests post to.
fn scheme_channels() -> String {
    format!(
        r#"
[[channel]]
name = "gh"
scheme = "github"
secrets = ["{GH_SECRET}"]

[[channel]]
name = "st"
scheme = "stripe"
secrets = ["{STRIPE_SECRET}"]
tolerance_secs = 300

[[channel]]
name = "sl"
scheme = "slack"
secrets = ["{SLACK_SECRET}"]
tolerance_secs = 300

[[channel]]
name = "sw"
scheme = "standard"
secrets = ["{STANDARD_SECRET}"]

[[channel]]
name = "hx"
scheme = "hmac"
secrets = ["{HMAC_SECRET}"]
header = "X-Signature"
prefix = "sha256="
encoding = "hex"

[[channel]]
name = "hb"
scheme = "hmac"
secrets = ["{HMAC_SECRET}"]
header = "X-Body-Mac"
encoding = "base64"
id_header = "X-Request-Id"

[[channel]]
name = "nn"
scheme = "none"
"#
    )
}

fn start(dir: &std::path::Path) -> RelayProc {
    RelayProc::start(dir, &server_extra(), &scheme_channels())
}

/// Sends a request that must be refused with `status`/`code`, and checks that the
/// channel's head did not move (nothing refused is stored).
fn refused(
    http: &Http,
    relay: &RelayProc,
    channel: &str,
    status: u16,
    code: &str,
    send: impl FnOnce() -> Resp,
) {
    let before = head(http, relay, channel);
    let r = send();
    r.assert_error(status, code);
    assert_eq!(
        head(http, relay, channel),
        before,
        "a refused request ({code}) moved the head of {channel}"
    );
}

#[test]
fn signature_errors_are_401_with_stable_codes() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start(dir.path());
    let http = Http::new();
    let body = br#"{"event":"signed"}"#;
    let now = now_secs();
    let url = |c: &str| relay.url(&format!("/hooks/{c}"));

    // GitHub: absent, wrong secret, malformed.
    refused(&http, &relay, "gh", 401, "missing_signature", || {
        http.post(&url("gh"), &[], body)
    });
    refused(&http, &relay, "gh", 401, "invalid_signature", || {
        http.post(&url("gh"), &github("not-the-secret", body, None), body)
    });
    refused(&http, &relay, "gh", 401, "invalid_signature", || {
        let h = vec![("x-hub-signature-256".to_string(), "sha256=zz".to_string())];
        http.post(&url("gh"), &h, body)
    });
    // A correct signature over different bytes is a forgery too.
    refused(&http, &relay, "gh", 401, "invalid_signature", || {
        http.post(&url("gh"), &github(GH_SECRET, b"other body", None), body)
    });

    // Stripe and Slack, hand-signed: stale and future timestamps are refused, the same
    // signer at the current time is accepted (so the refusals are about time).
    for (channel, sign) in [
        (
            "st",
            stripe as fn(&str, &[u8], i64) -> Vec<(String, String)>,
        ),
        ("sl", slack),
    ] {
        let secret = if channel == "st" {
            STRIPE_SECRET
        } else {
            SLACK_SECRET
        };
        for skew in [-1000, 1000] {
            refused(
                &http,
                &relay,
                channel,
                401,
                "timestamp_out_of_tolerance",
                || http.post(&url(channel), &sign(secret, body, now + skew), body),
            );
        }
        // A forgery gets invalid_signature whatever its timestamp.
        refused(&http, &relay, channel, 401, "invalid_signature", || {
            http.post(&url(channel), &sign("wrong", body, now - 1000), body)
        });
        refused(&http, &relay, channel, 401, "missing_signature", || {
            http.post(&url(channel), &[], body)
        });
        let ok = http.post(&url(channel), &sign(secret, body, now), body);
        assert_eq!(ok.status, 200, "{channel}: {}", ok.text());
        assert_eq!(ok.json["offset"], 1);
    }

    // Standard Webhooks: the same in both directions.
    for skew in [-1000, 1000] {
        refused(
            &http,
            &relay,
            "sw",
            401,
            "timestamp_out_of_tolerance",
            || {
                let h = standard(STANDARD_SECRET, body, now + skew, "msg_skew", "webhook");
                http.post(&url("sw"), &h, body)
            },
        );
    }
    // Slack without its timestamp header is missing part of the signed material.
    refused(&http, &relay, "sl", 401, "missing_signature", || {
        let mut h = slack(SLACK_SECRET, body, now);
        h.retain(|(n, _)| n != "x-slack-request-timestamp");
        http.post(&url("sl"), &h, body)
    });
}

#[test]
fn request_errors_have_their_codes() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start(dir.path());
    let http = Http::new();
    let body = b"{}";

    // 400: a query the admin API cannot use is refused, not silently defaulted.
    for q in ["from=abc", "limit=-1", "from=1&limit=x"] {
        http.get(
            &relay.url(&format!("/v1/channels/gh/events?{q}")),
            Some(ADMIN),
        )
        .assert_error(400, "bad_request");
    }

    // 401 unauthorized on admin routes: wrong token, no token, wrong scheme.
    http.get(&relay.url("/v1/channels"), Some("wrong-token"))
        .assert_error(401, "unauthorized");
    http.get(&relay.url("/v1/channels"), None)
        .assert_error(401, "unauthorized");
    http.get(&relay.url("/v1/channels/gh/events"), Some("wrong-token"))
        .assert_error(401, "unauthorized");
    let basic = vec![("authorization".to_string(), format!("Basic {ADMIN}"))];
    http.send("GET", &relay.url("/v1/channels"), &basic, b"")
        .assert_error(401, "unauthorized");

    // 404: unknown channel on ingest and admin; unknown routes.
    http.post(
        &relay.url("/hooks/nope"),
        &github(GH_SECRET, body, None),
        body,
    )
    .assert_error(404, "unknown_channel");
    http.get(&relay.url("/v1/channels/nope/events"), Some(ADMIN))
        .assert_error(404, "unknown_channel");
    http.get(&relay.url("/nowhere"), None)
        .assert_error(404, "not_found");
    http.post(&relay.url("/hooks"), &[], body)
        .assert_error(404, "not_found");

    // 405 on the ingest route, and nothing stored.
    for method in ["GET", "DELETE"] {
        refused(&http, &relay, "gh", 405, "method_not_allowed", || {
            http.send(
                method,
                &relay.url("/hooks/gh"),
                &github(GH_SECRET, body, None),
                body,
            )
        });
    }
    // POST, PUT and PATCH are the ingest methods, and the method is stored.
    for (i, method) in ["POST", "PUT", "PATCH"].into_iter().enumerate() {
        let r = http.send(
            method,
            &relay.url("/hooks/gh"),
            &github(GH_SECRET, body, None),
            body,
        );
        assert_eq!(r.status, 200, "{method}: {}", r.text());
        let offset = r.json["offset"].as_u64().expect("offset");
        assert_eq!(offset, i as u64 + 1);
        let e = event_at(&http, &relay, "gh", offset).expect("stored");
        assert_eq!(e["method"], method);
    }
}

#[test]
fn admin_routes_are_404_without_an_admin_token() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = RelayProc::start(
        dir.path(),
        "",
        "[[channel]]\nname = \"nn\"\nscheme = \"none\"\n",
    );
    let http = Http::new();
    for token in [None, Some(ADMIN), Some("anything")] {
        http.get(&relay.url("/v1/channels"), token)
            .assert_error(404, "not_found");
        http.get(&relay.url("/v1/channels/nn/events?from=1"), token)
            .assert_error(404, "not_found");
    }
    // The relay itself works.
    let r = http.post(&relay.url("/hooks/nn"), &[], b"x");
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn ip_allowlist_uses_the_tcp_peer() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = RelayProc::start(
        dir.path(),
        &server_extra(),
        r#"
[[channel]]
name = "deny"
scheme = "none"
allow_ips = ["10.0.0.0/8", "2001:db8::/32"]

[[channel]]
name = "allow"
scheme = "none"
allow_ips = ["10.0.0.0/8", "127.0.0.1/32"]
"#,
    );
    let http = Http::new();
    refused(&http, &relay, "deny", 403, "ip_not_allowed", || {
        http.post(&relay.url("/hooks/deny"), &[], b"x")
    });
    // A header anyone can set does not open the gate.
    refused(&http, &relay, "deny", 403, "ip_not_allowed", || {
        let h = vec![("x-forwarded-for".to_string(), "10.1.2.3".to_string())];
        http.post(&relay.url("/hooks/deny"), &h, b"x")
    });
    let r = http.post(&relay.url("/hooks/allow"), &[], b"x");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json["offset"], 1);
    assert_eq!(head(&http, &relay, "deny"), 0);
}

#[test]
fn declared_content_length_over_the_limit_is_413_before_the_body() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start(dir.path());
    let http = Http::new();

    // Headers announce more than the limit; only a little of the body is sent. The
    // relay must answer from the headers alone, without waiting for (or buffering) the
    // rest. Raw TCP, because a client still pushing the body may see the connection
    // reset before it reads the answer.
    let declared = |channel: &str, len: u64| {
        let body = vec![b'a'; 1000];
        let sig = github(GH_SECRET, &body, None);
        let mut s = TcpStream::connect(relay.addr).expect("connect");
        let head_bytes = format!(
            "POST /hooks/{channel} HTTP/1.1\r\nHost: x\r\n{}: {}\r\nContent-Length: {len}\r\n\r\n",
            sig[0].0, sig[0].1
        );
        s.write_all(head_bytes.as_bytes()).expect("write");
        s.write_all(&body).expect("write");
        read_responses(&mut s, 1)
            .pop()
            .expect("a response before the body was complete")
    };
    for (channel, len) in [
        ("nn", LIMIT as u64 + 1),
        ("gh", LIMIT as u64 + 1),
        ("gh", 10 * 1024 * 1024 * 1024),
    ] {
        let r = declared(channel, len);
        assert_eq!(r.status, 413, "{channel} {len}: {r:?}");
        assert_eq!(r.json()["error"], "payload_too_large", "{r:?}");
        assert!(r.json()["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert_eq!(r.json().as_object().map(|o| o.len()), Some(2), "{r:?}");
        assert_eq!(head(&http, &relay, channel), 0, "a 413 stored something");
    }

    // Exactly at the limit is accepted: the limit is the reason, not the size class.
    let at = vec![b'c'; LIMIT];
    let r = http.post(&relay.url("/hooks/gh"), &github(GH_SECRET, &at, None), &at);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        body_of(&event_at(&http, &relay, "gh", 1).expect("stored")),
        at
    );
}

#[test]
fn chunked_body_growing_past_the_limit_is_413_and_not_stored() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start(dir.path());
    let http = Http::new();
    const CHUNK: usize = 8 * 1024;

    // No Content-Length: the relay can only find out while reading. Chunks go out one
    // at a time; after each, the client looks for an answer, so it stops sending as
    // soon as the relay has refused (and never sends the terminating chunk).
    let mut s = TcpStream::connect(relay.addr).expect("connect");
    let sig = github(GH_SECRET, b"irrelevant", None);
    let head_bytes = format!(
        "POST /hooks/gh HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n{}: {}\r\n\r\n",
        sig[0].0, sig[0].1
    );
    s.write_all(head_bytes.as_bytes()).expect("write");
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let chunk = format!("{CHUNK:x}\r\n{}\r\n", "z".repeat(CHUNK));
    let mut sent = 0usize;
    let mut answer = Vec::new();
    let start = Instant::now();
    while answer.is_empty() {
        assert!(start.elapsed() < DEADLINE, "no answer to a growing body");
        assert!(
            sent <= 8 * LIMIT,
            "sent {sent} bytes over a {LIMIT}-byte limit without a refusal"
        );
        if s.write_all(chunk.as_bytes()).is_ok() {
            sent += CHUNK;
        }
        let mut buf = [0u8; 4096];
        match s.read(&mut buf) {
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("connection failed before an answer: {e}"),
        }
    }
    answer.extend(read_to_close(&mut s));
    let (r, _) = parse_response(&answer).expect("a complete response");
    assert_eq!(r.status, 413, "{r:?}");
    assert_eq!(r.json()["error"], "payload_too_large", "{r:?}");
    assert!(sent > LIMIT, "refused at {sent} bytes, under the limit");
    assert_eq!(head(&http, &relay, "gh"), 0, "a 413 stored something");

    // A chunked body under the limit is accepted and stored exactly.
    let body: Vec<u8> = (0..3 * CHUNK).map(|i| b'a' + (i % 26) as u8).collect();
    let sig = github(GH_SECRET, &body, None);
    let mut req = format!(
        "POST /hooks/gh HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n{}: {}\r\n\r\n",
        sig[0].0, sig[0].1
    )
    .into_bytes();
    for part in body.chunks(CHUNK) {
        req.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        req.extend_from_slice(part);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let raw = raw_exchange(relay.addr, &req);
    let (r, _) = parse_response(&raw)
        .unwrap_or_else(|| panic!("no response: {:?}", String::from_utf8_lossy(&raw)));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        body_of(&event_at(&http, &relay, "gh", 1).expect("stored")),
        body
    );
}

#[test]
fn rate_limited_requests_get_429_with_retry_after() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = RelayProc::start(
        dir.path(),
        &server_extra(),
        "[[channel]]\nname = \"rl\"\nscheme = \"none\"\nrate_limit = { per_second = 0.01, burst = 2 }\n",
    );
    let http = Http::new();
    for offset in 1..=2 {
        let r = http.post(&relay.url("/hooks/rl"), &[], b"x");
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json["offset"], offset);
    }
    let before = head(&http, &relay, "rl");
    let r = http.post(&relay.url("/hooks/rl"), &[], b"x");
    r.assert_error(429, "rate_limited");
    let retry: u64 = r
        .header("retry-after")
        .expect("Retry-After header")
        .parse()
        .expect("Retry-After in seconds");
    // One token per 100 s: the client is told to wait about that long.
    assert!((1..=100).contains(&retry), "Retry-After {retry}");
    assert_eq!(head(&http, &relay, "rl"), before);
}

#[test]
fn every_scheme_is_accepted_end_to_end() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start(dir.path());
    let http = Http::new();
    let now = now_secs();
    let cases = [
        ("github", "{\"s\":\"github\"}"),
        ("stripe", "{\"s\":\"stripe\"}"),
        ("slack", "payload=slack"),
        ("standard", "{\"s\":\"standard\"}"),
        ("svix", "{\"s\":\"svix\"}"),
        ("hmac-hex", "{\"s\":\"hmac-hex\"}"),
        ("hmac-base64", "{\"s\":\"hmac-base64\"}"),
        ("none", "{\"s\":\"none\"}"),
    ];
    for (case, body) in cases {
        let body = body.as_bytes();
        let (channel, headers) = match case {
            "github" => ("gh", github(GH_SECRET, body, Some("gh-1"))),
            "stripe" => ("st", stripe(STRIPE_SECRET, body, now)),
            "slack" => ("sl", slack(SLACK_SECRET, body, now)),
            "standard" => (
                "sw",
                standard(STANDARD_SECRET, body, now, "msg_a", "webhook"),
            ),
            "svix" => ("sw", standard(STANDARD_SECRET, body, now, "msg_b", "svix")),
            "hmac-hex" => (
                "hx",
                hmac_sig(HMAC_SECRET, body, "X-Signature", "sha256=", false),
            ),
            "hmac-base64" => ("hb", hmac_sig(HMAC_SECRET, body, "X-Body-Mac", "", true)),
            _ => ("nn", vec![]),
        };
        let r = http.post(&relay.url(&format!("/hooks/{channel}")), &headers, body);
        assert_eq!(r.status, 200, "{case}: {}", r.text());
        assert_eq!(r.json["channel"], channel);
        assert_eq!(r.json["duplicate"], false);
        assert!(r.json["id"].as_str().is_some_and(|id| !id.is_empty()));
        let offset = r.json["offset"].as_u64().expect("offset");
        let stored = event_at(&http, &relay, channel, offset).expect("stored");
        assert_eq!(body_of(&stored), body, "{case}");
        assert_eq!(stored["id"], r.json["id"]);
    }
    // Both standard header spellings landed in one channel, in order.
    assert_eq!(head(&http, &relay, "sw"), 2);
}

#[test]
fn dedup_by_delivery_id_survives_restarts() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut relay = start(dir.path());
    let http = Http::new();
    let post = |relay: &RelayProc, id: &str, body: &[u8]| {
        let r = http.post(
            &relay.url("/hooks/gh"),
            &github(GH_SECRET, body, Some(id)),
            body,
        );
        assert_eq!(r.status, 200, "{}", r.text());
        r.json
    };

    let first = post(&relay, "delivery-a", b"{\"n\":1}");
    assert_eq!(first["offset"], 1);
    assert_eq!(first["duplicate"], false);
    // A redelivery (even with other bytes) is the original event.
    for body in [&b"{\"n\":1}"[..], b"{\"n\":1,\"retry\":true}"] {
        let again = post(&relay, "delivery-a", body);
        assert_eq!(again["offset"], 1);
        assert_eq!(again["duplicate"], true);
        assert_eq!(again["id"], first["id"]);
    }
    assert_eq!(head(&http, &relay, "gh"), 1, "a duplicate was appended");
    let second = post(&relay, "delivery-b", b"{\"n\":2}");
    assert_eq!(
        (second["offset"].as_u64(), &second["duplicate"]),
        (Some(2), &serde_json::json!(false))
    );

    // SIGKILL, then the same data dir: the dedup entry was durable with the event.
    relay.restart();
    let again = post(&relay, "delivery-a", b"{\"n\":1}");
    assert_eq!(
        (again["offset"].as_u64(), &again["duplicate"]),
        (Some(1), &serde_json::json!(true))
    );
    assert_eq!(again["id"], first["id"]);

    // SIGTERM (graceful), then again.
    assert!(relay.terminate().success(), "SIGTERM exit status");
    let relay = RelayProc::start_with(dir.path(), &relay.config_path, &[]);
    let again = post(&relay, "delivery-b", b"{\"n\":2}");
    assert_eq!(
        (again["offset"].as_u64(), &again["duplicate"]),
        (Some(2), &serde_json::json!(true))
    );
    assert_eq!(again["id"], second["id"]);
    assert_eq!(head(&http, &relay, "gh"), 2);

    // Standard Webhooks dedups on its signed webhook-id.
    let now = now_secs();
    for expect_dup in [false, true] {
        let h = standard(STANDARD_SECRET, b"{}", now, "msg_same", "webhook");
        let r = http.post(&relay.url("/hooks/sw"), &h, b"{}");
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            (r.json["offset"].as_u64(), r.json["duplicate"].as_bool()),
            (Some(1), Some(expect_dup))
        );
    }
}

#[test]
fn id_header_dedups_the_hmac_scheme() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start(dir.path());
    let http = Http::new();
    let post = |body: &[u8], id: Option<&str>| {
        let mut h = hmac_sig(HMAC_SECRET, body, "X-Body-Mac", "", true);
        if let Some(id) = id {
            h.push(("X-Request-Id".to_string(), id.to_string()));
        }
        let r = http.post(&relay.url("/hooks/hb"), &h, body);
        assert_eq!(r.status, 200, "{}", r.text());
        (
            r.json["offset"].as_u64().expect("offset"),
            r.json["duplicate"].as_bool().expect("dup"),
        )
    };
    assert_eq!(post(b"one", Some("req-1")), (1, false));
    assert_eq!(post(b"one", Some("req-1")), (1, true));
    assert_eq!(post(b"two", Some("req-2")), (2, false));
    // Without the id header there is nothing to dedup on: each one is new.
    assert_eq!(post(b"three", None), (3, false));
    assert_eq!(post(b"three", None), (4, false));
    assert_eq!(head(&http, &relay, "hb"), 4);
}

#[test]
fn bodies_paths_and_queries_are_stored_byte_exact() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = start(dir.path());
    let http = Http::new();

    // Every byte value, in both orders: not UTF-8, so it comes back as body_base64.
    let binary: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
    let mut h = github(GH_SECRET, &binary, None);
    h.push(("content-type".into(), "application/octet-stream".into()));
    h.push(("x-custom".into(), "Value  with   spaces".into()));
    let r = http.post(&relay.url("/hooks/gh/a/b%20c?x=1&y=%20z"), &h, &binary);
    assert_eq!(r.status, 200, "{}", r.text());
    let e = event_at(&http, &relay, "gh", 1).expect("stored");
    assert!(e.get("body").is_none(), "binary body given as text: {e}");
    assert_eq!(body_of(&e), binary);
    assert_eq!(e["path"], "/a/b%20c");
    assert_eq!(e["query"], "x=1&y=%20z");
    assert_eq!(e["method"], "POST");
    let headers = e["headers"].as_array().expect("headers");
    assert!(
        headers.contains(&serde_json::json!(["x-custom", "Value  with   spaces"])),
        "{headers:?}"
    );

    // A form body with escapes and a JSON body with odd spacing: exact text back.
    for (i, (ctype, body)) in [
        (
            "application/x-www-form-urlencoded",
            &b"name=J%C3%BCrgen&msg=a+b%26c&empty=&x=%00"[..],
        ),
        ("application/json", b"{\"b\":1,  \"a\":[1,2 ,3]}\n\n"),
        ("text/plain", b""),
    ]
    .into_iter()
    .enumerate()
    {
        let mut h = github(GH_SECRET, body, None);
        h.push(("content-type".into(), ctype.into()));
        let r = http.post(&relay.url("/hooks/gh"), &h, body);
        assert_eq!(r.status, 200, "{}", r.text());
        let offset = i as u64 + 2;
        assert_eq!(r.json["offset"], offset);
        let e = event_at(&http, &relay, "gh", offset).expect("stored");
        assert_eq!(e["body"].as_str().map(str::as_bytes), Some(body), "{e}");
        assert_eq!(e["path"], "");
        assert_eq!(e["query"], "");
    }
}

#[test]
fn offsets_continue_after_restarts() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut relay = start(dir.path());
    let http = Http::new();
    let mut expected = Vec::new();
    let mut post = |relay: &RelayProc, n: u64| {
        let body = format!("{{\"n\":{n}}}");
        let r = http.post(&relay.url("/hooks/nn"), &[], body.as_bytes());
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json["offset"], n, "offsets must continue densely");
        expected.push(body);
    };
    for n in 1..=3 {
        post(&relay, n);
    }
    assert!(relay.terminate().success(), "SIGTERM exit status");
    relay = RelayProc::start_with(dir.path(), &relay.config_path.clone(), &[]);
    for n in 4..=5 {
        post(&relay, n);
    }
    relay.restart(); // SIGKILL
    post(&relay, 6);
    let events = all_events(&http, &relay, "nn");
    let offsets: Vec<u64> = events
        .iter()
        .map(|e| e["offset"].as_u64().expect("o"))
        .collect();
    assert_eq!(offsets, (1..=6).collect::<Vec<_>>());
    for (e, body) in events.iter().zip(&expected) {
        assert_eq!(body_of(e), body.as_bytes());
    }
}

/// Fills a small tmpfs holding the data dir with accepted events until the disk is
/// (nearly) full. The relay must answer 503 `unavailable` — never hang, never crash, never
/// 200 something it cannot keep — keep serving every acknowledged event intact, accept
/// again by itself once the disk has room, and keep its offsets dense across a restart.
#[test]
fn disk_full_is_503_and_acknowledged_events_survive() {
    // A full disk cannot be faked without a small filesystem of our own: without root
    // this test fails, naming what it needs, rather than passing untested.
    let mount = Tmpfs::mount("96m").unwrap_or_else(|why| {
        panic!("this test needs to mount a tmpfs (run the tests as root): {why}")
    });
    let dir = tempfile::tempdir().expect("tmp");
    let config = dir.path().join("config.toml");
    let data = mount.path().join("data");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\nadmin_token = \"{ADMIN}\"\nmax_body_bytes = 524288\n\n\
             [[channel]]\nname = \"gh\"\nscheme = \"github\"\nsecrets = [\"{GH_SECRET}\"]\n",
            data.display().to_string()
        ),
    )
    .expect("config");
    let mut relay = RelayProc::start_with(dir.path(), &config, &[]);
    let http = Http::new();
    const BODY_BYTES: usize = 256 * 1024;
    let body = |i: usize| -> Vec<u8> {
        let mut b = format!("{{\"event\":{i},\"fill\":\"").into_bytes();
        b.extend((0..BODY_BYTES).map(|k| b'a' + ((k * 7 + i) % 26) as u8));
        b.extend_from_slice(b"\"}");
        b
    };
    let post = |relay: &RelayProc, b: &[u8], id: &str| {
        http.post(&relay.url("/hooks/gh"), &github(GH_SECRET, b, Some(id)), b)
    };

    let mut acked: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut refusal = None;
    for i in 1..=1000 {
        let b = body(i);
        let r = post(&relay, &b, &format!("fill-{i}"));
        if r.status != 200 {
            refusal = Some(r);
            break;
        }
        let offset = r.json["offset"].as_u64().expect("offset");
        assert_eq!(offset, acked.len() as u64 + 1, "offsets stay dense");
        acked.push((offset, b));
    }
    let refusal = refusal.expect("a 96 MiB disk never filled up");
    refusal.assert_error(503, "unavailable");
    assert!(
        acked.len() >= 3,
        "the disk filled before any event: {}",
        acked.len()
    );

    // Still refusing, still alive, still serving every acknowledged event.
    let small = b"{\"small\":true}";
    post(&relay, small, "small-1").assert_error(503, "unavailable");
    assert!(relay.alive(), "the relay died on a full disk");
    assert_healthy(&http, &relay);
    assert_eq!(
        head(&http, &relay, "gh"),
        acked.len() as u64,
        "head moved past the acks"
    );
    for (offset, b) in &acked {
        let e = event_at(&http, &relay, "gh", *offset)
            .unwrap_or_else(|| panic!("acknowledged event {offset} unreadable"));
        assert!(
            body_of(&e) == *b,
            "event {offset} differs from what was acknowledged"
        );
    }
    // A redelivery of a stored event is still answered: it writes nothing.
    let r = post(&relay, &acked[0].1, "fill-1");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        (r.json["offset"].as_u64(), r.json["duplicate"].as_bool()),
        (Some(1), Some(true))
    );

    // Room again: the same process accepts, right after the last acknowledged offset.
    mount.resize("256m");
    let r = post(&relay, small, "small-1");
    assert_eq!(
        r.status,
        200,
        "no recovery after space was freed: {}",
        r.text()
    );
    assert_eq!(r.json["offset"], acked.len() as u64 + 1);
    acked.push((acked.len() as u64 + 1, small.to_vec()));

    // And a SIGKILL loses nothing of it.
    relay.kill();
    let relay = RelayProc::start_with(dir.path(), &config, &[]);
    assert_eq!(head(&http, &relay, "gh"), acked.len() as u64);
    for (offset, b) in &acked {
        let e = event_at(&http, &relay, "gh", *offset)
            .unwrap_or_else(|| panic!("event {offset} lost across a restart"));
        assert!(body_of(&e) == *b, "event {offset} changed across a restart");
    }
    drop(relay);
    drop(mount);
}
