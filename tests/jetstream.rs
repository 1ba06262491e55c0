//! The JetStream backend against a real nats-server: the same storage contract as the
//! embedded backend, one fresh server (and stream prefix) per check.

#[path = "common/nats.rs"]
mod nats;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use hookrelay::common::config::JetStreamConfig;
use hookrelay::storage::contract::Harness;
use hookrelay::storage::jetstream::JetStreamStorage;
use hookrelay::storage::Storage;
use nats::NatsServer;

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A server of its own and a prefix of its own; every `open` reconnects.
struct JsHarness {
    server: NatsServer,
    prefix: String,
    _store: tempfile::TempDir,
}

impl JsHarness {
    fn new() -> JsHarness {
        let store = tempfile::tempdir().expect("tempdir");
        JsHarness {
            server: NatsServer::single(store.path()),
            prefix: format!("t{}", NEXT.fetch_add(1, Ordering::Relaxed)),
            _store: store,
        }
    }
}

#[async_trait::async_trait]
impl Harness for JsHarness {
    async fn open(&self) -> Arc<dyn Storage> {
        let mut cfg = JetStreamConfig::new(vec![self.server.url.clone()]);
        cfg.stream_prefix = self.prefix.clone();
        Arc::new(JetStreamStorage::open(&cfg).await.expect("open jetstream"))
    }
}

mod contract {
    use super::JsHarness;
    hookrelay::storage_contract_tests!(JsHarness::new());
}
