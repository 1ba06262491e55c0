//! The command line as a user meets it: `check` and `serve` refuse bad configs with
//! exit 2 and a message naming file, line and key; `send` signs every scheme correctly
//! (exit 0, the relay's 200 JSON) and reports a refusal (exit 1, the 401); usage errors
//! exit 2; and no signing secret or token ever shows up in the relay's debug log, its
//! metrics, its admin API, or the CLI's output (guarantee 7).

mod common;
#[path = "common/hooks.rs"]
mod hooks;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use common::{bin, drain, wait_for_line, RelayProc};
use hooks::*;

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .env("HOOKRELAY_LOG", "hookrelay=debug")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run hookrelay")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Starts `hookrelay serve --config` with extra environment variables.
fn serve_with_env(dir: &Path, config: &str, env: &[(&str, &str)]) -> RelayProc {
    let config_path = dir.join("config.toml");
    std::fs::write(&config_path, config).expect("config");
    let mut cmd = Command::new(bin());
    cmd.args(["serve", "--config"])
        .arg(&config_path)
        .env("HOOKRELAY_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn relay");
    let stderr = Arc::new(Mutex::new(String::new()));
    drain(child.stderr.take().expect("stderr"), stderr.clone());
    let base = wait_for_line(
        child.stdout.take().expect("stdout"),
        "hookrelay listening on ",
    )
    .unwrap_or_else(|| panic!("relay not ready: {}", stderr.lock().expect("lock")));
    RelayProc {
        child,
        addr: base.trim_start_matches("http://").parse().expect("addr"),
        base,
        dir: dir.to_path_buf(),
        config_path,
        stderr,
    }
}

fn data_dir(dir: &Path) -> String {
    dir.join("data").display().to_string()
}

#[test]
fn check_accepts_a_valid_config() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("ok.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\n\n[[channel]]\nname = \"a\"\nscheme = \"github\"\nsecrets = [\"s\"]\n\n[[channel]]\nname = \"b\"\nscheme = \"none\"\n",
            data_dir(dir.path())
        ),
    )
    .expect("write");
    let out = run(&["check", "--config", path.to_str().expect("utf8")], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("ok (2 channels"),
        "{}",
        text(&out.stdout)
    );
    // check validates; it starts nothing and creates no data.
    assert!(!dir.path().join("data").exists());
    // The shipped config passes too.
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/config.toml");
    let out = run(&["check", "--config", shipped], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn invalid_configs_are_refused_naming_file_line_and_key() {
    let dir = tempfile::tempdir().expect("tmp");
    let cases: &[(&str, &str, usize, &str)] = &[
        (
            "unknown key",
            "[server]\nlisten = \"127.0.0.1:0\"\nlisen = \"127.0.0.1:1\"\n",
            3,
            "server.lisen",
        ),
        (
            "bad scheme",
            "[[channel]]\nname = \"a\"\nscheme = \"gitlub\"\nsecrets = [\"s\"]\n",
            3,
            "channel[0].scheme",
        ),
        (
            "bad CIDR",
            "[[channel]]\nname = \"a\"\nscheme = \"none\"\n\n[[channel]]\nname = \"b\"\nscheme = \"none\"\nallow_ips = [\"10.0.0.0/8\", \"300.1.2.0/24\"]\n",
            8,
            "channel[1].allow_ips[1]",
        ),
        (
            "missing env secret",
            "[[channel]]\nname = \"a\"\nscheme = \"github\"\nsecrets = [\"env:HOOKRELAY_TEST_UNSET_SECRET_VAR\"]\n",
            4,
            "channel[0].secrets[0]",
        ),
        (
            "secret where a list belongs",
            "[[channel]]\nname = \"a\"\nscheme = \"github\"\nsecrets = \"cli-leaky-secret-value\"\n",
            4,
            "channel[0].secrets",
        ),
        (
            "unknown channel key",
            "[[channel]]\nname = \"a\"\nscheme = \"none\"\nsecret = \"x\"\n",
            4,
            "channel[0].secret",
        ),
    ];
    for (what, body, line, key) in cases {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, body).expect("write");
        let p = path.to_str().expect("utf8");
        let expected = format!("{p}:{line}: {key}");
        for args in [
            vec!["check", "--config", p],
            vec!["serve", "--config", p, "--listen", "127.0.0.1:0"],
        ] {
            let out = run(&args, &[]);
            let stderr = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{what} ({}): {stderr}", args[0]);
            assert!(
                stderr.contains(&expected),
                "{what} ({}): expected {expected:?} in: {stderr}",
                args[0]
            );
            assert!(
                !text(&out.stdout).contains("listening"),
                "{what}: serve started anyway"
            );
            assert!(
                !stderr.contains("cli-leaky-secret-value"),
                "{what}: secret echoed: {stderr}"
            );
        }
    }
    // The missing variable is named, so the fix is obvious.
    std::fs::write(dir.path().join("bad.toml"), cases[3].1).expect("write");
    let out = run(
        &[
            "check",
            "--config",
            dir.path().join("bad.toml").to_str().expect("utf8"),
        ],
        &[],
    );
    assert!(text(&out.stderr).contains("HOOKRELAY_TEST_UNSET_SECRET_VAR"));
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["frobnicate"][..],
        &[],
        &["serve", "--bogus-flag"],
        &["check"],
        &[
            "send",
            "http://127.0.0.1:9/hooks/x",
            "--scheme",
            "gitlub",
            "--secret",
            "s",
        ],
        &["send", "http://127.0.0.1:9/hooks/x", "--scheme", "github"],
    ] {
        let out = run(args, &[]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(!out.stderr.is_empty(), "{args:?}: no message");
    }
    // A missing config file is a configuration error too.
    let out = run(&["check", "--config", "/nonexistent/hookrelay.toml"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("/nonexistent/hookrelay.toml"));
}

const GH: &str = "cli-gh-SECRET-1a2b3c";
const STRIPE: &str = "whsec_cli-STRIPE-4d5e6f";
const SLACK_ENV: &str = "cli-slack-SECRET-from-env-7a8b";
const STANDARD_B64: &str = "Y2xpLXN0YW5kYXJkLVNFQ1JFVC05YzBk";
const HMAC: &str = "cli-hmac-SECRET-1e2f3a";
const CONSUMER: &str = "cli-consumer-TOKEN-4b5c";
const ADMIN_TOKEN: &str = "cli-admin-TOKEN-6d7e";

fn secrets() -> Vec<&'static str> {
    vec![
        GH,
        STRIPE,
        "cli-STRIPE-4d5e6f",
        SLACK_ENV,
        STANDARD_B64,
        "cli-standard-SECRET-9c0d", // the decoded standard key
        HMAC,
        CONSUMER,
        ADMIN_TOKEN,
    ]
}

fn secret_relay(dir: &Path) -> RelayProc {
    let config = format!(
        r#"[server]
listen = "127.0.0.1:0"
data_dir = {data:?}
admin_token = "{ADMIN_TOKEN}"

[[channel]]
name = "gh"
scheme = "github"
secrets = ["{GH}"]
tokens = ["{CONSUMER}"]

[[channel]]
name = "st"
scheme = "stripe"
secrets = ["{STRIPE}"]

[[channel]]
name = "sl"
scheme = "slack"
secrets = ["env:HOOKRELAY_TEST_SLACK_SECRET"]

[[channel]]
name = "sw"
scheme = "standard"
secrets = ["whsec_{STANDARD_B64}"]

[[channel]]
name = "hx"
scheme = "hmac"
secrets = ["{HMAC}"]
header = "X-Signature"
prefix = "sha256="
encoding = "hex"

[[channel]]
name = "hb"
scheme = "hmac"
secrets = ["{HMAC}"]
header = "X-Mac"
encoding = "base64"

[[channel]]
name = "nn"
scheme = "none"
"#,
        data = data_dir(dir)
    );
    serve_with_env(dir, &config, &[("HOOKRELAY_TEST_SLACK_SECRET", SLACK_ENV)])
}

#[test]
fn send_signs_every_scheme_and_reports_refusals() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = secret_relay(dir.path());
    // This relay has its own admin token (a secret under test), so read directly.
    let http = Http::new();
    let read = |channel: &str| {
        let r = http.get(
            &relay.url(&format!("/v1/channels/{channel}/events?from=1&limit=10")),
            Some(ADMIN_TOKEN),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        r.json["events"].as_array().expect("events").clone()
    };
    let standard = format!("whsec_{STANDARD_B64}");
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("gh", vec!["--scheme", "github", "--secret", GH]),
        ("st", vec!["--scheme", "stripe", "--secret", STRIPE]),
        (
            "sl",
            vec![
                "--scheme",
                "slack",
                "--secret",
                "env:HOOKRELAY_TEST_SLACK_SECRET",
            ],
        ),
        ("sw", vec!["--scheme", "standard", "--secret", &standard]),
        (
            "hx",
            vec![
                "--scheme",
                "hmac",
                "--secret",
                HMAC,
                "--signature-header",
                "X-Signature",
                "--prefix",
                "sha256=",
                "--encoding",
                "hex",
            ],
        ),
        (
            "hb",
            vec![
                "--scheme",
                "hmac",
                "--secret",
                HMAC,
                "--signature-header",
                "X-Mac",
                "--encoding",
                "base64",
            ],
        ),
        ("nn", vec!["--scheme", "none"]),
    ];
    for (channel, args) in &cases {
        let url = relay.url(&format!("/hooks/{channel}"));
        let data = format!("{{\"via\":\"send\",\"channel\":\"{channel}\"}}");
        let mut full = vec!["send", url.as_str(), "--data", &data];
        full.extend(args.iter().copied());
        let out = run(&full, &[("HOOKRELAY_TEST_SLACK_SECRET", SLACK_ENV)]);
        let stdout = text(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{channel}: {stdout} {}",
            text(&out.stderr)
        );
        let json = stdout
            .strip_prefix("200 ")
            .unwrap_or_else(|| panic!("{channel}: not a 200: {stdout}"));
        let v: serde_json::Value = serde_json::from_str(json.trim()).expect("the relay's JSON");
        assert_eq!(
            (v["channel"].as_str(), v["offset"].as_u64()),
            (Some(*channel), Some(1)),
            "{v}"
        );
        let events = read(channel);
        assert_eq!(events.len(), 1);
        assert_eq!(body_of(&events[0]), data.as_bytes(), "{channel}");
    }

    // @FILE sends the file's exact bytes (binary included).
    let file = dir.path().join("payload.bin");
    let bytes: Vec<u8> = (0..=255u8).collect();
    std::fs::write(&file, &bytes).expect("write");
    let at = format!("@{}", file.display());
    let out = run(
        &[
            "send",
            &relay.url("/hooks/gh"),
            "--scheme",
            "github",
            "--secret",
            GH,
            "--data",
            &at,
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(body_of(&read("gh")[1]), bytes);

    // Wrong secret: exit 1, and the relay's 401 is printed.
    let before = read("gh").len();
    for (channel, scheme) in [("gh", "github"), ("st", "stripe"), ("sl", "slack")] {
        let out = run(
            &[
                "send",
                &relay.url(&format!("/hooks/{channel}")),
                "--scheme",
                scheme,
                "--secret",
                "not-the-secret",
                "--data",
                "{}",
            ],
            &[],
        );
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{channel}: {stdout}");
        assert!(stdout.starts_with("401 "), "{channel}: {stdout}");
        assert!(stdout.contains("invalid_signature"), "{channel}: {stdout}");
    }
    assert_eq!(read("gh").len(), before, "a refused send was stored");

    // No relay listening: a runtime failure.
    let out = run(
        &[
            "send",
            "http://127.0.0.1:9/hooks/gh",
            "--scheme",
            "github",
            "--secret",
            GH,
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
}

#[test]
fn secrets_never_appear_in_logs_metrics_or_api_output() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut relay = secret_relay(dir.path());
    let http = Http::new();
    let mut seen = String::new(); // everything the outside world got to see
    let mut record = |label: &str, s: &str| {
        seen.push_str(&format!("\n--- {label}\n{s}"));
    };

    // Good and bad ingest, through `send` and by hand.
    for (channel, scheme, secret) in [
        ("gh", "github", GH),
        ("gh", "github", "wrong-secret"),
        ("st", "stripe", STRIPE),
        ("st", "stripe", "whsec_wrong"),
        ("sl", "slack", SLACK_ENV),
        ("hx", "hmac", HMAC),
    ] {
        let url = relay.url(&format!("/hooks/{channel}"));
        let mut args = vec![
            "send",
            url.as_str(),
            "--scheme",
            scheme,
            "--secret",
            secret,
            "--data",
            "{\"x\":1}",
        ];
        if scheme == "hmac" {
            args.extend(["--signature-header", "X-Signature", "--prefix", "sha256="]);
        }
        let out = run(&args, &[]);
        record("send stdout", &text(&out.stdout));
        if secret.contains("wrong") {
            // The CLI's own errors may name the user's input, never a configured secret.
            record("send stderr", &text(&out.stderr));
        }
    }
    let body = b"{\"manual\":true}";
    for headers in [
        vec![],
        github("wrong", body, Some("d-1")),
        vec![("x-hub-signature-256".to_string(), "sha256=00".to_string())],
        github(GH, body, Some("d-2")),
        github(GH, body, Some("d-2")),
    ] {
        let r = http.post(&relay.url("/hooks/gh"), &headers, body);
        record("ingest", &r.text());
    }
    let stale = stripe(STRIPE, body, now_secs() - 10_000);
    record(
        "stale",
        &http.post(&relay.url("/hooks/st"), &stale, body).text(),
    );

    // Admin API: refused and allowed, every route.
    for token in [None, Some("wrong"), Some(ADMIN_TOKEN), Some(CONSUMER)] {
        for path in [
            "/v1/channels",
            "/v1/channels/gh/events?from=1",
            "/v1/channels/st/events",
        ] {
            record(path, &http.get(&relay.url(path), token).text());
        }
    }
    // The agent endpoint, with a consumer token, a wrong one and the admin one.
    for token in [Some(CONSUMER), Some("wrong"), Some(ADMIN_TOKEN), None] {
        if let Ok(r) = http.try_send(
            "GET",
            &relay.url("/v1/stream"),
            &token
                .map(|t| vec![("authorization".to_string(), format!("Bearer {t}"))])
                .unwrap_or_default(),
            b"",
        ) {
            record("stream", &r.text());
        }
    }
    let metrics = http.get(&relay.url("/metrics"), None).text();
    let parsed = common::metrics::parse(&metrics);
    let ingested = common::metrics::samples(&parsed, "hookrelay_ingest_requests_total", &[]);
    assert!(ingested.count() > 0, "metrics were read: {metrics}");
    record("metrics", &metrics);
    record("healthz", &http.get(&relay.url("/healthz"), None).text());
    record("readyz", &http.get(&relay.url("/readyz"), None).text());

    assert!(relay.terminate().success(), "SIGTERM exit status");
    let stderr = relay.stderr_text();
    assert!(
        stderr.contains("DEBUG"),
        "the relay ran at debug level: {stderr}"
    );
    for secret in secrets() {
        assert!(
            !stderr.contains(secret),
            "{secret:?} in the relay's log:\n{stderr}"
        );
        assert!(!seen.contains(secret), "{secret:?} in an output:\n{seen}");
    }
}

/// `--relay http://user:TOKEN@host` gives the admin commands their token when neither
/// `--admin-token` nor `HOOKRELAY_ADMIN_TOKEN` does; a flag wins over the URL, and a
/// user name without a password is a usage error rather than an anonymous request.
#[test]
fn admin_commands_take_the_token_from_the_relay_urls_password() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = secret_relay(dir.path());
    let host = relay.base.trim_start_matches("http://");
    let with_password = format!("http://admin:{ADMIN_TOKEN}@{host}");
    let no_token: &[(&str, &str)] = &[];
    let out = run(
        &[
            "groups",
            "list",
            "--relay",
            &with_password,
            "--channel",
            "gh",
        ],
        no_token,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("GROUP"),
        "{}",
        text(&out.stdout)
    );
    // The token is percent-decoded like any userinfo.
    let encoded = format!("http://admin:{}@{host}", ADMIN_TOKEN.replace('-', "%2D"));
    let out = run(
        &["dlq", "list", "--relay", &encoded, "--channel", "gh"],
        no_token,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // A flag or the environment wins over the URL.
    let wrong = format!("http://admin:wrong@{host}");
    let out = run(
        &["groups", "list", "--relay", &wrong, "--channel", "gh"],
        &[("HOOKRELAY_ADMIN_TOKEN", ADMIN_TOKEN)],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = run(
        &[
            "groups",
            "list",
            "--relay",
            &with_password,
            "--admin-token",
            "wrong",
            "--channel",
            "gh",
        ],
        no_token,
    );
    assert_eq!(out.status.code(), Some(2), "the flag's wrong token is used");

    // A user name alone: refused before anything is sent, without echoing it.
    let user_only = format!("http://{ADMIN_TOKEN}@{host}");
    let out = run(
        &["groups", "list", "--relay", &user_only, "--channel", "gh"],
        no_token,
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("password"), "{err}");
    assert!(!err.contains(ADMIN_TOKEN), "{err}");
}
