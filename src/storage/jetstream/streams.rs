//! The per-channel streams: creating them, finding them at open, reading and purging.

use async_nats::jetstream::stream::{Config, LastRawMessageErrorKind, StorageType, Stream};
use async_nats::jetstream::Context;
use bytes::Bytes;
use futures_util::future::join_all;
use futures_util::StreamExt;
use std::time::Duration;

use super::connect::fail;
use super::names::Names;
use crate::common::event::Record;
use crate::storage::error::StorageError;

/// Messages fetched at once by a read (one request each, sent together).
const READ_CHUNK: u64 = 64;

/// JetStream's own `Nats-Msg-Id` window: it only has to cover two nodes taking the
/// same delivery id at once (the `_dedup` bucket covers the relay's whole window; see
/// `dedup`), and the server keeps every id of the window in memory.
pub const DUPLICATE_WINDOW_SECS: u64 = 10;

/// Creates the channel's stream, or updates it to this config when it exists.
pub async fn ensure(
    js: &Context,
    names: &Names,
    channel: &str,
    replicas: usize,
) -> Result<Stream, StorageError> {
    let config = Config {
        name: names.stream(channel),
        subjects: vec![names.subject(channel)],
        storage: StorageType::File,
        num_replicas: replicas,
        duplicate_window: Duration::from_secs(DUPLICATE_WINDOW_SECS),
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
            if let Some(bytes) = msg? {
                out.push((seq, bytes));
            }
        }
        start = end + 1;
    }
    Ok(out)
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
