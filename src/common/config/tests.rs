//! `config.toml` validation: every refusal names the file, the line and the key.

use sha2::{Digest, Sha256};

use super::source::redact_values;
use super::*;

fn parse_with_env(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    validate(&Source {
        text,
        file: "test.toml",
        env,
    })
    .map(|(config, _)| config)
}

#[test]
fn development_defaults_are_valid() {
    let c = Config::parse(DEVELOPMENT_CONFIG, "dev").expect("valid");
    assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.channels[0].name, "demo");
}

#[test]
fn shipped_config_is_valid() {
    let text = include_str!("../../../config.toml");
    let c = Config::parse(text, "config.toml").expect("shipped config.toml must validate");
    assert!(!c.channels.is_empty());
}

#[test]
fn errors_name_file_line_and_key() {
    let text = "[server]\nlisten = \"127.0.0.1:1\"\n\n[[channel]]\nname = \"a\"\nscheme = \"gitlub\"\nsecrets = [\"x\"]\n";
    let e = Config::parse(text, "c.toml").unwrap_err();
    assert_eq!(e.line, Some(6));
    assert_eq!(e.key, "channel[0].scheme");
    assert!(
        e.to_string().starts_with("c.toml:6: channel[0].scheme:"),
        "{e}"
    );
}

#[test]
fn toml_errors_name_the_key_and_never_echo_a_value() {
    let text = "[server]\nlisten = \"127.0.0.1:1\"\n\n[[channel]]\nname = \"a\"\nscheme = \"none\"\n\n[[channel]]\nname = \"b\"\nscheme = \"github\"\nsecrets = \"hunter2-secret\"\n";
    let e = Config::parse(text, "c.toml").unwrap_err();
    assert_eq!(
        (e.line, e.key.as_str()),
        (Some(11), "channel[1].secrets"),
        "{e}"
    );
    assert!(!e.to_string().contains("hunter2"), "{e}");
    let e = Config::parse("[server.tls]\ncert = \"c\"\nkye = \"k\"\n", "c.toml").unwrap_err();
    assert_eq!(e.key, "server.tls.kye", "{e}");
    assert_eq!(
        redact_values("invalid type: string \"a\\\"b\", expected a sequence"),
        "invalid type: a string, expected a sequence"
    );
}

#[test]
fn unknown_key_is_refused_with_line() {
    let e = Config::parse("[server]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n", "c.toml").unwrap_err();
    assert_eq!(e.line, Some(3));
    assert_eq!(e.key, "server.lisen");
    assert!(e.message.contains("lisen"), "{e}");
}

#[test]
fn env_secrets_are_resolved_and_missing_ones_refused() {
    let text = "[[channel]]\nname = \"a\"\nscheme = \"github\"\nsecrets = [\"env:GH_SECRET\"]\n";
    let ok =
        parse_with_env(text, &|n| (n == "GH_SECRET").then(|| "s3cret".to_string())).expect("ok");
    assert_eq!(ok.channels[0].verifier.secrets.len(), 1);
    let e = parse_with_env(text, &|_| None).unwrap_err();
    assert_eq!(e.line, Some(4));
    assert!(e.message.contains("GH_SECRET"));
    assert!(!e.to_string().contains("s3cret"));
}

#[test]
fn tokens_plain_and_hashed() {
    let hash = hex::encode(Sha256::digest(b"tok2"));
    let text = format!(
        "[[channel]]\nname = \"a\"\nscheme = \"none\"\ntokens = [\"tok1\", \"sha256:{hash}\"]\n"
    );
    let c = Config::parse(&text, "c").expect("ok");
    let t = &c.channels[0].tokens;
    assert!(t.matches("tok1") && t.matches("tok2") && !t.matches("tok3"));
    assert!(!format!("{t:?}").contains("tok1"));
}

#[test]
fn bad_values_are_refused() {
    for (text, key) in [
        ("[[channel]]\nname = \"a b\"\nscheme = \"none\"\n", "channel[0].name"),
        ("[[channel]]\nname = \"a\"\nscheme = \"github\"\n", "channel[0].secrets"),
        ("[[channel]]\nname = \"a\"\nscheme = \"none\"\nallow_ips = [\"10.0.0.0/33\"]\n", "channel[0].allow_ips[0]"),
        ("[[channel]]\nname = \"a\"\nscheme = \"hmac\"\nsecrets = [\"x\"]\n", "channel[0].header"),
        ("[[channel]]\nname = \"a\"\nscheme = \"none\"\n[[channel]]\nname = \"a\"\nscheme = \"none\"\n", "channel[1].name"),
        ("[server]\nmax_body_bytes = -1\n", "server.max_body_bytes"),
        ("[server]\nstream_heartbeat_secs = 0\n", "server.stream_heartbeat_secs"),
        ("[server]\nstream_idle_timeout_secs = -3\n", "server.stream_idle_timeout_secs"),
    ] {
        let e = Config::parse(text, "c").unwrap_err();
        assert_eq!(e.key, key, "{text}: {e}");
    }
}

#[test]
fn stream_timers_default_to_the_protocol_constants() {
    let c = Config::parse("[server]\nlisten = \"127.0.0.1:1\"\n", "c").expect("ok");
    assert_eq!(
        (
            c.server.stream_heartbeat_secs,
            c.server.stream_idle_timeout_secs
        ),
        (10, 30)
    );
    let c = Config::parse("", "c").expect("ok");
    assert_eq!(c.server.stream_heartbeat_secs, 10);
    let c = Config::parse(DEVELOPMENT_CONFIG, "dev").expect("ok");
    assert_eq!(c.server.stream_idle_timeout_secs, 30);
}

#[test]
fn stream_timers_are_read() {
    let c = Config::parse(
        "[server]\nstream_heartbeat_secs = 1\nstream_idle_timeout_secs = 3\n",
        "c",
    )
    .expect("ok");
    assert_eq!(
        (
            c.server.stream_heartbeat_secs,
            c.server.stream_idle_timeout_secs
        ),
        (1, 3)
    );
    // Either alone, checked against the other's default.
    let c = Config::parse("[server]\nstream_heartbeat_secs = 20\n", "c").expect("ok");
    assert_eq!(
        (
            c.server.stream_heartbeat_secs,
            c.server.stream_idle_timeout_secs
        ),
        (20, 30)
    );
    let c = Config::parse("[server]\nstream_idle_timeout_secs = 11\n", "c").expect("ok");
    assert_eq!(c.server.stream_idle_timeout_secs, 11);
}

#[test]
fn idle_timeout_must_exceed_the_heartbeat() {
    // Both written: the error points at the timeout's line.
    let e = Config::parse(
        "[server]\nstream_heartbeat_secs = 5\nstream_idle_timeout_secs = 5\n",
        "c.toml",
    )
    .unwrap_err();
    assert_eq!(
        (e.line, e.key.as_str()),
        (Some(3), "server.stream_idle_timeout_secs"),
        "{e}"
    );
    assert!(
        e.to_string()
            .starts_with("c.toml:3: server.stream_idle_timeout_secs:")
            && e.message.contains("greater than"),
        "{e}"
    );
    // Only the timeout written, below the default heartbeat (10).
    let e = Config::parse("[server]\nstream_idle_timeout_secs = 10\n", "c.toml").unwrap_err();
    assert_eq!(
        (e.line, e.key.as_str()),
        (Some(2), "server.stream_idle_timeout_secs"),
        "{e}"
    );
    // Only the heartbeat written, at or above the default timeout (30).
    let e = Config::parse(
        "[server]\nlisten = \"127.0.0.1:1\"\nstream_heartbeat_secs = 30\n",
        "c.toml",
    )
    .unwrap_err();
    assert_eq!(
        (e.line, e.key.as_str()),
        (Some(3), "server.stream_heartbeat_secs"),
        "{e}"
    );
}

#[test]
fn stream_timers_are_bounded() {
    let e = Config::parse(
        "[server]\nstream_heartbeat_secs = 10\nstream_idle_timeout_secs = 9223372036854775807\n",
        "c.toml",
    )
    .unwrap_err();
    assert_eq!(
        (e.line, e.key.as_str()),
        (Some(3), "server.stream_idle_timeout_secs"),
        "{e}"
    );
    assert!(e.message.contains("at most"), "{e}");
    let e = Config::parse("[server]\nstream_heartbeat_secs = \"10\"\n", "c.toml").unwrap_err();
    assert_eq!(e.key, "server.stream_heartbeat_secs", "{e}");
}

#[test]
fn literal_secrets_are_found_and_env_or_hashed_ones_are_not() {
    let hash = hex::encode(Sha256::digest(b"tok"));
    let env = |_: &str| Some("from-env".to_string());
    let literal = |text: &str| {
        validate(&Source {
            text,
            file: "c",
            env: &env,
        })
        .expect("valid")
        .1
    };
    let channel = |secrets: &str, tokens: &str| {
        format!("[[channel]]\nname = \"a\"\nscheme = \"github\"\nsecrets = [{secrets}]\ntokens = [{tokens}]\n")
    };
    assert_eq!(
        literal(&channel("\"env:S\"", &format!("\"sha256:{hash}\""))),
        None
    );
    assert_eq!(
        literal(&channel("\"env:S\", \"s2\"", "")).as_deref(),
        Some("channel[0].secrets[1]")
    );
    assert_eq!(
        literal(&channel("\"env:S\"", "\"env:T\", \"t\"")).as_deref(),
        Some("channel[0].tokens[1]")
    );
    assert_eq!(
        literal("[server]\nadmin_token = \"adm\"\n").as_deref(),
        Some("server.admin_token")
    );
    assert_eq!(literal("[server]\nadmin_token = \"env:ADM\"\n"), None);
}

#[test]
fn the_body_limit_defaults_to_25_mib() {
    let c = Config::parse("", "c").expect("ok");
    assert_eq!(c.server.max_body_bytes, 26_214_400);
    let c = Config::parse("[server]\nmax_body_bytes = 1024\n", "c").expect("ok");
    assert_eq!(c.server.max_body_bytes, 1024);
}

#[test]
fn every_channel_is_found_by_its_name_and_only_by_it() {
    let text: String = (0..500)
        .map(|i| format!("[[channel]]\nname = \"ch{i}\"\nscheme = \"none\"\n"))
        .collect();
    let c = Config::parse(&format!("[server]\n{text}"), "many.toml").expect("valid");
    for i in [0, 1, 250, 499] {
        let name = format!("ch{i}");
        assert_eq!(
            c.channel(&name).map(|ch| ch.name.as_str()),
            Some(name.as_str())
        );
    }
    assert!(c.channel("ch500").is_none());
    assert!(c.channel("").is_none());
    assert!(c.channel("CH1").is_none(), "names are compared exactly");
}
