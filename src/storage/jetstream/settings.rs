//! Per-channel settings (`{prefix}_settings`, key `{channel}.{name}`): values the
//! relay learns at run time, such as Asana's `X-Hook-Secret`.

use async_nats::jetstream::kv::{CreateErrorKind, Store};

use super::connect::fail;
use super::kv;
use super::names::token;
use crate::storage::error::StorageError;

/// The settings bucket.
pub struct Settings {
    store: Store,
}

fn key(channel: &str, name: &str) -> String {
    format!("{}.{}", token(channel), token(name))
}

impl Settings {
    /// Wraps the opened bucket.
    pub fn new(store: Store) -> Settings {
        Settings { store }
    }

    /// The stored value, if any.
    pub async fn get(&self, channel: &str, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let bytes = kv::get(&self.store, &key(channel, name)).await?;
        Ok(bytes.map(|b| b.to_vec()))
    }

    /// Writes `value` (only while absent unless `replace`); returns once the bucket
    /// acknowledged it, and whether it was written. `create` is the server's own
    /// compare-and-set, so two racing relays cannot both win.
    pub async fn put(
        &self,
        channel: &str,
        name: &str,
        value: Vec<u8>,
        replace: bool,
    ) -> Result<bool, StorageError> {
        let k = key(channel, name);
        if replace {
            return kv::put(&self.store, &k, value).await.map(|()| true);
        }
        match self.store.create(&k, value.into()).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == CreateErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(fail(format!("writing {k} to {}: {e}", self.store.name))),
        }
    }
}
