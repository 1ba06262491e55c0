//! The per-channel streams: creating them, finding them at open, reading and purging.

use async_nats::jetstream::stream::{Config, LastRawMessageErrorKind, StorageType, Stream};
use async_nats::jetstream::Context;
use bytes::Bytes;
use futures_util::future::join_all;
use futures_util::StreamExt;
use std::time::{Duration, Instant};

use super::connect::fail;
use super::names::Names;
use crate::common::event::Record;
use crate::storage::error::StorageError;

/// Messages fetched at once by a read (one request each, sent together).
const READ_CHUNK: u64 = 64;

/// How long a read waits for the stream leader to hold an acknowledged offset (see
/// [`not_yet_applied`]) before it fails; the subscription that read then ends with an
/// error and the agent subscribes again from its cursor, so nothing is skipped.
const UNAPPLIED_WAIT: Duration = Duration::from_secs(5);
/// Longest wait between two tries of such a read.
const UNAPPLIED_RETRY_MAX_MS: u64 = 100;

/// JetStream's `Nats-Msg-Id` window for a channel whose window this node does not know
/// (a stream followed or read, never configured here): JetStream's own default.
pub const DEFAULT_DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// The shortest window JetStream takes.
const MIN_DUPLICATE_WINDOW: Duration = Duration::from_secs(1);

/// Creates the channel's stream, or updates it to this config when it exists. The
/// stream's `Nats-Msg-Id` window is the channel's dedup window (see `dedup`).
pub async fn ensure(
    js: &Context,
    names: &Names,
    channel: &str,
    replicas: usize,
    dedup_window: Duration,
) -> Result<Stream, StorageError> {
    let config = Config {
        name: names.stream(channel),
        subjects: vec![names.subject(channel)],
        storage: StorageType::File,
        num_replicas: replicas,
        duplicate_window: dedup_window.max(MIN_DUPLICATE_WINDOW),
        ..Default::default()
    };
    // Create or update: a changed `replicas` reaches streams made before the change.
    let name = config.name.clone();
    js.create_or_update_stream(config).await.map_err(|e| {
        fail(format!(
            "cannot create or update stream {name} with {replicas} replica(s): {e}"
        ))
    })?;
    js.get_stream(&name)
        .await
        .map_err(|e| fail(format!("stream {name}: {e}")))
}

/// The channel's stream if it exists.
pub async fn existing(
    js: &Context,
    names: &Names,
    channel: &str,
) -> Result<Option<Stream>, StorageError> {
    use async_nats::jetstream::context::GetStreamErrorKind;
    match js.get_stream(names.stream(channel)).await {
        Ok(s) => Ok(Some(s)),
        Err(e) => match e.kind() {
            GetStreamErrorKind::JetStream(j)
                if j.error_code() == async_nats::jetstream::ErrorCode::STREAM_NOT_FOUND =>
            {
                Ok(None)
            }
            _ => Err(fail(format!("stream {}: {e}", names.stream(channel)))),
        },
    }
}

/// Every channel stream of this prefix: (channel, last sequence, first sequence).
pub async fn list(js: &Context, names: &Names) -> Result<Vec<(String, u64, u64)>, StorageError> {
    let mut out = Vec::new();
    let mut streams = js.streams();
    while let Some(info) = streams.next().await {
        let info = info.map_err(|e| fail(format!("listing streams: {e}")))?;
        if let Some(channel) = names.channel_of(&info.config.name, &info.config.subjects) {
            out.push((
                channel.to_string(),
                info.state.last_sequence,
                info.state.first_sequence,
            ));
        }
    }
    Ok(out)
}

/// The stored bytes at each offset of `from..=to` that is still retained, in order.
pub async fn read(stream: &Stream, from: u64, to: u64) -> Result<Vec<(u64, Bytes)>, StorageError> {
    let mut out = Vec::new();
    let mut start = from;
    while start <= to {
        let end = to.min(start + READ_CHUNK - 1);
        let got = join_all((start..=end).map(|seq| get(stream, seq))).await;
        for (seq, msg) in (start..=end).zip(got) {
            let found = match msg? {
                Some(bytes) => Some(bytes),
                None => not_yet_applied(stream, seq).await?,
            };
            if let Some(bytes) = found {
                out.push((seq, bytes));
            }
        }
        start = end + 1;
    }
    Ok(out)
}

/// An offset the reader's head covers but the stream leader did not find: the bytes
/// once the leader holds them, or `None` when retention removed the offset.
///
/// The head can be ahead of the leader's store. A follower server may apply a
/// committed message (and deliver it to this node's `follow` consumer, which moves the
/// head) before the leader has applied it (the leader applies committed entries from a
/// queue of its own). Skipping such an offset as a retention gap lost events for the
/// subscription that read it (seen in about one in two R3 benchmark runs at 400/s).
/// Retention only ever removes from the bottom, so an offset at or above the stream's
/// first sequence is one the leader will hold: wait for it.
async fn not_yet_applied(stream: &Stream, seq: u64) -> Result<Option<Bytes>, StorageError> {
    let started = Instant::now();
    let mut wait_ms = 1;
    loop {
        let info = stream
            .get_info()
            .await
            .map_err(|e| fail(format!("stream info while reading offset {seq}: {e}")))?;
        if seq < info.state.first_sequence {
            return Ok(None);
        }
        if let Some(bytes) = get(stream, seq).await? {
            return Ok(Some(bytes));
        }
        tracing::debug!(
            seq,
            wait_ms,
            "offset not yet held by the stream leader; waiting"
        );
        if started.elapsed() >= UNAPPLIED_WAIT {
            return Err(fail(format!(
                "offset {seq} was acknowledged, but the stream leader did not hold it within {UNAPPLIED_WAIT:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(wait_ms)).await;
        wait_ms = (wait_ms * 2).min(UNAPPLIED_RETRY_MAX_MS);
    }
}

/// The stored bytes at one offset, or `None` when it is not (or no longer) stored.
pub async fn get(stream: &Stream, seq: u64) -> Result<Option<Bytes>, StorageError> {
    if seq == 0 {
        return Ok(None);
    }
    match stream.get_raw_message(seq).await {
        Ok(m) => Ok(Some(m.payload)),
        Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
        Err(e) => Err(fail(format!("reading offset {seq}: {e}"))),
    }
}

/// The decoded record at one offset.
pub async fn record(stream: &Stream, seq: u64) -> Result<Option<Record>, StorageError> {
    match get(stream, seq).await? {
        Some(bytes) => Record::decode(&bytes)
            .map(Some)
            .map_err(|e| StorageError::Corrupt(format!("offset {seq}: {e}"))),
        None => Ok(None),
    }
}

/// Removes every message below `keep_from`; returns how many went.
pub async fn purge_below(stream: &Stream, keep_from: u64) -> Result<u64, StorageError> {
    stream
        .purge()
        .sequence(keep_from)
        .await
        .map(|r| r.purged)
        .map_err(|e| fail(format!("purging below {keep_from}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::jetstream::test_server::TestServer;

    /// Waits before storing offsets the reader already counts as acknowledged, so that
    /// the read finds them missing first (it takes a few ms on loopback).
    const LAG: Duration = Duration::from_millis(300);

    async fn publish(js: &Context, names: &Names, n: u64) {
        let ack = js
            .publish(names.subject("c"), n.to_string().into())
            .await
            .expect("publish");
        assert_eq!(ack.await.expect("ack").sequence, n);
    }

    /// A read whose head is ahead of the leader's store (a follower delivered first)
    /// waits for the missing offsets instead of skipping them; offsets that retention
    /// removed are still skipped.
    #[tokio::test]
    async fn a_read_waits_for_acknowledged_offsets_and_skips_removed_ones() {
        let server = TestServer::start();
        let client = async_nats::connect(&server.url).await.expect("connect");
        let js = async_nats::jetstream::new(client);
        let names = Names::new("t");
        let stream = ensure(&js, &names, "c", 1, DEFAULT_DUPLICATE_WINDOW)
            .await
            .expect("stream");
        for n in 1..=10 {
            publish(&js, &names, n).await;
        }
        let late = {
            let (js, names) = (js.clone(), names.clone());
            tokio::spawn(async move {
                tokio::time::sleep(LAG).await;
                publish(&js, &names, 11).await;
                publish(&js, &names, 12).await;
            })
        };
        let got = read(&stream, 1, 12).await.expect("read");
        let offsets: Vec<u64> = got.iter().map(|(o, _)| *o).collect();
        assert_eq!(offsets, (1..=12).collect::<Vec<_>>());
        assert_eq!(got[11].1, Bytes::from("12"));
        late.await.expect("publisher");

        assert_eq!(purge_below(&stream, 5).await.expect("purge"), 4);
        let got = read(&stream, 1, 12).await.expect("read");
        let offsets: Vec<u64> = got.iter().map(|(o, _)| *o).collect();
        assert_eq!(offsets, (5..=12).collect::<Vec<_>>());
    }
}
