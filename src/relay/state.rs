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
        Relay {
            body_budget,
            config,
            log,
            metrics: Metrics::new(),
            limiters,
            failures: FailureLimiter::default(),
            storage_errors: Default::default(),
            shutdown,
            hub: crate::relay::groups::Hub::default(),
            sessions: Default::default(),
            rings: Default::default(),
        }
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
