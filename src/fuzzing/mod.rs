//! Entry points for fuzzing, one per input surface a peer or a user controls.
//!
//! The `cargo fuzz` targets in `fuzz/` call these functions, and so does
//! `tests/fuzz_corpus.rs`, which replays every committed corpus file on the stable
//! toolchain: a crash the fuzzer once found stays fixed, checked by `cargo test`.
//!
//! Each entry point must never panic on any input; a panic is the finding. Where a
//! parser accepts an input, the entry point also checks a property that must hold
//! (a decoded message re-encodes to itself; a stored event reads back), so the fuzzer
//! finds wrong answers, not only crashes.
//!
//! This module sits on top of every layer (it drives relay, agent and common code),
//! beside `cli/`; nothing imports it.

mod config;
mod ingest;
mod signature;

pub use config::{agent_file, config_file};
pub use ingest::ingest;
pub use signature::signature;

use crate::common::event::Record;
use crate::common::protocol::{ClientMsg, ServerMsg};

/// The wire protocol, both directions: a frame from an agent and one from a relay.
pub fn protocol(data: &[u8]) {
    if let Ok(msg) = ClientMsg::decode(data) {
        let again = ClientMsg::decode(&msg.encode());
        assert_eq!(again.ok().as_ref(), Some(&msg), "client message round trip");
    }
    if let Ok(msg) = ServerMsg::decode(data) {
        let again = ServerMsg::decode(&msg.encode());
        assert_eq!(again.ok().as_ref(), Some(&msg), "server message round trip");
    }
}

/// A stored record, as the log reads it back.
pub fn record(data: &[u8]) {
    if let Ok(rec) = Record::decode(data) {
        let again = Record::decode(&rec.encode());
        assert_eq!(again.ok().as_ref(), Some(&rec), "record round trip");
        let _ = serde_json::to_string(&rec.to_json());
    }
}
