//! Per-channel settings the relay learns at run time (Asana's `X-Hook-Secret`), in
//! their own tree so that no event, cursor or dedup scan ever meets them.
//!
//! Writes are rare (a provider's handshake), so each one is flushed and `fdatasync`ed
//! on its own before it returns: the handshake is answered only once its secret
//! survives a crash or a power cut (sled's flush alone leaves it in the page cache, see
//! [`super::fsync`]).

use std::sync::Arc;

use super::fsync::LogFile;
use super::read::failed;
use crate::storage::error::StorageError;

/// The tree's name in the sled database.
pub(super) const TREE: &str = "settings";

/// The settings tree.
#[derive(Clone)]
pub(super) struct Settings {
    tree: ::sled::Tree,
    log_file: Arc<LogFile>,
}

/// `{channel}\0{name}`: channel names never hold a NUL byte.
fn key(channel: &str, name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(channel.len() + 1 + name.len());
    k.extend_from_slice(channel.as_bytes());
    k.push(0);
    k.extend_from_slice(name.as_bytes());
    k
}

impl Settings {
    /// Wraps the opened tree.
    pub(super) fn new(tree: ::sled::Tree, log_file: Arc<LogFile>) -> Settings {
        Settings { tree, log_file }
    }

    /// The stored value, if any.
    pub(super) fn get(&self, channel: &str, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let value = self.tree.get(key(channel, name)).map_err(failed)?;
        Ok(value.map(|v| v.to_vec()))
    }

    /// Every channel that has a setting, in order, for `hookrelay migrate`.
    pub(super) fn channels(&self) -> Result<Vec<String>, StorageError> {
        let mut out: Vec<String> = Vec::new();
        for item in self.tree.iter() {
            let (k, _) = item.map_err(failed)?;
            let channel = k.split(|&b| b == 0).next().unwrap_or_default();
            let channel = String::from_utf8_lossy(channel).into_owned();
            if out.last() != Some(&channel) {
                out.push(channel);
            }
        }
        Ok(out)
    }

    /// Every setting of `channel`: (name, value), for `hookrelay migrate`.
    pub(super) fn of_channel(&self, channel: &str) -> Result<Vec<(String, Vec<u8>)>, StorageError> {
        let prefix = key(channel, "");
        self.tree
            .scan_prefix(&prefix)
            .map(|item| {
                let (k, v) = item.map_err(failed)?;
                let name = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
                Ok((name, v.to_vec()))
            })
            .collect()
    }

    /// Writes `value` (only while absent unless `replace`), then flushes.
    pub(super) fn put(
        &self,
        channel: &str,
        name: &str,
        value: &[u8],
        replace: bool,
    ) -> Result<bool, StorageError> {
        let k = key(channel, name);
        let written = if replace {
            self.tree.insert(k, value).map_err(failed)?;
            true
        } else {
            let swap = self
                .tree
                .compare_and_swap(k, None::<&[u8]>, Some(value))
                .map_err(failed)?;
            swap.is_ok()
        };
        if written {
            self.tree.flush().map_err(failed)?;
            self.log_file
                .sync()
                .map_err(|e| StorageError::Failed(format!("fdatasync of the log file: {e}")))?;
        }
        Ok(written)
    }
}
