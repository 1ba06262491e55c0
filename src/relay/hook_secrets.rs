//! Signing secrets the relay learned from a provider's handshake (Asana's
//! `X-Hook-Secret`): kept in storage (so they survive a restart) and in memory (so a
//! signature check never waits on storage).

use std::collections::HashMap;
use std::sync::RwLock;

use crate::common::config::ChannelConfig;
use crate::common::verify::Secret;
use crate::storage::{Storage, StorageError};

/// The storage setting name of Asana's hook secret.
pub const ASANA_HOOK_SECRET: &str = "asana.x-hook-secret";

/// Learned secrets by channel name.
#[derive(Default)]
pub struct HookSecrets {
    by_channel: RwLock<HashMap<String, Secret>>,
}

impl HookSecrets {
    /// Loads the stored secret of every channel that learns one.
    pub async fn load(
        &self,
        log: &dyn Storage,
        channels: &[ChannelConfig],
    ) -> Result<(), StorageError> {
        for c in channels.iter().filter(|c| c.handshakes.learns_secret()) {
            if let Some(bytes) = log.channel_setting(&c.name, ASANA_HOOK_SECRET).await? {
                match Secret::from_key(&bytes) {
                    Ok(s) => self.set(&c.name, s),
                    Err(_) => {
                        tracing::warn!(channel = %c.name, "the stored hook secret is empty; ignoring it")
                    }
                }
            }
        }
        Ok(())
    }

    /// The channel's learned secret, if any.
    pub fn get(&self, channel: &str) -> Option<Secret> {
        let map = self.by_channel.read().unwrap_or_else(|p| p.into_inner());
        map.get(channel).cloned()
    }

    /// Records a secret that is already durable in storage.
    pub fn set(&self, channel: &str, secret: Secret) {
        let mut map = self.by_channel.write().unwrap_or_else(|p| p.into_inner());
        map.insert(channel.to_string(), secret);
    }
}
