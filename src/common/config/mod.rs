//! Loading and validating `config.toml`.
//!
//! The file is parsed into `Raw*` structs that keep the source span of every value, then
//! validated into [`Config`]. Keeping spans is what lets a refusal name the file, the
//! line and the key (`config.toml:14: channel[1].scheme: unknown scheme`); the
//! machinery for that is in `source.rs`, shared with `agent.toml`.
//! Secrets given as `env:NAME` are read here, once; a missing variable is an error
//! rather than an empty secret that would let anything through.
//!
//! Layout: `server.rs` (`[server]`), `channel.rs` (`[[channel]]`), `tokens.rs`
//! ([`TokenSet`]), `defaults.rs` (defaults and bounds), `raw.rs` (the file as written),
//! `permissions.rs` (the warning for readable files with secrets), `storage.rs`
//! (`[storage]`: which backend keeps the log).

mod channel;
mod defaults;
mod handshake;
mod permissions;
pub mod public_url;
mod raw;
mod server;
pub(crate) mod source;
mod storage;
mod tokens;

use std::collections::HashMap;
use std::path::Path;

use toml::Spanned;

pub use channel::{valid_channel_name, ChannelConfig, RateLimit, Retention};
pub use defaults::*;
pub use handshake::{Handshakes, VerifyToken};
pub use server::{ServerConfig, TlsConfig};
pub use source::{FileError, MAX_CONFIG_FILE_BYTES};
pub use storage::{
    valid_stream_prefix, JetStreamConfig, NatsAuth, StorageConfig, DEFAULT_REPLICAS,
    DEFAULT_STREAM_PREFIX, MAX_REPLICAS,
};
pub use tokens::TokenSet;

use raw::{RawChannel, RawConfig};
use source::Source;

/// The error of [`Config::load`] and [`Config::parse`].
pub type ConfigError = FileError;

/// A configuration the relay can run with.
#[derive(Debug, Clone)]
pub struct Config {
    /// The `[server]` table: listen address, data directory, limits, TLS.
    pub server: ServerConfig,
    /// The `[[channel]]` entries, in file order; names are unique. Not to be changed
    /// after load: [`Config::channel`] finds them through an index built with them.
    pub channels: Vec<ChannelConfig>,
    /// The `[storage]` table: the embedded log unless it names another backend.
    pub storage: StorageConfig,
    /// Each channel's place in `channels`, by name, built with it at load (nothing
    /// changes `channels` after that). Ingest looks its channel up on every request,
    /// and a config may hold [`MAX_CHANNELS`]: a scan of the list cost every request,
    /// and every request to an unknown name, up to that many comparisons.
    by_name: HashMap<String, usize>,
}

impl Config {
    /// Reads and validates a config file (at most [`MAX_CONFIG_FILE_BYTES`]), warning
    /// when it holds secrets and others can read it.
    pub fn load(path: &Path) -> Result<Config, FileError> {
        let file = source::read_file(path)?;
        let name = path.display().to_string();
        let (config, literal_secret) = validate(&Source {
            text: &file.text,
            file: &name,
            env: &|name| std::env::var(name).ok(),
        })?;
        if let Some(key) = literal_secret {
            permissions::warn_if_readable_by_others(&name, file.mode, &key);
        }
        Ok(config)
    }

    /// Validates config text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Config, FileError> {
        validate(&Source {
            text,
            file,
            env: &|name| std::env::var(name).ok(),
        })
        .map(|(config, _)| config)
    }

    /// The built-in development configuration used when no file exists: one `demo`
    /// channel with a GitHub-style signature, on 127.0.0.1 only.
    pub fn development() -> Config {
        Self::parse(DEVELOPMENT_CONFIG, "<built-in development defaults>")
            .unwrap_or_else(|_| unreachable!("the built-in config is valid (tested)"))
    }

    /// The channel called `name`, if one is configured.
    pub fn channel(&self, name: &str) -> Option<&ChannelConfig> {
        let found = self.channels.get(*self.by_name.get(name)?)?;
        (found.name == name).then_some(found)
    }
}

/// The configuration `serve` uses when there is no `config.toml`.
pub const DEVELOPMENT_CONFIG: &str = r#"
[server]
listen = "127.0.0.1:8080"
data_dir = "./data"

[[channel]]
name = "demo"
scheme = "github"
secrets = ["dev-secret"]
tokens = ["dev-token"]
"#;

/// The config, and the key of the first secret written in the text itself (if any).
fn validate(src: &Source) -> Result<(Config, Option<String>), FileError> {
    let raw: RawConfig = toml::from_str(src.text).map_err(|e| src.toml_error(&e))?;
    let literal_secret = raw.first_literal_secret();
    let server = server::server(src, raw.server)?;
    let (channels, by_name) = channels(src, &raw.channels, server.public_url.as_deref())?;
    let storage = storage::storage(src, raw.storage.as_ref())?;
    Ok((
        Config {
            server,
            channels,
            storage,
            by_name,
        },
        literal_secret,
    ))
}

/// Every `[[channel]]`: at most [`MAX_CHANNELS`] of them, with distinct names; and each
/// one's place in the list, by name.
fn channels(
    src: &Source,
    raw: &[Spanned<RawChannel>],
    public_base: Option<&str>,
) -> Result<(Vec<ChannelConfig>, HashMap<String, usize>), FileError> {
    if let Some(extra) = raw.get(MAX_CHANNELS) {
        return Err(src.err(
            extra.span(),
            &format!("channel[{MAX_CHANNELS}]"),
            format!(
                "too many channels ({}): a config may have at most {MAX_CHANNELS}",
                raw.len()
            ),
        ));
    }
    // A map: comparing each name with every earlier one is quadratic in the count.
    let mut names = HashMap::with_capacity(raw.len());
    let mut channels = Vec::with_capacity(raw.len());
    for (i, ch) in raw.iter().enumerate() {
        let channel = channel::channel(src, i, ch.get_ref(), ch.span(), public_base)?;
        if names.insert(channel.name.clone(), i).is_some() {
            // At the second definition: the first one is where the name belongs.
            return Err(src.err(
                ch.span(),
                &format!("channel[{i}].name"),
                format!("channel {:?} is defined twice", channel.name),
            ));
        }
        channels.push(channel);
    }
    Ok((channels, names))
}

#[cfg(test)]
mod secret_tests;
#[cfg(test)]
mod tests;
