//! What ships in `deploy/`: the Prometheus alert rules pass their unit tests under
//! `promtool`, and the systemd units pass `systemd-analyze verify`. Both tools are
//! installed by `.ci/run`; a missing one fails the test with its name.

use std::path::{Path, PathBuf};
use std::process::Command;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

/// Runs `tool args...` in `dir`; panics naming the tool when it is not installed.
fn run(tool: &str, args: &[&str], dir: &Path) -> (bool, String) {
    let out = Command::new(tool)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("{tool} is needed for this test and could not be run ({e}); .ci/run installs it")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn alert_rules_are_valid_and_each_fires_in_its_unit_test() {
    let dir = deploy().join("prometheus");
    let (ok, text) = run("promtool", &["check", "rules", "alerts.yml"], &dir);
    assert!(ok, "promtool check rules:\n{text}");
    let (ok, text) = run("promtool", &["test", "rules", "alerts_test.yml"], &dir);
    assert!(ok, "promtool test rules:\n{text}");
    // Every alert of the file is exercised by the unit test.
    let rules = std::fs::read_to_string(dir.join("alerts.yml")).expect("rules");
    let tests = std::fs::read_to_string(dir.join("alerts_test.yml")).expect("tests");
    for line in rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
    {
        assert!(
            tests.contains(&format!("alertname: {line}")),
            "alert {line} has no unit test in alerts_test.yml"
        );
    }
}

#[test]
fn systemd_units_verify() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut units = Vec::new();
    for name in ["hookrelay.service", "hookrelay-agent.service"] {
        let text = std::fs::read_to_string(deploy().join("systemd").join(name)).expect("unit");
        assert!(text.contains("NoNewPrivileges=yes") && text.contains("ProtectSystem=strict"));
        assert!(text.contains("Restart=on-failure") && text.contains("User=hookrelay"));
        // verify checks that ExecStart's binary exists: point it at the one just built.
        let text = text.replace("/usr/local/bin/hookrelay", env!("CARGO_BIN_EXE_hookrelay"));
        std::fs::write(dir.path().join(name), text).expect("write");
        units.push(name);
    }
    let mut args = vec!["verify"];
    args.extend(&units);
    let (ok, text) = run("systemd-analyze", &args, dir.path());
    assert!(
        ok && text.trim().is_empty(),
        "systemd-analyze verify:\n{text}"
    );
}

#[test]
fn the_grafana_dashboard_is_json_with_panels() {
    let text = std::fs::read_to_string(deploy().join("grafana").join("hookrelay.json"))
        .expect("dashboard");
    let dash: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let panels = dash["panels"].as_array().expect("panels");
    assert!(panels.len() >= 8, "{} panels", panels.len());
    for p in panels {
        assert!(p["targets"][0]["expr"]
            .as_str()
            .is_some_and(|e| e.contains("hookrelay_")));
    }
}

#[test]
fn the_units_use_only_flags_the_binary_has() {
    for name in ["hookrelay.service", "hookrelay-agent.service"] {
        let text = std::fs::read_to_string(deploy().join("systemd").join(name)).expect("unit");
        let exec = text
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart=/usr/local/bin/hookrelay "))
            .unwrap_or_else(|| panic!("{name}: no ExecStart of hookrelay"));
        let mut words = exec.split_whitespace();
        let command = words.next().expect("a subcommand");
        let help = Command::new(env!("CARGO_BIN_EXE_hookrelay"))
            .args([command, "--help"])
            .output()
            .expect("run --help");
        let help = String::from_utf8_lossy(&help.stdout);
        for flag in words.filter(|w| w.starts_with("--")) {
            assert!(
                help.contains(flag),
                "{name}: `hookrelay {command}` has no {flag}"
            );
        }
    }
}
