//! The replicated backend: NATS JetStream, through the official `async-nats` client.
//!
//! This folder is the only place that names NATS. Layout, one job per file:
//! - `connect`: the connection, the server-version and JetStream checks;
//! - `names`: stream, subject, bucket and key names;
//! - `handle`: [`JetStreamStorage`] and its open; `backend`: the trait impl;
//! - `writer`: one append writer per channel (offsets, dedup); `publish`: its
//!   pipelined publish in rounds, placing again what another node's append refused;
//! - `streams`: creating, listing, reading and purging streams; `retention`;
//! - `recent`: the newest records this node appended, which live reads take from
//!   memory; `heads`: heads, first offsets and watchers in memory; `follow`: every node's
//!   appends move them; `firsts`: every node's purges move them;
//! - `kv`, `cursors`, `letters`, `dedup`, `settings`, `firsts`: the key-value buckets;
//! - `lease`: one active member per (channel, group) across nodes (`{prefix}_leases`,
//!   a KV lease with a time to live; its doc says why not pinned priority groups);
//! - `control`: resets and redrives made on one node, announced to the others;
//! - `import`: what `hookrelay migrate` writes (a stream at a first offset, records
//!   at their own offsets, delivery-id claims, redrive marks).
//!
//! # Layout on the server
//!
//! One stream per channel, `{prefix}_{channel}` with the one subject
//! `{prefix}.{channel}`, so the stream sequence IS the channel's offset: dense from 1,
//! never reused (a purge keeps the last sequence). Each message is the event's
//! [`crate::common::event::Record`] bytes, offset included, so `read_raw` returns the
//! stored bytes as the sled backend does. The writer knows the offset before it
//! publishes because it publishes with `Nats-Expected-Last-Sequence`: when another
//! relay node on the same prefix appended first, the server refuses (error 10071)
//! instead of storing the record under a wrong offset, and the writer encodes it again
//! after the real last sequence and publishes again (bounded rounds, random waits;
//! see `publish`). Delivery ids are deduplicated by JetStream itself (`Nats-Msg-Id`,
//! the stream's duplicate window = the channel's dedup window; see `dedup`). Cursors,
//! dead letters, redrive marks and the delivery ids `migrate` imported live in the
//! buckets `{prefix}_cursors`, `_deadletters`, `_redrives`, `_dedup`; first
//! retained offsets in `_firsts`; values the relay learns per channel (Asana's hook
//! secret) in `_settings`.
//!
//! # Several relay nodes on one prefix
//!
//! Any number of nodes may serve one `stream_prefix` (behind a load balancer). Nothing
//! is owned by a node: every offset comes from the stream (expected last sequence,
//! placed again on a conflict), every cursor write is a compare-and-set on the key's
//! revision that never lowers a cursor, a delivery id is sent as `Nats-Msg-Id` (two
//! nodes taking one id at the same moment: JetStream stores one and answers the other
//! with its sequence), and a purge below a sequence is idempotent, so
//! nodes enforcing the same retention purge each event once and offsets stay.
//!
//! # What a 2xx means here
//!
//! An append is answered after JetStream's publish ack, which the stream leader sends
//! once a quorum of the stream's replicas (all of 1, 2 of 3, 3 of 5) has the message.
//! Each server writes it to its file store, but fsyncs on every write only with
//! `jetstream { sync_interval: always }` in its config (the default syncs every two
//! minutes): so with replicas = 3 an acknowledged event survives the loss of one
//! server, and with `sync_interval: always` also a power cut of every server.
//! `deploy/nats/cluster.conf` is such a cluster.
//!
//! # Staleness of the synchronous reads
//!
//! `head`, `watch`, `earliest`, `channels` and `cursor` answer from memory, loaded at
//! open (stream info, the buckets) and kept current, without polling, by:
//! - this node's own acknowledged appends, purges and cursor writes (exact);
//! - per channel, an ordered headers-only consumer from `head + 1` (`follow`): every
//!   node's appends, as JetStream delivers them — only stored (on a replicated stream,
//!   committed) messages, so a head never passes what JetStream acknowledged;
//! - a watch on `_firsts` (every node's purges) and on `_cursors` (every node's cursor
//!   writes), applied by revision so the cache never goes back.
//!
//! So another node's append, purge or cursor move is seen here after JetStream's
//! delivery delay (one message from the server; while this node is disconnected,
//! until it reconnects, when the ordered consumer and the watches resume where they
//! were). A reader on this node may therefore be that much behind another node, never
//! ahead of the stream. A channel is followed from the first `head`/`watch`/`earliest`
//! or append on it (creating its stream if needed: one ephemeral consumer per channel
//! per node). The configured channels' streams are created (or updated) when the
//! relay starts (`JetStreamStorage::prepare`), not on a first webhook.
//!
//! # Consumer groups across nodes
//!
//! Per (channel, group) one node delivers: the one holding the group's lease in the
//! `{prefix}_leases` bucket (a key with a 4 s time to live, renewed every second; the
//! holder stops on its own after 2 s without a renew, before the key can expire). See
//! `lease` for the timing and why not JetStream's pinned priority groups. Resets and
//! redrives made through one node reach the others on the core NATS subject
//! `{prefix}.control.groups` (`control`).
//!
//! # Refusing to start
//!
//! Open fails with a message when no server answers, when the account has no
//! JetStream, when the server is older than [`MIN_SERVER_VERSION`], or when a bucket
//! cannot be created with the replicas asked for (a cluster with too few servers).

mod backend;
mod connect;
mod control;
mod cursors;
mod dedup;
mod firsts;
mod follow;
mod handle;
mod heads;
mod import;
mod kv;
mod lease;
mod letters;
mod names;
mod publish;
mod recent;
mod retention;
mod settings;
mod shared;
mod streams;
#[cfg(test)]
mod test_server;
mod writer;

pub use connect::MIN_SERVER_VERSION;
pub use handle::JetStreamStorage;
pub use import::StreamSpan;
pub use lease::{LEASE_TTL_MS, RENEW_EVERY_MS, STOP_AFTER_MS};
