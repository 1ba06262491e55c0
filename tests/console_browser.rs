//! The web console end to end in a real headless Chromium: a real relay, two real
//! agents (group `default` forwarding to a recording service, group `dlq` to one that
//! refuses a first delivery so it dead-letters), and `tests/browser/console.mjs`
//! driving Debian's `/usr/bin/chromium` through playwright-core. The script logs in,
//! sees a `hookrelay send` webhook arrive live, checks it byte-exact, redelivers it
//! (this side confirms the local service received it again), sends a test webhook,
//! resets a cursor, redrives a dead letter, logs out, is refused a wrong token, and
//! shows a `<script>` body as text. Screenshots land in `target/console-screenshots/`.
//!
//! A missing chromium, node or playwright-core fails the test with its name.

mod common;
#[path = "common/hooks.rs"]
mod hooks;

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use hookrelay::common::verify::SchemeKind;
use hooks::{Http, ADMIN};

const SECRET: &str = "browser-signing-secret";
const TOKEN: &str = "browser-consumer-token";
const CHROMIUM: &str = "/usr/bin/chromium";
/// The whole browser run (page loads, several actions) gets this long.
const BROWSER_DEADLINE: Duration = Duration::from_secs(120);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Fails, naming the tool, when something the browser test needs is missing.
fn require_tools() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "chromium is missing: install Debian's chromium (`apt-get install -y chromium`) so that {CHROMIUM} exists"
    );
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "node is missing: install Node.js (`apt-get install -y nodejs npm`)"
    );
    let module = root().join("tests/browser/node_modules/playwright-core/package.json");
    assert!(
        module.exists(),
        "the npm module playwright-core is missing: run `npm ci` in tests/browser"
    );
}

fn agent(relay: &RelayProc, target: &Target, group: &str) -> AgentProc {
    AgentProc::start(&[
        "--relay",
        &relay.ws_url(),
        "--channel",
        "gh",
        "--forward",
        &target.url(),
        "--token",
        TOKEN,
        "--group",
        group,
    ])
}

/// A service that answers 400 (a dead letter) the first time it sees a body containing
/// `fail-me`, and 200 to everything else, including that body again (a redrive).
fn flaky_target() -> Target {
    let seen: Arc<Mutex<HashSet<Vec<u8>>>> = Arc::default();
    Target::with(move |r, _| {
        let first = seen.lock().expect("seen").insert(r.body.clone());
        let fail = first && r.body.windows(7).any(|w| w == b"fail-me");
        (if fail { 400 } else { 200 }, vec![])
    })
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn dead_letters(relay: &RelayProc, group: &str) -> u64 {
    let url = relay.url(&format!("/v1/channels/gh/groups/{group}/dead-letters"));
    let r = Http::new().get(&url, Some(ADMIN));
    r.json["dead_letters"]
        .as_array()
        .map_or(0, |a| a.len() as u64)
}

fn count(target: &Target, offset: &str) -> usize {
    target
        .received()
        .iter()
        .filter(|r| r.header("x-hookrelay-offset").as_deref() == Some(offset))
        .count()
}

#[test]
fn the_console_works_end_to_end_in_headless_chromium() {
    require_tools();
    let dir = tempfile::tempdir().expect("tempdir");
    let channel = format!("[[channel]]\nname = \"gh\"\nscheme = \"github\"\nsecrets = [\"{SECRET}\"]\ntokens = [\"{TOKEN}\"]\n");
    let relay = RelayProc::start(dir.path(), &format!("admin_token = \"{ADMIN}\""), &channel);
    let (main, flaky) = (Target::ok(), flaky_target());
    let _a = agent(&relay, &main, "default");
    let _b = agent(&relay, &flaky, "dlq");
    let (code, _) = post_signed(
        &relay.url("/hooks/gh"),
        SchemeKind::Github,
        SECRET,
        br#"{"fail-me":true}"#,
        None,
        &[],
    );
    assert_eq!(code, 200);
    wait_until("a dead letter in group dlq", || {
        dead_letters(&relay, "dlq") == 1
    });

    let shots = root().join("target/console-screenshots");
    let mut node = Command::new("node")
        .arg(root().join("tests/browser/console.mjs"))
        .current_dir(root().join("tests/browser"))
        .env("RELAY_URL", &relay.base)
        .env("ADMIN_TOKEN", ADMIN)
        .env("HOOKRELAY_BIN", bin())
        .env("CHANNEL", "gh")
        .env("SECRET", SECRET)
        .env("SCREENSHOT_DIR", &shots)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn node");
    let stderr = Arc::new(Mutex::new(String::new()));
    drain(node.stderr.take().expect("stderr"), stderr.clone());
    let mut stdin = node.stdin.take().expect("stdin");
    let started = Instant::now();
    let mut steps = Vec::new();
    for line in BufReader::new(node.stdout.take().expect("stdout")).lines() {
        let Ok(line) = line else { break };
        assert!(
            started.elapsed() < BROWSER_DEADLINE,
            "the browser run took too long: {steps:?}"
        );
        if let Some(offset) = line.strip_prefix("STEP redelivered ") {
            // The local service receives the event again (its first delivery + this one).
            wait_until("the redelivery at the local service", || {
                count(&main, offset) >= 2
            });
            writeln!(stdin, "received-again").expect("answer the script");
        }
        steps.push(line);
    }
    let status = node.wait().expect("node");
    let err = stderr.lock().map(|s| s.clone()).unwrap_or_default();
    assert!(
        status.success(),
        "the browser test failed ({status}); steps: {steps:#?}\nstderr:\n{err}\nrelay:\n{}",
        relay.stderr_text()
    );
    assert_eq!(steps.last().map(String::as_str), Some("OK"), "{steps:#?}");
    for step in [
        "wrong-token-refused",
        "logged-in",
        "live-feed",
        "event-detail",
        "redelivered",
        "test-webhook",
        "cursor-reset",
        "dead-letter-redriven",
        "logged-out",
    ] {
        assert!(
            steps.iter().any(|s| s.starts_with(&format!("STEP {step}"))),
            "step {step} missing: {steps:#?}"
        );
    }
    // The redriven dead letter reached the flaky service again and was acked this time.
    wait_until("the dead letter redriven and acked", || {
        dead_letters(&relay, "dlq") == 0
    });
    assert_eq!(
        flaky
            .received()
            .iter()
            .filter(|r| r.body == br#"{"fail-me":true}"#)
            .count(),
        2
    );
    for page in ["login", "overview", "feed", "event", "actions", "charts"] {
        assert!(
            shots.join(format!("{page}.png")).exists(),
            "screenshot {page}.png missing"
        );
    }
}
