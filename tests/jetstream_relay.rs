//! A real relay with `[storage] backend = "jetstream"`: webhooks are answered with
//! their offsets, read back through the admin API, and offsets continue after the
//! relay restarts (the log lives on the nats-server, not in the data directory).

mod common;
#[path = "common/nats.rs"]
mod nats;

use common::{get, post_raw, RelayProc};
use nats::NatsServer;

const ADMIN: &str = "admin-token-js";
const TOKEN: &str = "ingest-token-js";

fn post(relay: &RelayProc, body: &[u8]) -> u64 {
    let headers = [("authorization".to_string(), format!("Bearer {TOKEN}"))];
    let (status, json) = post_raw(&relay.url("/hooks/c"), "POST", &headers, body);
    assert_eq!(status, 200, "{json}");
    json["offset"].as_u64().expect("offset")
}

#[test]
fn the_relay_runs_on_jetstream_and_keeps_offsets_across_restarts() {
    let store = tempfile::tempdir().expect("tempdir");
    let server = NatsServer::single(store.path());
    let dir = tempfile::tempdir().expect("tempdir");
    let mut relay = RelayProc::start(
        dir.path(),
        &format!("admin_token = \"{ADMIN}\""),
        &format!(
            "[storage]\nbackend = \"jetstream\"\nservers = [\"{}\"]\nstream_prefix = \"relay\"\n\n\
             [[channel]]\nname = \"c\"\nscheme = \"none\"\ntokens = [\"{TOKEN}\"]\n",
            server.url
        ),
    );
    for i in 1..=3u64 {
        assert_eq!(post(&relay, format!("e{i}").as_bytes()), i);
    }
    relay.restart();
    assert_eq!(post(&relay, b"e4"), 4, "offsets continue from the stream");
    let (status, json) = get(
        &relay.url("/v1/channels/c/events?from=1&limit=10"),
        Some(ADMIN),
    );
    assert_eq!(status, 200, "{json}");
    let text = json.to_string();
    for i in 1..=4 {
        assert!(text.contains(&format!("\"e{i}\"")), "event e{i} in {text}");
    }
}
