//! Replays every committed fuzz corpus file (`fuzz/corpus/<target>/`) through the
//! same entry points the `cargo fuzz` targets call (`hookrelay::fuzzing`), on the
//! stable toolchain: an input that once crashed a target stays fixed.
//!
//! `HOOKRELAY_WRITE_SEEDS=1 cargo test --test fuzz_corpus` (re)writes the generated
//! seeds (`seed-*` files: valid protocol frames, records, signed requests, configs),
//! which give the fuzzer well-formed starting points.

use std::path::{Path, PathBuf};

use hookrelay::common::event::Record;
use hookrelay::common::protocol::{ClientMsg, ServerMsg, Start};

/// A fuzz target's entry point.
type Entry = fn(&[u8]);

/// Each target with its entry point.
const TARGETS: &[(&str, Entry)] = &[
    ("protocol", hookrelay::fuzzing::protocol),
    ("record", hookrelay::fuzzing::record),
    ("signature", hookrelay::fuzzing::signature),
    ("config_file", hookrelay::fuzzing::config_file),
    ("agent_file", hookrelay::fuzzing::agent_file),
    ("ingest", hookrelay::fuzzing::ingest),
];

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

fn replay(target: &str, run: Entry) {
    let dir = corpus_dir(target);
    let inputs = files(&dir);
    assert!(
        inputs.iter().any(|p| p
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("seed-"))),
        "{}: no seed files; run HOOKRELAY_WRITE_SEEDS=1 cargo test --test fuzz_corpus",
        dir.display()
    );
    for path in &inputs {
        let data = std::fs::read(path).expect("read corpus file");
        let outcome = std::panic::catch_unwind(|| run(&data));
        assert!(
            outcome.is_ok(),
            "{target}: {} crashes the target",
            path.display()
        );
    }
    eprintln!("{target}: {} inputs replayed", inputs.len());
}

#[test]
fn every_corpus_file_passes_its_target() {
    if std::env::var_os("HOOKRELAY_WRITE_SEEDS").is_some() {
        seeds::write_all();
    }
    for (target, run) in TARGETS {
        replay(target, *run);
    }
}

mod seeds {
    use super::*;

    fn write(target: &str, name: &str, data: &[u8]) {
        let dir = corpus_dir(target);
        std::fs::create_dir_all(&dir).expect("corpus dir");
        std::fs::write(dir.join(format!("seed-{name}")), data).expect("write seed");
    }

    pub fn write_all() {
        protocol();
        record();
        signature();
        configs();
        ingest();
    }

    fn protocol() {
        let client = [
            ClientMsg::Hello {
                versions: vec![1, 2],
                agent: "hookrelay/0.1".into(),
            },
            ClientMsg::Subscribe {
                sub: 1,
                channel: "gh".into(),
                group: "default".into(),
                start: Start::Offset(5),
                window: 64,
            },
            ClientMsg::Ack { sub: 1, offset: 7 },
            ClientMsg::AckRange {
                sub: 1,
                first: 7,
                last: 70,
            },
            ClientMsg::Nack {
                sub: 1,
                offset: 8,
                reason: "http 400".into(),
                attempts: 3,
                last_status: Some(400),
            },
            ClientMsg::Read {
                sub: 2,
                channel: "c".into(),
                start: Start::Time(1_700_000_000_000),
                to: Some(9),
                follow: true,
                window: 16,
            },
            ClientMsg::Unsubscribe { sub: 1 },
            ClientMsg::Ping { nonce: 42 },
        ];
        for (i, m) in client.iter().enumerate() {
            write("protocol", &format!("client-{i}"), &m.encode());
        }
        let server = [
            ServerMsg::Welcome {
                version: 2,
                relay: "hookrelay".into(),
                heartbeat_secs: 10,
            },
            ServerMsg::Subscribed {
                sub: 1,
                next: 5,
                head: 9,
                window: 64,
                active: true,
            },
            ServerMsg::Event {
                sub: 1,
                offset: 5,
                record: sample_record().encode(),
            },
            ServerMsg::CaughtUp { sub: 1, head: 9 },
            ServerMsg::Error {
                sub: Some(1),
                code: "unknown_offset".into(),
                message: "no".into(),
            },
            ServerMsg::End { sub: 2, last: 9 },
        ];
        for (i, m) in server.iter().enumerate() {
            write("protocol", &format!("server-{i}"), &m.encode());
        }
    }

    fn sample_record() -> Record {
        Record {
            id: "evt_0123456789abcdef0123456789abcdef".into(),
            channel: "gh".into(),
            offset: 5,
            received_at_ms: 1_700_000_000_123,
            method: "POST".into(),
            path: "/push".into(),
            query: "a=1&b=2".into(),
            headers: vec![
                ("content-type".into(), b"application/json".to_vec()),
                ("x-github-delivery".into(), b"72d3162e".to_vec()),
            ],
            body: br#"{"zen":"Keep it logically awesome."}"#.to_vec(),
            peer: "192.0.2.1:5000".into(),
            scheme: "github".into(),
        }
    }

    fn record() {
        write("record", "json", &sample_record().encode());
        let mut binary = sample_record();
        binary.body = (0..=255u8).collect();
        write("record", "binary", &binary.encode());
    }

    /// Layout of a signature input: selector byte, signature, `\n`, timestamp, `\n`,
    /// id, `\n`, body (see `hookrelay::fuzzing::signature`).
    fn signature() {
        let body = br#"{"action":"opened"}"#;
        let cases: [(&str, &str, &str, &str); 5] = [
            ("github", "sha256=0b1a7c2e4d9f8a6b5c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b", "", "72d3162e"),
            ("stripe", "t=1700000000,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd,v0=6ffbb59b", "", ""),
            ("slack", "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503", "1700000000", ""),
            ("standard", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v1a,abc", "1700000000", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
            ("discord", "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0", "1700000000", ""),
        ];
        for (i, (name, sig, ts, id)) in cases.iter().enumerate() {
            let mut data = vec![i as u8 * 37];
            data.extend_from_slice(format!("{sig}\n{ts}\n{id}\n").as_bytes());
            data.extend_from_slice(body);
            write("signature", name, &data);
        }
    }

    fn configs() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let shipped = std::fs::read(root.join("config.toml")).expect("config.toml");
        write("config_file", "shipped", &shipped);
        let full = br#"[server]
listen = "127.0.0.1:8080"
data_dir = "./data"
max_body_bytes = 26214400
admin_token = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

[storage]
backend = "sled"

[[channel]]
name = "github"
scheme = "github"
secrets = ["s1", "env:GH_SECRET"]
tokens = ["t1"]
dedup_window_secs = 86400
retention = { max_age_secs = 604800, max_events = 1000000 }
allow_ips = ["192.30.252.0/22", "2001:db8::/32"]
rate_limit = { per_second = 100, burst = 200 }

[[channel]]
name = "generic"
scheme = "hmac"
secrets = ["s2"]
header = "X-Signature"
prefix = "sha256="
encoding = "hex"
id_header = "X-Request-Id"
"#;
        write("config_file", "full", full);
        let agent = br#"relay = "wss://relay.example.com"
token = "env:HOOKRELAY_TOKEN"

[[route]]
channel = "github"
forward = "http://127.0.0.1:3000/webhooks"
group = "ci"
from = "committed"
max_in_flight = 8
max_rate = 50
filter = ["header:x-github-event=push", "json:/ref^=refs/heads/"]

[[route]]
channel = "stripe"
forward = "http://127.0.0.1:4000/"
"#;
        write("agent_file", "routes", agent);
    }

    fn ingest() {
        let requests: [(&str, &[u8]); 6] = [
            ("post", b"POST /hooks/c/a/b?x=1 HTTP/1.1\r\nHost: r\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"a\":[1,2]}"),
            ("chunked", b"POST /hooks/c HTTP/1.1\r\nHost: r\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
            ("github-bad-sig", b"POST /hooks/gh HTTP/1.1\r\nHost: r\r\nX-Hub-Signature-256: sha256=00\r\nX-GitHub-Delivery: d-1\r\nContent-Length: 2\r\n\r\n{}"),
            ("admin", b"GET /v1/channels/c/events?from=1&limit=5 HTTP/1.1\r\nHost: r\r\nAuthorization: Bearer fuzz-admin-token\r\n\r\n"),
            ("pipelined", b"POST /hooks/c HTTP/1.1\r\nHost: r\r\nContent-Length: 1\r\n\r\nxGET /healthz HTTP/1.1\r\nHost: r\r\n\r\nGET /metrics HTTP/1.1\r\nHost: r\r\n\r\n"),
            ("upgrade", b"GET /v1/stream HTTP/1.1\r\nHost: r\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer fuzz-token\r\n\r\n"),
        ];
        for (name, bytes) in requests {
            write("ingest", name, bytes);
        }
    }
}
