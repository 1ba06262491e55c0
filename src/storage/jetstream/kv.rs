//! Opening the key-value buckets, and the small helpers every bucket user shares.

use async_nats::jetstream::kv::{Config, Store};
use async_nats::jetstream::Context;
use futures_util::StreamExt;

use super::connect::fail;
use crate::storage::error::StorageError;

/// Creates the bucket `name` with `replicas` copies, or updates it to that.
pub async fn bucket(js: &Context, name: &str, replicas: usize) -> Result<Store, StorageError> {
    let config = Config {
        bucket: name.to_string(),
        history: 1,
        num_replicas: replicas,
        storage: async_nats::jetstream::stream::StorageType::File,
        ..Default::default()
    };
    js.create_or_update_key_value(config).await.map_err(|e| {
        fail(format!(
            "cannot create key-value bucket {name} with {replicas} replica(s): {e}"
        ))
    })
}

/// The keys of `kv` under `prefix` (`a.b.` lists `a.b.>`), present or deleted: the
/// caller reads each and skips the deleted ones.
pub async fn keys_under(kv: &Store, prefix: &str) -> Result<Vec<String>, StorageError> {
    let filter = format!("{}{prefix}>", kv.prefix);
    let mut subjects = kv
        .stream
        .info_builder()
        .subjects(filter)
        .fetch()
        .await
        .map_err(|e| fail(format!("listing {}: {e}", kv.name)))?;
    let mut keys = Vec::new();
    while let Some(s) = subjects.next().await {
        let (subject, _) = s.map_err(|e| fail(format!("listing {}: {e}", kv.name)))?;
        if let Some(key) = subject.strip_prefix(kv.prefix.as_str()) {
            keys.push(key.to_string());
        }
    }
    keys.sort();
    Ok(keys)
}

/// The value of `key`, `None` when absent or deleted.
pub async fn get(kv: &Store, key: &str) -> Result<Option<bytes::Bytes>, StorageError> {
    kv.get(key)
        .await
        .map_err(|e| fail(format!("reading {key} from {}: {e}", kv.name)))
}

/// Writes `value` at `key`; returns once the bucket acknowledged it.
pub async fn put(kv: &Store, key: &str, value: Vec<u8>) -> Result<(), StorageError> {
    kv.put(key, value.into())
        .await
        .map(|_| ())
        .map_err(|e| fail(format!("writing {key} to {}: {e}", kv.name)))
}

/// Deletes `key`; returns once the bucket acknowledged it.
pub async fn delete(kv: &Store, key: &str) -> Result<(), StorageError> {
    kv.delete(key)
        .await
        .map_err(|e| fail(format!("deleting {key} from {}: {e}", kv.name)))
}

/// bincode, as the embedded backend stores small values.
pub fn encode<T: bincode::Encode>(value: &T) -> Vec<u8> {
    bincode::encode_to_vec(value, bincode::config::standard()).unwrap_or_default()
}

/// The value `bytes` holds, `None` when it does not decode.
pub fn decode<T: bincode::Decode<()>>(bytes: &[u8]) -> Option<T> {
    bincode::decode_from_slice(bytes, bincode::config::standard())
        .ok()
        .map(|(v, _)| v)
}
