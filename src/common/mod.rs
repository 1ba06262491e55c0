//! The shared core, below both processes: what an event is, how the relay and the
//! agent talk, how a signature is checked, how configuration is read, time, TLS and
//! shutdown. Nothing here imports [`crate::relay`], [`crate::agent`],
//! [`crate::storage`] or [`crate::cli`].

pub mod config;
pub mod event;
pub mod logs;
pub mod protocol;
pub mod redact;
pub mod shutdown;
pub mod time;
pub mod tls;
pub mod verify;
