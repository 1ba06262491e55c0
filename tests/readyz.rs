//! `GET /readyz` on a real relay: ready while its data directory takes writes, 503
//! `unavailable` (saying why) once the directory turns read-only or its disk falls
//! below the free-space reserve, ready again once it is writable again and after a
//! restart; `hookrelay_ready` follows.
//!
//! The data directory lives on a tmpfs this test mounts, made read-only with a
//! read-only bind mount over it (see `hooks::ReadOnlyBind`): root ignores file modes,
//! so only a read-only mount makes a write fail. That needs root (CAP_SYS_ADMIN); without
//! it the test fails and says so.

mod common;
#[path = "common/hooks.rs"]
mod hooks;

use std::time::{Duration, Instant};

use common::{RelayProc, DEADLINE};
use hooks::{Http, ReadOnlyBind, Tmpfs};

/// Polls `/readyz` until it answers `status`; returns the JSON body.
fn wait_ready_status(http: &Http, relay: &RelayProc, status: u16) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let r = http.get(&relay.url("/readyz"), None);
        if r.status == status {
            return r.json;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "/readyz stayed {} (waiting for {status}): {}",
            r.status,
            r.text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn ready_gauge(relay: &RelayProc) -> Option<f64> {
    let s = common::metrics::scrape(&relay.url("/metrics"));
    common::metrics::value(&s, "hookrelay_ready", &[])
}

#[test]
fn readyz_follows_a_read_only_data_directory_and_recovers() {
    let mount = Tmpfs::mount("96m").unwrap_or_else(|why| {
        panic!("this test needs to mount a tmpfs (run the tests as root): {why}")
    });
    let dir = tempfile::tempdir().expect("tmp");
    let config = dir.path().join("config.toml");
    let data = mount.path().join("data");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\n\n\
             [[channel]]\nname = \"a\"\nscheme = \"none\"\n",
            data.display().to_string()
        ),
    )
    .expect("config");
    let mut relay = RelayProc::start_with(dir.path(), &config, &[]);
    let http = Http::new();

    let body = wait_ready_status(&http, &relay, 200);
    assert_eq!(body, serde_json::json!({"status": "ready"}));
    assert_eq!(ready_gauge(&relay), Some(1.0));

    let ro = ReadOnlyBind::over(&data).unwrap_or_else(|why| {
        panic!("this test needs mount --bind (run the tests as root): {why}")
    });
    let body = wait_ready_status(&http, &relay, 503);
    assert_eq!(body["error"], "unavailable", "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("not writable"), "{message}");
    assert_eq!(ready_gauge(&relay), Some(0.0));
    // Liveness is another question: the process is fine.
    assert_eq!(http.get(&relay.url("/healthz"), None).status, 200);

    ro.release();
    let body = wait_ready_status(&http, &relay, 200);
    assert_eq!(body["status"], "ready");
    assert_eq!(ready_gauge(&relay), Some(1.0));
    let r = http.send("POST", &relay.url("/hooks/a"), &[], b"after");
    assert_eq!(r.status, 200, "writes work again: {}", r.text());

    // A disk below the free-space reserve refuses appends, so it is not ready either.
    let filler = mount.path().join("filler");
    std::fs::write(&filler, vec![0u8; 48 << 20]).expect("fill the tmpfs");
    let body = wait_ready_status(&http, &relay, 503);
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("reserve"), "{message}");
    std::fs::remove_file(&filler).expect("free the tmpfs");
    wait_ready_status(&http, &relay, 200);

    relay.restart();
    wait_ready_status(&http, &relay, 200);
    assert_eq!(ready_gauge(&relay), Some(1.0));
}
