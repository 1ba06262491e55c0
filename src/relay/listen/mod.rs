//! Connections, from `accept` to close, and what bounds them.
//!
//! Every connection the relay holds costs a file descriptor and some memory, and a peer
//! that says nothing must not be able to hold one for ever. So, for HTTP/1, HTTP/2
//! cleartext and TLS alike:
//!
//! - [`accept`] refuses connections beyond `max_connections` at once and keeps
//!   accepting when the process runs out of descriptors (it backs off instead of
//!   spinning); [`rlimit`] raises the soft descriptor limit to the hard one at start.
//! - [`watch`] gives each connection a deadline: the TLS handshake and the first byte
//!   within `first_byte_timeout_secs`, each HTTP/1 request head within the same time
//!   after its first byte, `idle_timeout_secs` between requests, and a response the
//!   client stops reading for `idle_timeout_secs`. [`io`] feeds it what the socket does;
//!   [`service`] tells it when requests start and end.
//! - [`request_body`] bounds the time to receive a body (`body_timeout_secs`); the
//!   handler answers `408 request_timeout` when it passes. It also takes the body's
//!   share of the in-flight [`budget`] (`max_inflight_body_bytes`; `503` past it).
//! - [`hyper_errors`]: the refusals hyper writes itself (400, 414, 431) get the same
//!   JSON body as every other refusal.
//! - [`linger`]: after an answer to a body left unread (413, 408), the rest of the body
//!   is read and discarded for a bounded time before closing, so that the client reads
//!   the answer instead of a connection reset.
//!
//! A connection upgraded to the agents' WebSocket leaves hyper, and with it these
//! deadlines: the stream has its own heartbeat and idle timeout. It is not counted in
//! `max_connections` either, as only a consumer token gets that far.
//!
//! [`conn`] puts the pieces together for one connection.

pub mod accept;
pub mod budget;
pub mod conn;
pub mod hyper_errors;
pub mod io;
pub mod limits;
pub mod linger;
pub mod request_body;
pub mod rlimit;
pub mod service;
pub mod watch;
