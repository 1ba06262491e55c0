//! No log level prints a secret: `agent`, `tail`, `replay` and the admin commands run
//! with `HOOKRELAY_LOG=trace` against a real relay, with the token given as a flag
//! and through the environment, a relay URL whose query carries a key, and a forward
//! URL whose query does too; none of them may show up on stderr.

mod common;

use common::*;

const TOKEN: &str = "tok-s3cr3t-4f9a";
const ADMIN: &str = "adm-s3cr3t-77c1";
const RELAY_KEY: &str = "secretvalue";
const FORWARD_KEY: &str = "fwd-s3cr3t-0b2e";
const SECRETS: &[&str] = &[TOKEN, ADMIN, RELAY_KEY, FORWARD_KEY];

/// Every log filter the tests run with: everything, and the crates that log requests.
const LOG_FILTERS: &[&str] = &[
    "trace",
    "tungstenite=trace,tokio_tungstenite=trace,tungstenite::handshake::client=trace,\
     hyper=trace,hyper_util=trace,h2=trace,reqwest=trace,rustls=trace",
];

fn assert_no_secret(what: &str, stderr: &str) {
    for secret in SECRETS {
        let line = stderr.lines().find(|l| l.contains(secret));
        assert!(line.is_none(), "{what}: {secret:?} in the log: {line:?}");
    }
}

/// How the token is given.
#[derive(Clone, Copy, Debug)]
enum Token {
    Flag,
    Env,
}

/// Runs `hookrelay <args>` with the token given `how` and a trace log filter.
fn spawn(args: &[&str], how: Token, filter: &str) -> AgentProc {
    let mut full: Vec<&str> = args.to_vec();
    let mut env = vec![("HOOKRELAY_LOG", filter)];
    match how {
        Token::Flag => full.extend(["--token", TOKEN]),
        Token::Env => env.push(("HOOKRELAY_TOKEN", TOKEN)),
    }
    AgentProc::spawn_env(&full, &env)
}

#[test]
fn trace_logs_show_no_token_or_url_key() {
    let dir = tempfile::tempdir().expect("tmp");
    let relay = RelayProc::start(
        dir.path(),
        &format!("admin_token = \"{ADMIN}\""),
        &format!("[[channel]]\nname = \"c\"\nscheme = \"none\"\ntokens = [\"{TOKEN}\"]\n"),
    );
    let (status, json) = post_raw(&relay.url("/hooks/c/p"), "POST", &[], b"{}");
    assert_eq!(status, 200, "{json}");
    let service = Target::ok();
    let forward = format!("{}/hook?key={FORWARD_KEY}", service.url());
    let relay_url = format!("{}/?key={RELAY_KEY}", relay.ws_url());
    for filter in LOG_FILTERS {
        for how in [Token::Flag, Token::Env] {
            let what = format!("{how:?} with {filter}");
            let group = format!("g{}", rand_suffix());
            // Counted before the agent starts: it may deliver before "subscribed" is read.
            let before = service.received().len();
            let mut agent = spawn(
                &[
                    "agent",
                    "--relay",
                    &relay_url,
                    "--channel",
                    "c",
                    "--forward",
                    &forward,
                    "--group",
                    &group,
                ],
                how,
                filter,
            );
            agent.wait_line("hookrelay agent subscribed ");
            service.wait_for(before + 1);
            assert_eq!(agent.terminate().code(), Some(0), "agent {what}");
            let log = agent.stderr_text();
            // The transport crates still log, only not their requests.
            assert!(
                log.contains("DEBUG tungstenite"),
                "verbose log expected: {log}"
            );
            assert_no_secret(&format!("agent {what}"), &log);

            let mut tail = spawn(
                &[
                    "tail",
                    "--relay",
                    &relay_url,
                    "--channel",
                    "c",
                    "--limit",
                    "1",
                ],
                how,
                filter,
            );
            let (status, lines) = tail.finish();
            assert_eq!(
                status.code(),
                Some(0),
                "tail {what}: {}",
                tail.stderr_text()
            );
            assert_eq!(lines.len(), 1);
            assert_no_secret(&format!("tail {what}"), &tail.stderr_text());

            let mut replay = spawn(
                &[
                    "replay",
                    "--relay",
                    &relay_url,
                    "--channel",
                    "c",
                    "--from",
                    "1",
                    "--to",
                    "1",
                    "--forward",
                    &forward,
                ],
                how,
                filter,
            );
            let status = replay.wait_exit();
            assert_eq!(
                status.code(),
                Some(0),
                "replay {what}: {}",
                replay.stderr_text()
            );
            assert_no_secret(&format!("replay {what}"), &replay.stderr_text());
        }
        // The admin API client: its token is a bearer header too.
        let admin_url = format!("{}/?key={RELAY_KEY}", relay.base);
        let mut groups = AgentProc::spawn_env(
            &["groups", "list", "--relay", &admin_url, "--channel", "c"],
            &[("HOOKRELAY_LOG", filter), ("HOOKRELAY_ADMIN_TOKEN", ADMIN)],
        );
        let status = groups.wait_exit();
        assert_eq!(
            status.code(),
            Some(0),
            "groups list: {}",
            groups.stderr_text()
        );
        assert_no_secret("groups list", &groups.stderr_text());
    }
}

/// A group name suffix no earlier run used.
fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default()
}
