//! The relay's HTTP front, fed raw request bytes in-process: hyper's parser, the
//! connection limits, the routes, ingest and the admin API, over one relay with an
//! embedded log in a scratch directory.
//!
//! After each input the log must still read back: the newest event of every channel
//! decodes (nothing stored is lost or corrupted by bad input, guarantee 6).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::Runtime;

use crate::common::config::Config;
use crate::common::shutdown::Shutdown;
use crate::relay::state::Relay;

/// Longest one input may take; a connection that outlives it is a hang, a finding.
const INPUT_DEADLINE: Duration = Duration::from_secs(10);
/// Most response bytes read back per input.
const MAX_RESPONSE_BYTES: usize = 4 << 20;

/// The relay the inputs are sent to: channels of a keyless, an HMAC and a Standard
/// Webhooks scheme, consumer tokens and an admin token, so that every route is live.
const CONFIG: &str = r#"
[server]
listen = "127.0.0.1:0"
admin_token = "fuzz-admin-token"
max_body_bytes = 1048576

[[channel]]
name = "c"
scheme = "none"
tokens = ["fuzz-token"]

[[channel]]
name = "gh"
scheme = "github"
secrets = ["fuzz-secret"]
tokens = ["fuzz-token"]

[[channel]]
name = "std"
scheme = "standard"
secrets = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]
"#;

struct Harness {
    rt: Runtime,
    relay: Arc<Relay>,
}

/// One connection: `data` is written as the client's bytes, then the client shuts
/// its write side and reads the answer.
pub fn ingest(data: &[u8]) {
    let Some(h) = harness() else {
        panic!("the fuzzing relay could not start (see stderr)");
    };
    let answer = h.rt.block_on(async {
        tokio::time::timeout(INPUT_DEADLINE, exchange(h.relay.clone(), data)).await
    });
    let Ok(answer) = answer else {
        panic!("a connection did not finish within {INPUT_DEADLINE:?}");
    };
    check_answer(data, &answer);
    h.rt.block_on(check_log(&h.relay));
}

async fn exchange(relay: Arc<Relay>, data: &[u8]) -> Vec<u8> {
    let (mut client, server) = tokio::io::duplex(64 * 1024);
    let peer = SocketAddr::from(([127, 0, 0, 1], 40000));
    let serving = tokio::spawn(crate::relay::server::serve_stream(relay, server, peer));
    // The server may answer and close before reading everything (a refusal):
    // a failed write is then normal.
    let _ = client.write_all(data).await;
    let _ = client.shutdown().await;
    let mut answer = Vec::new();
    let _ = (&mut client)
        .take(MAX_RESPONSE_BYTES as u64)
        .read_to_end(&mut answer)
        .await;
    drop(client);
    let _ = serving.await;
    answer
}

/// The HTTP/2 connection preface: a client that sends it speaks HTTP/2 (h2c), and
/// the relay answers in HTTP/2 frames.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Whatever came back to an HTTP/1 client is HTTP/1: a status line first, when
/// anything came back at all. (The fuzzer found the h2c case: an HTTP/2 client gets
/// frames, rightly.)
fn check_answer(request: &[u8], answer: &[u8]) {
    if !answer.is_empty() && !request.starts_with(H2_PREFACE) {
        assert!(
            answer.starts_with(b"HTTP/1."),
            "the answer is not HTTP: {:?}",
            String::from_utf8_lossy(&answer[..answer.len().min(64)])
        );
    }
}

/// Every channel's newest event still reads back and decodes.
async fn check_log(relay: &Relay) {
    for channel in relay.channel_names() {
        let head = relay.log.head(&channel);
        if head == 0 {
            continue;
        }
        match relay.log.get(&channel, head).await {
            Ok(Some(_)) => {}
            other => panic!("{channel}@{head} does not read back: {other:?}"),
        }
    }
}

fn harness() -> Option<&'static Harness> {
    static HARNESS: OnceLock<Option<Harness>> = OnceLock::new();
    HARNESS
        .get_or_init(|| match start() {
            Ok(h) => Some(h),
            Err(e) => {
                eprintln!("fuzzing relay: {e}");
                None
            }
        })
        .as_ref()
}

fn start() -> Result<Harness, String> {
    let dir = scratch_dir()?;
    let config = Config::parse(CONFIG, "fuzz config").map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let log = crate::storage::open(&dir, 0).map_err(|e| e.to_string())?;
    let relay = Arc::new(Relay::new(config, log, Shutdown::new()));
    Ok(Harness { rt, relay })
}

/// A fresh directory per process, removed first if a previous run left it.
fn scratch_dir() -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("hookrelay-fuzz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}
