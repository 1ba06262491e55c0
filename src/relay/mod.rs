//! The public process: `hookrelay serve`.
//!
//! An event's way through the relay, one file each:
//! [`ingest`] (limits, allowlist, rate limit, [`crate::common::verify`], append through
//! [`crate::storage`]) → [`stream`] (the agents' WebSocket) with [`groups`] (who receives,
//! where they start). Around them: [`server`] (accept loop, routes) with [`listen`]
//! (connections, TLS and their limits), [`state`]
//! (what handlers share), [`admin`] (the operator's API), [`maintenance`] (retention),
//! [`handshake`] (provider handshakes answered at the relay, with [`hook_secrets`]),
//! [`metrics`], [`auth`], [`console`] (the web console and its API), [`body`],
//! [`ratelimit`] and [`api_error`].
//!
//! The relay never imports [`crate::agent`] or [`crate::cli`].

pub mod admin;
pub mod api_error;
pub mod auth;
pub mod body;
pub mod console;
pub mod groups;
pub mod handshake;
pub mod hook_secrets;
pub mod ingest;
pub mod listen;
pub mod log_gate;
pub mod maintenance;
pub mod metrics;
pub mod ratelimit;
pub mod ready;
pub mod server;
pub mod state;
pub mod stream;
