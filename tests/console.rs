//! The web console's server side, against a real relay on 127.0.0.1:0: it does not
//! exist without an admin token; login refuses a wrong token and sets a session cookie
//! that is HttpOnly, SameSite=Strict (and Secure under TLS); the UI's POST actions need
//! the cookie, the CSRF token and the relay's own Origin; the SSE feed shows an event
//! posted after subscribing; the OpenAPI document lists every route; redeliver sends an
//! acked event again without moving the cursor; no secret reaches any response.

mod common;
#[path = "common/hooks.rs"]
mod hooks;

use std::io::{BufRead, BufReader, Write};
use std::time::{Duration, Instant};

use common::*;
use hookrelay::common::verify::SchemeKind;
use hooks::{Http, Resp, ADMIN};

const SECRET: &str = "console-signing-secret-do-not-leak";
const TOKEN: &str = "console-consumer-token-do-not-leak";

fn channels() -> String {
    format!("[[channel]]\nname = \"gh\"\nscheme = \"github\"\nsecrets = [\"{SECRET}\"]\ntokens = [\"{TOKEN}\"]\n")
}

fn start(dir: &std::path::Path) -> RelayProc {
    RelayProc::start(dir, &format!("admin_token = \"{ADMIN}\""), &channels())
}

/// A client that shows redirects instead of following them (to see the login's 303).
fn client() -> Http {
    install_crypto();
    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    Http::with_client(c)
}

fn h(name: &str, value: &str) -> (String, String) {
    (name.to_string(), value.to_string())
}

/// Logs in; returns the `Set-Cookie` value and the `name=value` pair to send back.
fn login(http: &Http, relay: &RelayProc) -> (String, String) {
    let r = http.post(
        &relay.url("/ui/login"),
        &[h("content-type", "application/x-www-form-urlencoded")],
        format!("token={ADMIN}").as_bytes(),
    );
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(r.header("location"), Some("/ui/"));
    let set = r.header("set-cookie").expect("set-cookie").to_string();
    let pair = set.split(';').next().expect("pair").trim().to_string();
    (set, pair)
}

fn csrf(http: &Http, relay: &RelayProc, cookie: &str) -> String {
    let r = http.send(
        "GET",
        &relay.url("/ui/session"),
        &[h("cookie", cookie)],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.json["csrf"].as_str().expect("csrf").to_string()
}

fn post_with(http: &Http, url: &str, headers: &[(String, String)], body: &str) -> Resp {
    let mut all = headers.to_vec();
    all.push(h("content-type", "application/json"));
    http.post(url, &all, body.as_bytes())
}

#[test]
fn the_console_is_404_without_an_admin_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = RelayProc::start(dir.path(), "", &channels());
    let http = client();
    for path in [
        "/ui/",
        "/ui",
        "/ui/login",
        "/ui/assets/app.js",
        "/ui/session",
        "/v1/overview",
        "/v1/stats",
    ] {
        http.get(&relay.url(path), None)
            .assert_error(404, "not_found");
    }
    let r = http.post(
        &relay.url("/ui/login"),
        &[],
        format!("token={ADMIN}").as_bytes(),
    );
    r.assert_error(404, "not_found");
    assert!(r.header("set-cookie").is_none());
    let r = http.post(&relay.url("/v1/channels/gh/test"), &[], b"");
    assert_eq!(r.status, 404);
}

#[test]
fn login_refuses_a_wrong_token_and_sets_a_strict_http_only_cookie() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = start(dir.path());
    let http = client();
    let page = http.get(&relay.url("/ui/"), None);
    assert_eq!(page.status, 200);
    let csp = page.header("content-security-policy").expect("CSP");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let form = [h("content-type", "application/x-www-form-urlencoded")];
    let wrong = http.post(&relay.url("/ui/login"), &form, b"token=not-the-token");
    assert_eq!(wrong.status, 401);
    assert!(wrong.header("set-cookie").is_none());
    assert!(wrong.text().contains("not valid"), "{}", wrong.text());
    let (set, _) = login(&http, &relay);
    assert!(set.starts_with("hookrelay_session="), "{set}");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attr), "{attr} missing: {set}");
    }
    assert!(!set.contains("Secure"), "no TLS, no Secure: {set}");
    // A login form posted from another site is refused (login CSRF).
    let foreign = [form[0].clone(), h("origin", "http://evil.example")];
    http.post(
        &relay.url("/ui/login"),
        &foreign,
        format!("token={ADMIN}").as_bytes(),
    )
    .assert_error(403, "forbidden");
}

#[test]
fn ui_actions_need_the_cookie_the_csrf_token_and_the_relays_origin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = start(dir.path());
    let http = client();
    let (_, cookie) = login(&http, &relay);
    let token = csrf(&http, &relay, &cookie);
    let origin = relay.base.clone();
    let test = relay.url("/v1/channels/gh/test");
    let reset = relay.url("/v1/channels/gh/groups/default/reset");
    for url in [&test, &reset] {
        let body = if url == &reset { r#"{"offset":1}"# } else { "" };
        // No cookie at all.
        post_with(
            &http,
            url,
            &[h("origin", &origin), h("x-csrf-token", &token)],
            body,
        )
        .assert_error(401, "unauthorized");
        // A foreign Origin, even with the right cookie and token.
        let foreign = [
            h("cookie", &cookie),
            h("x-csrf-token", &token),
            h("origin", "http://evil.example"),
        ];
        post_with(&http, url, &foreign, body).assert_error(403, "forbidden");
        // No CSRF token, or a wrong one.
        post_with(
            &http,
            url,
            &[h("cookie", &cookie), h("origin", &origin)],
            body,
        )
        .assert_error(403, "forbidden");
        let wrong = [
            h("cookie", &cookie),
            h("origin", &origin),
            h("x-csrf-token", "0000"),
        ];
        post_with(&http, url, &wrong, body).assert_error(403, "forbidden");
    }
    let good = [
        h("cookie", &cookie),
        h("origin", &origin),
        h("x-csrf-token", &token),
    ];
    let r = post_with(&http, &test, &good, "");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json["offset"], 1);
    assert_eq!(
        post_with(&http, &reset, &good, r#"{"offset":1}"#).status,
        200
    );
    // Reads need only the cookie.
    let read = http.send(
        "GET",
        &relay.url("/v1/overview"),
        &[h("cookie", &cookie)],
        b"",
    );
    assert_eq!(read.status, 200, "{}", read.text());
    assert_eq!(read.json["channels"][0]["head"], 1);
    // Logout ends the session: the same cookie no longer works.
    let out = post_with(&http, &relay.url("/ui/logout"), &good, "");
    assert_eq!(out.status, 200, "{}", out.text());
    assert!(out
        .header("set-cookie")
        .is_some_and(|c| c.contains("Max-Age=0")));
    post_with(&http, &test, &good, "").assert_error(401, "unauthorized");
    let gone = http.send(
        "GET",
        &relay.url("/ui/session"),
        &[h("cookie", &cookie)],
        b"",
    );
    gone.assert_error(401, "unauthorized");
}

#[test]
fn the_cookie_is_secure_under_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("cert");
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).expect("cert");
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).expect("key");
    let tls = format!(
        "admin_token = \"{ADMIN}\"\n\n[server.tls]\ncert = {:?}\nkey = {:?}",
        cert_path.display().to_string(),
        key_path.display().to_string()
    );
    let relay = RelayProc::start(dir.path(), &tls, &channels());
    assert!(relay.base.starts_with("https://"), "{}", relay.base);
    install_crypto();
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let (set, _) = login(&Http::with_client(client), &relay);
    assert!(set.contains("; Secure"), "{set}");
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
}

/// Reads SSE lines until one satisfies `done`, within the deadline.
fn read_until(reader: &mut impl BufRead, done: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    let mut seen = String::new();
    let mut line = String::new();
    while start.elapsed() < DEADLINE {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => {
                seen.push_str(&line);
                if done(&line) {
                    return line;
                }
            }
            Err(e) => panic!("reading the feed: {e}; so far:\n{seen}"),
        }
    }
    panic!("the feed did not deliver in time; got:\n{seen}");
}

#[test]
fn the_sse_feed_delivers_an_event_posted_after_subscribing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = start(dir.path());
    let mut tcp = std::net::TcpStream::connect(relay.addr).expect("connect");
    tcp.set_read_timeout(Some(DEADLINE)).expect("timeout");
    write!(
        tcp,
        "GET /v1/channels/gh/feed HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {ADMIN}\r\nAccept: text/event-stream\r\n\r\n",
        relay.addr
    )
    .expect("request");
    let mut reader = BufReader::new(tcp.try_clone().expect("clone"));
    let status = read_until(&mut reader, |l| l.starts_with("HTTP/1.1"));
    assert!(status.contains("200"), "{status}");
    read_until(&mut reader, |l| {
        l.to_ascii_lowercase()
            .starts_with("content-type: text/event-stream")
    });
    read_until(&mut reader, |l| l == "\r\n");
    let body = br#"{"feed":"live <script>"}"#;
    let posted = Instant::now();
    let (code, _) = post_signed(
        &relay.url("/hooks/gh"),
        SchemeKind::Github,
        SECRET,
        body,
        None,
        &[],
    );
    assert_eq!(code, 200);
    let data = read_until(&mut reader, |l| l.contains("data:"));
    assert!(
        posted.elapsed() < Duration::from_secs(2),
        "took {:?}",
        posted.elapsed()
    );
    let at = data.find("data:").expect("data line") + "data:".len();
    let list: serde_json::Value = serde_json::from_str(data[at..].trim()).expect("feed JSON");
    assert_eq!(list[0]["offset"], 1, "{list}");
    assert_eq!(list[0]["preview"], r#"{"feed":"live <script>"}"#);
}

#[test]
fn the_openapi_document_parses_and_lists_every_route() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = start(dir.path());
    let r = Http::new().get(&relay.url("/v1/openapi.json"), None);
    assert_eq!(r.status, 200);
    assert!(r.json["openapi"]
        .as_str()
        .is_some_and(|v| v.starts_with("3.")));
    let paths = r.json["paths"].as_object().expect("paths");
    let want = [
        ("/hooks/{channel}", "post"),
        ("/hooks/{channel}", "get"),
        ("/hooks/{channel}/{suffix}", "post"),
        ("/v1/stream", "get"),
        ("/v1/channels", "get"),
        ("/v1/channels/{channel}/events", "get"),
        ("/v1/channels/{channel}/events/{offset}", "get"),
        ("/v1/channels/{channel}/events/{offset}/body", "get"),
        ("/v1/channels/{channel}/feed", "get"),
        ("/v1/channels/{channel}/groups", "get"),
        ("/v1/channels/{channel}/groups/{group}/reset", "post"),
        ("/v1/channels/{channel}/groups/{group}/dead-letters", "get"),
        (
            "/v1/channels/{channel}/groups/{group}/dead-letters/redrive",
            "post",
        ),
        ("/v1/channels/{channel}/groups/{group}/redeliver", "post"),
        ("/v1/channels/{channel}/test", "post"),
        ("/v1/overview", "get"),
        ("/v1/stats", "get"),
        ("/v1/openapi.json", "get"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
        ("/ui/", "get"),
        ("/ui/login", "post"),
        ("/ui/logout", "post"),
        ("/ui/session", "get"),
    ];
    for (path, method) in want {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing"
        );
    }
}

#[test]
fn redeliver_sends_an_acked_event_again_without_moving_the_cursor() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = start(dir.path());
    let target = Target::ok();
    let _agent = AgentProc::start(&[
        "--relay",
        &relay.ws_url(),
        "--channel",
        "gh",
        "--forward",
        &target.url(),
        "--token",
        TOKEN,
    ]);
    for i in 0..2 {
        let body = format!("{{\"n\":{i}}}");
        let (code, _) = post_signed(
            &relay.url("/hooks/gh"),
            SchemeKind::Github,
            SECRET,
            body.as_bytes(),
            None,
            &[],
        );
        assert_eq!(code, 200);
    }
    target.wait_for(2);
    let http = client();
    let groups = relay.url("/v1/channels/gh/groups");
    let start = Instant::now();
    while http.get(&groups, Some(ADMIN)).json["groups"][0]["cursor"] != 2 {
        assert!(start.elapsed() < DEADLINE, "cursor never reached 2");
        std::thread::sleep(Duration::from_millis(20));
    }
    let auth = [h("authorization", &format!("Bearer {ADMIN}"))];
    let r = post_with(
        &http,
        &relay.url("/v1/channels/gh/groups/default/redeliver"),
        &auth,
        r#"{"from":1,"to":1}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json["redelivered"], serde_json::json!([1]));
    let got = target.wait_for(3);
    assert_eq!(got[2].body, br#"{"n":0}"#);
    assert_eq!(got[2].header("x-hookrelay-offset").as_deref(), Some("1"));
    assert_eq!(
        http.get(&groups, Some(ADMIN)).json["groups"][0]["cursor"],
        2
    );
    let detail = http.get(&relay.url("/v1/channels/gh/events/1"), Some(ADMIN));
    assert_eq!(detail.json["scheme"], "github");
    assert_eq!(detail.json["deliveries"][0]["group"], "default");
    let body = http.get(&relay.url("/v1/channels/gh/events/2/body"), Some(ADMIN));
    assert_eq!(body.body, br#"{"n":1}"#);
}

#[test]
fn no_secret_or_token_reaches_any_console_or_api_response() {
    let dir = tempfile::tempdir().expect("tempdir");
    let relay = start(dir.path());
    let http = client();
    let (code, _) = post_signed(
        &relay.url("/hooks/gh"),
        SchemeKind::Github,
        SECRET,
        b"{}",
        None,
        &[],
    );
    assert_eq!(code, 200);
    let (_, cookie) = login(&http, &relay);
    let token = csrf(&http, &relay, &cookie);
    let ui = [
        h("cookie", &cookie),
        h("origin", &relay.base),
        h("x-csrf-token", &token),
    ];
    let sent = post_with(&http, &relay.url("/v1/channels/gh/test"), &ui, "");
    let mut seen = vec![sent];
    let pages = [
        "/ui/",
        "/ui/login",
        "/ui/session",
        "/ui/assets/app.js",
        "/ui/assets/api.js",
        "/v1/overview",
        "/v1/stats",
        "/v1/channels",
        "/v1/channels/gh/events",
        "/v1/channels/gh/events/1",
        "/v1/channels/gh/events/2",
        "/v1/channels/gh/events/2/body",
        "/v1/channels/gh/groups",
        "/v1/openapi.json",
        "/metrics",
        "/healthz",
    ];
    for p in pages {
        seen.push(http.send("GET", &relay.url(p), &[h("cookie", &cookie)], b""));
    }
    for r in &seen {
        assert!(r.status < 400, "{}", r.text());
        let text = format!("{:?} {}", r.headers, r.text());
        for secret in [SECRET, TOKEN, ADMIN] {
            assert!(!text.contains(secret), "a secret leaked: {text}");
        }
    }
}
