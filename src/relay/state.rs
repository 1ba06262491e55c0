//! The relay's shared state: what every request handler, the stream and the
//! maintenance task read. It imports no handler, so handlers can import it without a
//! cycle; [`crate::relay::server`] builds it and wires the routes.

use std::collections::HashMap;
use std::net::SocketAddr;

use crate::common::config::Config;
use crate::common::shutdown::Shutdown;
use crate::relay::metrics::Metrics;
use crate::relay::ratelimit::{Bucket, FailureLimiter};
use std::sync::Arc;

use crate::storage::Storage;

/// Facts about the connection a request came on.
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo {
    /// The TCP peer's address (never taken from a forwarding header).
    pub peer: SocketAddr,
    /// A verified client certificate was presented (TLS with `client_ca` only).
    pub client_cert: bool,
}

/// Everything a request handler needs.
pub struct Relay {
    /// The validated configuration the relay was started with.
    pub config: Config,
    /// The durable log (whichever backend the config chose).
    pub log: Arc<dyn Storage>,
    /// Prometheus counters and gauges, rendered by `/metrics`.
    pub metrics: Metrics,
    /// Per-channel budgets of accepted webhooks.
    pub limiters: HashMap<String, Bucket>,
    /// Per-address budgets of failed verifications.
    pub failures: FailureLimiter,
    /// When ingest last logged a storage failure, so that a failing disk gives one
    /// line per interval instead of one per request.
    pub storage_errors: crate::relay::log_gate::LogGate,
    /// Fires when the relay stops: handlers and streams stop taking new work.
    pub shutdown: Shutdown,
    /// Consumer groups (active and standby members) and open stream connections.
    pub hub: crate::relay::groups::Hub,
    /// Request body bytes held at once, across all connections
    /// (`max_inflight_body_bytes`); here rather than in the listener so that
    /// `/metrics` can report it.
    pub body_budget: Arc<crate::relay::listen::budget::BodyBudget>,
    /// The cached answer of `/readyz`.
    pub readiness: crate::relay::ready::Readiness,
    /// Signing secrets learned from handshakes (Asana), loaded by [`Relay::load`].
    pub hook_secrets: crate::relay::hook_secrets::HookSecrets,
    /// Web console login sessions.
    pub sessions: crate::relay::console::sessions::Sessions,
    /// The console's chart data (in-process ring buffers).
    pub rings: crate::relay::console::rings::Rings,
}

impl Relay {
    /// The state for `config` over an opened log, with one rate limiter per limited channel.
    pub fn new(config: Config, log: Arc<dyn Storage>, shutdown: Shutdown) -> Relay {
        let limiters = config
            .channels
            .iter()
            .filter_map(|c| c.rate_limit.map(|r| (c.name.clone(), Bucket::new(r))))
            .collect();
        let body_budget = Arc::new(crate::relay::listen::budget::BodyBudget::new(
            config.server.max_inflight_body_bytes,
        ));
        let metrics = Metrics::new();
        let names: Vec<String> = config.channels.iter().map(|c| c.name.clone()).collect();
        metrics.init_channels(&names);
        log.stats()
            .batch_observer
            .set(metrics.ingest.batch_observer());
        Relay {
            body_budget,
            config,
            log,
            metrics,
            readiness: Default::default(),
            limiters,
            failures: FailureLimiter::default(),
            storage_errors: Default::default(),
            shutdown,
            hub: crate::relay::groups::Hub::default(),
            hook_secrets: Default::default(),
            sessions: Default::default(),
            rings: Default::default(),
        }
    }

    /// `Ok` when the relay is ready (not stopping, storage writable), else why not.
    pub async fn ready(&self) -> Result<(), String> {
        let stopping = self.shutdown.is_triggered();
        self.readiness.check(self.log.as_ref(), stopping).await
    }

    /// The `/metrics` text.
    pub async fn render_metrics(&self) -> String {
        use crate::relay::metrics::{storage::StorageView, ScrapeInputs};
        let channels = self.channel_names();
        let ready = self.ready().await.is_ok();
        let inputs = ScrapeInputs {
            storage: StorageView {
                log: self.log.as_ref(),
                channels: &channels,
                inflight_body_bytes: self.body_budget.used(),
                ready,
            },
            members: self.hub.members(),
            now_ms: crate::common::time::now_unix_ms(),
        };
        self.metrics.render(inputs).await
    }

    /// Loads what the relay learned at run time and kept in storage (hook secrets).
    pub async fn load(&self) -> Result<(), crate::storage::StorageError> {
        self.hook_secrets
            .load(self.log.as_ref(), &self.config.channels)
            .await
    }

    /// Names of the configured channels.
    pub fn channel_names(&self) -> Vec<String> {
        self.config
            .channels
            .iter()
            .map(|c| c.name.clone())
            .collect()
    }
}
