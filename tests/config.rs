//! `config.toml` as `hookrelay check` and `hookrelay serve` meet it: files that hold
//! secrets and that others can read, refusals that point at the right line, and the
//! bounds on what a config may ask for.

mod common;
#[path = "common/hooks.rs"]
mod hooks;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{bin, RelayProc};
use hooks::wait_until;

/// Runs `hookrelay check --config <path>`.
fn check(path: &Path) -> Output {
    Command::new(bin())
        .args(["check", "--config"])
        .arg(path)
        .env("HOOKRELAY_LOG", "hookrelay=debug")
        .stdin(Stdio::null())
        .output()
        .expect("run hookrelay check")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Writes `body` as `name` in `dir` and returns its path.
fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, body).expect("write config");
    path
}

#[cfg(unix)]
fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A config that serves on a free port with data in `dir`, plus `channels`.
fn served(dir: &Path, channels: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\n\n{channels}",
        dir.join("data").display().to_string()
    )
}

#[cfg(unix)]
#[test]
fn readable_config_with_literal_secrets_is_warned_about() {
    let dir = tempfile::tempdir().expect("tmp");
    let literal = "[[channel]]\nname = \"a\"\nscheme = \"github\"\nsecrets = [\"s3cret\"]\n";
    let path = write(dir.path(), "config.toml", &served(dir.path(), literal));
    let p = path.display().to_string();
    for mode in [0o644, 0o666, 0o640] {
        chmod(&path, mode);
        let out = check(&path);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        assert!(
            stderr.contains("WARN")
                && stderr.contains(&p)
                && stderr.contains(&format!("mode {mode:04o}"))
                && stderr.contains("chmod 600"),
            "mode {mode:04o}: no warning in: {stderr}"
        );
        assert!(!stderr.contains("s3cret"), "secret echoed: {stderr}");
    }
    // serve warns too, before it is ready.
    chmod(&path, 0o644);
    let relay = RelayProc::start_with(dir.path(), &path, &[]);
    wait_until("the warning", || relay.stderr_text().contains("chmod 600"));
    drop(relay);
    // Private files, and readable files whose secrets come from the environment, are fine.
    chmod(&path, 0o600);
    let out = check(&path);
    assert!(
        !text(&out.stderr).contains("chmod"),
        "{}",
        text(&out.stderr)
    );
    let relay = RelayProc::start_with(dir.path(), &path, &[]);
    wait_until("relay ready", || {
        relay.stderr_text().contains("relay ready")
    });
    assert!(
        !relay.stderr_text().contains("chmod"),
        "{}",
        relay.stderr_text()
    );
    drop(relay);
    let from_env = "[[channel]]\nname = \"a\"\nscheme = \"github\"\nsecrets = [\"env:HOOKRELAY_TEST_CONFIG_SECRET\"]\ntokens = [\"sha256:0000000000000000000000000000000000000000000000000000000000000000\"]\n";
    let path = write(dir.path(), "env.toml", &served(dir.path(), from_env));
    chmod(&path, 0o644);
    let out = Command::new(bin())
        .args(["check", "--config"])
        .arg(&path)
        .env("HOOKRELAY_TEST_CONFIG_SECRET", "from-env")
        .output()
        .expect("run check");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("chmod"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_duplicate_channel_is_reported_at_its_second_definition() {
    let dir = tempfile::tempdir().expect("tmp");
    let body = "[[channel]]\nname = \"a\"\nscheme = \"none\"\n\n\
                [[channel]]\nname = \"b\"\nscheme = \"none\"\n\n\
                # the same name again\n[[channel]]\nname = \"a\"\nscheme = \"none\"\n";
    let path = write(dir.path(), "dup.toml", body);
    let out = check(&path);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let expected = format!(
        "{}:10: channel[2].name: channel \"a\" is defined twice",
        path.display()
    );
    assert!(
        stderr.contains(&expected),
        "expected {expected:?} in: {stderr}"
    );
}

/// `n` minimal channels, four lines each: channel `k` starts on line `4k + 1`.
fn channels(n: usize) -> String {
    (0..n)
        .map(|i| format!("[[channel]]\nname = \"c{i:06}\"\nscheme = \"none\"\n\n"))
        .collect()
}

#[test]
fn an_oversized_config_is_refused_before_parsing() {
    let dir = tempfile::tempdir().expect("tmp");
    // Not TOML at all: parsing it would fail on line 1 instead.
    let mut body = String::from("this is not toml\n");
    body.push_str(&"#".repeat(1024 * 1024 + 1 - body.len()));
    let path = write(dir.path(), "big.toml", &body);
    let out = check(&path);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let expected = format!(
        "{}: -: the file is 1048577 bytes; a config file may be at most 1048576 bytes (1 MiB)",
        path.display()
    );
    assert!(
        stderr.contains(&expected),
        "expected {expected:?} in: {stderr}"
    );
    // serve refuses it the same way.
    let out = Command::new(bin())
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .expect("run serve");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains(&expected),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_channel_count_is_bounded() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = write(dir.path(), "max.toml", &channels(10_000));
    let out = check(&path);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("ok (10000 channels"));
    let path = write(dir.path(), "over.toml", &channels(10_001));
    let out = check(&path);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let expected = format!(
        "{}:40001: channel[10000]: too many channels (10001): a config may have at most 10000",
        path.display()
    );
    assert!(
        stderr.contains(&expected),
        "expected {expected:?} in: {stderr}"
    );
}

#[test]
fn an_empty_env_name_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("tmp");
    for value in ["env:", "env: "] {
        let body = format!(
            "[[channel]]\nname = \"a\"\nscheme = \"github\"\nsecrets = [\"s\"]\ntokens = [{value:?}]\n"
        );
        let path = write(dir.path(), "env.toml", &body);
        let out = check(&path);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        let expected = format!(
            "{}:5: channel[0].tokens[0]: \"env:\" needs a variable name, like \"env:HOOKRELAY_SECRET\"",
            path.display()
        );
        assert!(
            stderr.contains(&expected),
            "expected {expected:?} in: {stderr}"
        );
        assert!(!stderr.contains("  "), "double space: {stderr}");
    }
}

#[test]
fn bodies_up_to_25_mib_are_accepted_by_default() {
    let dir = tempfile::tempdir().expect("tmp");
    let channel = "[[channel]]\nname = \"big\"\nscheme = \"none\"\n";
    let path = write(dir.path(), "config.toml", &served(dir.path(), channel));
    let relay = RelayProc::start_with(dir.path(), &path, &[]);
    let http = hooks::Http::new();
    // GitHub sends payloads of up to 25 MB; the old 1 MiB default refused them.
    let body = vec![b'x'; 25 * 1024 * 1024];
    let r = http.post(&relay.url("/hooks/big"), &[], &body);
    assert_eq!(r.status, 200, "{}", r.text());
}
