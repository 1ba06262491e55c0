//! hookrelay: a self-hosted webhook relay.
//!
//! # Layout
//!
//! Three layers; a layer imports only from layers below it.
//!
//! ```text
//! cli/     fuzzing/         the command line; the fuzzers' entry points (tests only)
//! relay/   agent/           the two processes, side by side; neither imports the other
//! storage/                  the relay's durable log, behind one trait (sled inside)
//! common/                   event, protocol, verify, config, time, TLS, shutdown
//! ```
//!
//! An event's way: `relay/ingest` checks it with `common/verify` and appends it through
//! `storage`; `relay/stream` sends it to an agent over the `common/protocol` WebSocket;
//! `agent/session` receives it and `agent/forward` delivers it. `ARCHITECTURE.md` at
//! the repository root has the code map and the invariants.

// No `unsafe` anywhere: system calls go through rustix's safe wrappers.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
// Nothing a peer or a config controls is unwrapped; tests may.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod agent;
pub mod cli;
pub mod common;
#[doc(hidden)]
pub mod fuzzing;
pub mod relay;
pub mod storage;
