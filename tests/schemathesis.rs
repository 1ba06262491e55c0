//! The HTTP API against its own OpenAPI document (`/v1/openapi.json`), with
//! Schemathesis (from PyPI; `.ci/run` installs it): generated requests to every route
//! of a real relay must never get a 5xx, and every response, error bodies included,
//! must match the document (`not_a_server_error`, `response_schema_conformance`).
//!
//! The seed is fixed so that a CI failure reproduces; the examples still come from
//! Schemathesis's generator, not from us.

mod common;

use std::process::Command;

use common::*;

const ADMIN: &str = "schema-admin";

#[test]
fn the_api_matches_its_openapi_document_and_never_answers_5xx() {
    let have = Command::new("schemathesis").arg("--version").output();
    assert!(
        have.is_ok_and(|o| o.status.success()),
        "schemathesis is missing: run .ci/run or `python3 -m pip install schemathesis`"
    );
    let dir = tempfile::tempdir().expect("tmp");
    let channels = "[[channel]]\nname = \"c\"\nscheme = \"none\"\ntokens = [\"schema-token\"]\n\n\
                    [[channel]]\nname = \"gh\"\nscheme = \"github\"\nsecrets = [\"schema-secret\"]\n";
    let relay = RelayProc::start(dir.path(), &format!("admin_token = \"{ADMIN}\""), channels);
    // Stored events, so that the event routes have something to find.
    for i in 1..=3 {
        let (status, json) = post_raw(
            &relay.url("/hooks/c"),
            "POST",
            &[],
            format!("{{\"n\":{i}}}").as_bytes(),
        );
        assert_eq!(status, 200, "{json}");
    }
    // Real identifiers for the path parameters; without them most requests would stop
    // at 404 unknown_channel.
    let config = dir.path().join("schemathesis.toml");
    std::fs::write(
        &config,
        "[parameters]\nchannel = \"c\"\ngroup = \"default\"\n",
    )
    .expect("config");
    let out = Command::new("schemathesis")
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(relay.url("/v1/openapi.json"))
        .args(["-H", &format!("Authorization: Bearer {ADMIN}")])
        .args(["-c", "not_a_server_error,response_schema_conformance"])
        .args(["-n", "25", "--phases", "examples,fuzzing", "--seed", "1"])
        // The live feed is an endless Server-Sent Events stream: each generated request
        // would wait out the client's timeout. tests/console.rs covers it; its event
        // schema was checked by Schemathesis once by hand (it found the mismatch).
        .args(["--exclude-path-regex", "/feed$"])
        .env("NO_COLOR", "1")
        .output()
        .expect("run schemathesis");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found failures:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // It really tested the API: every operation of the document was exercised.
    assert!(stdout.contains("Tested: "), "{stdout}");
    assert!(!stdout.contains("Tested: 0"), "{stdout}");
    // "N generated, N passed": every generated case passed both checks.
    let summary = stdout
        .lines()
        .find(|l| l.contains(" generated, "))
        .unwrap_or_else(|| panic!("no summary line:\n{stdout}"));
    let counts: Vec<&str> = summary.split_whitespace().collect();
    assert!(
        counts.len() == 4 && counts[0] == counts[2] && counts[3] == "passed",
        "{summary}"
    );
}
