//! Loading and validating `config.toml`.
//!
//! The file is parsed into `Raw*` structs that keep the source span of every value, then
//! validated into [`Config`]. Keeping spans is what lets a refusal name the file, the
//! line and the key ("config.toml:14: channel[1].scheme: unknown scheme"), which is the
//! difference between a config error a person fixes in seconds and one they hunt for.
//! Secrets given as `env:NAME` are read here, once; a missing variable is an error
//! rather than an empty secret that would let anything through.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use toml::Spanned;

use crate::common::verify::{Encoding, HmacParams, SchemeKind, Secret, Verifier};

/// Default listen address of `serve`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default data directory of `serve`.
pub const DEFAULT_DATA_DIR: &str = "./data";
/// Default body limit in bytes (1 MiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// Default timestamp tolerance in seconds for schemes that sign a timestamp.
pub const DEFAULT_TOLERANCE_SECS: u64 = 300;
/// Default dedup window in seconds (24 h).
pub const DEFAULT_DEDUP_WINDOW_SECS: u64 = 86_400;
/// Default seconds between the relay's heartbeats on an agent stream.
pub const DEFAULT_STREAM_HEARTBEAT_SECS: u64 = crate::common::protocol::HEARTBEAT_INTERVAL_SECS;
/// Default seconds of silence after which the relay drops an agent stream.
pub const DEFAULT_STREAM_IDLE_TIMEOUT_SECS: u64 = crate::common::protocol::IDLE_TIMEOUT_SECS;
/// Upper bound for the stream timers (one day): longer makes no sense for a heartbeat,
/// and keeps every deadline computed from them far from overflowing.
pub const MAX_STREAM_TIMER_SECS: u64 = 86_400;
/// Defaults of the connection limits of `[server]` (see `relay::listen`).
pub const DEFAULT_FIRST_BYTE_TIMEOUT_SECS: u64 = 10;
pub const DEFAULT_BODY_TIMEOUT_SECS: u64 = 60;
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 60;
pub const DEFAULT_MAX_CONNECTIONS: u64 = 10_000;
pub const DEFAULT_MAX_INFLIGHT_BODY_BYTES: u64 = 256 * 1024 * 1024;

/// A configuration the relay can run with.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub channels: Vec<ChannelConfig>,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub max_body_bytes: usize,
    pub admin_token: Option<TokenSet>,
    pub tls: Option<TlsConfig>,
    /// Seconds between the relay's `Ping`s on an agent stream (announced to the agent in
    /// `Welcome.heartbeat_secs`, which paces the agent's own pings and idle timeout).
    pub stream_heartbeat_secs: u64,
    /// Seconds without any frame after which the relay drops an agent stream with
    /// `idle_timeout`; always more than `stream_heartbeat_secs`.
    pub stream_idle_timeout_secs: u64,
    /// Connection limits (`relay::listen`): timeouts in seconds, open HTTP connections.
    pub first_byte_timeout_secs: u64,
    pub body_timeout_secs: u64,
    pub idle_timeout_secs: u64,
    pub max_connections: u64,
    /// Request body bytes buffered at once across all requests.
    pub max_inflight_body_bytes: u64,
}

#[derive(Debug, Clone)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

/// One webhook channel: where a provider posts and what an agent subscribes to.
#[derive(Debug, Clone)]
pub struct ChannelConfig {
    pub name: String,
    pub verifier: Verifier,
    /// Header that carries the delivery id where the scheme defines none.
    pub id_header: Option<http::HeaderName>,
    pub dedup_window: Duration,
    pub retention: Retention,
    pub allow_ips: Vec<IpNet>,
    pub rate_limit: Option<RateLimit>,
    pub tokens: TokenSet,
}

/// How much of a channel's history to keep; `None` keeps everything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    pub max_age_secs: Option<u64>,
    pub max_events: Option<u64>,
    pub max_bytes: Option<u64>,
}

/// Token bucket parameters for a channel's ingest.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: f64,
}

/// Bearer tokens, kept only as SHA-256 digests so that neither memory dumps nor
/// `Debug` output hold the plaintext.
#[derive(Clone, Default)]
pub struct TokenSet(Vec<[u8; 32]>);

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenSet({} tokens, redacted)", self.0.len())
    }
}

impl TokenSet {
    /// Whether `presented` is one of the tokens, in constant time per stored token.
    pub fn matches(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = subtle::Choice::from(0);
        for stored in &self.0 {
            found |= stored.ct_eq(&digest);
        }
        bool::from(found)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A set holding one plaintext token (tests and defaults).
    pub fn from_plain(token: &str) -> TokenSet {
        TokenSet(vec![Sha256::digest(token.as_bytes()).into()])
    }
}

/// A configuration file that cannot be used, located as precisely as possible.
#[derive(Debug, thiserror::Error)]
#[error("{file}{}: {key}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ConfigError {
    pub file: String,
    pub line: Option<usize>,
    pub key: String,
    pub message: String,
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.display().to_string(),
            line: None,
            key: "-".into(),
            message: format!("cannot read the file: {e}"),
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Validates config text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        Parser {
            text,
            file,
            env: &|name| std::env::var(name).ok(),
        }
        .parse()
    }

    /// The built-in development configuration used when no file exists: one `demo`
    /// channel with a GitHub-style signature, on 127.0.0.1 only.
    pub fn development() -> Config {
        Self::parse(DEVELOPMENT_CONFIG, "<built-in development defaults>")
            .unwrap_or_else(|_| unreachable!("the built-in config is valid (tested)"))
    }

    pub fn channel(&self, name: &str) -> Option<&ChannelConfig> {
        self.channels.iter().find(|c| c.name == name)
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: Option<Spanned<RawServer>>,
    #[serde(default, rename = "channel")]
    channels: Vec<Spanned<RawChannel>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<Spanned<String>>,
    data_dir: Option<Spanned<String>>,
    max_body_bytes: Option<Spanned<i64>>,
    admin_token: Option<Spanned<String>>,
    tls: Option<Spanned<RawTls>>,
    stream_heartbeat_secs: Option<Spanned<i64>>,
    stream_idle_timeout_secs: Option<Spanned<i64>>,
    first_byte_timeout_secs: Option<Spanned<i64>>,
    body_timeout_secs: Option<Spanned<i64>>,
    idle_timeout_secs: Option<Spanned<i64>>,
    max_connections: Option<Spanned<i64>>,
    max_inflight_body_bytes: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: Spanned<String>,
    key: Spanned<String>,
    client_ca: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChannel {
    name: Option<Spanned<String>>,
    scheme: Option<Spanned<String>>,
    #[serde(default)]
    secrets: Vec<Spanned<String>>,
    tolerance_secs: Option<Spanned<i64>>,
    #[serde(default)]
    tokens: Vec<Spanned<String>>,
    header: Option<Spanned<String>>,
    prefix: Option<Spanned<String>>,
    encoding: Option<Spanned<String>>,
    id_header: Option<Spanned<String>>,
    dedup_window_secs: Option<Spanned<i64>>,
    retention: Option<Spanned<RawRetention>>,
    #[serde(default)]
    allow_ips: Vec<Spanned<String>>,
    rate_limit: Option<Spanned<RawRateLimit>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetention {
    max_age_secs: Option<Spanned<i64>>,
    max_events: Option<Spanned<i64>>,
    max_bytes: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRateLimit {
    per_second: Spanned<f64>,
    burst: Option<Spanned<f64>>,
}

struct Parser<'a> {
    text: &'a str,
    file: &'a str,
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl Parser<'_> {
    fn line_of(&self, offset: usize) -> usize {
        line_at(self.text, offset)
    }

    /// The dotted key path (`server.listen`, `channel[1].secrets`) of the assignment or
    /// table header at byte `offset`, found from the text itself: the toml error keeps
    /// its key path private, and "line 7" alone is not enough for a person to act on.
    fn key_at(&self, offset: usize) -> String {
        let end = self
            .text
            .get(..offset)
            .map_or(0, |s| s.matches('\n').count());
        let mut table = String::new();
        let mut channel_index = 0usize;
        let mut key = None;
        for line in self.text.lines().take(end + 1) {
            let line = line.trim();
            if let Some(name) = line.strip_prefix("[[").and_then(|l| l.split("]]").next()) {
                let name = name.trim();
                let n = if name == "channel" {
                    channel_index += 1;
                    channel_index - 1
                } else {
                    0
                };
                table = format!("{name}[{n}]");
                key = None;
            } else if let Some(name) = line.strip_prefix('[').and_then(|l| l.split(']').next()) {
                table = name.trim().to_string();
                key = None;
            } else if !line.starts_with('#') {
                if let Some((k, _)) = line.split_once('=') {
                    key = Some(k.trim().trim_matches('"').to_string());
                }
            }
        }
        match key {
            None if table.is_empty() => "-".into(),
            None => table,
            Some(k) if table.is_empty() => k,
            Some(k) => format!("{table}.{k}"),
        }
    }

    fn err(
        &self,
        span: std::ops::Range<usize>,
        key: &str,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError {
            file: self.file.to_string(),
            line: Some(self.line_of(span.start)),
            key: key.to_string(),
            message: message.into(),
        }
    }

    fn parse(&self) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(self.text).map_err(|e| {
            let span = e.span();
            ConfigError {
                file: self.file.to_string(),
                line: span.as_ref().map(|s| self.line_of(s.start)),
                key: span
                    .map(|s| self.key_at(s.start))
                    .unwrap_or_else(|| "-".into()),
                message: redact_values(e.message().trim()),
            }
        })?;
        let server = self.server(raw.server)?;
        let mut channels: Vec<ChannelConfig> = Vec::new();
        for (i, ch) in raw.channels.into_iter().enumerate() {
            let span = ch.span();
            let ch = self.channel(i, ch.into_inner(), span)?;
            if channels.iter().any(|c| c.name == ch.name) {
                return Err(self.err(
                    0..0,
                    &format!("channel[{i}].name"),
                    format!("channel {:?} is defined twice", ch.name),
                ));
            }
            channels.push(ch);
        }
        Ok(Config { server, channels })
    }

    /// Resolves `env:NAME` references; other strings are literal.
    fn resolve(&self, value: &Spanned<String>, key: &str) -> Result<String, ConfigError> {
        match value.get_ref().strip_prefix("env:") {
            Some(name) => (self.env)(name).filter(|v| !v.is_empty()).ok_or_else(|| {
                self.err(
                    value.span(),
                    key,
                    format!("environment variable {name} is not set (or empty)"),
                )
            }),
            None => Ok(value.get_ref().clone()),
        }
    }

    fn tokens(&self, values: &[Spanned<String>], key: &str) -> Result<TokenSet, ConfigError> {
        let mut set = Vec::new();
        for (i, v) in values.iter().enumerate() {
            let key = format!("{key}[{i}]");
            let plain = self.resolve(v, &key)?;
            if let Some(hash) = plain.strip_prefix("sha256:") {
                let bytes = hex::decode(hash)
                    .ok()
                    .filter(|b| b.len() == 32)
                    .ok_or_else(|| {
                        self.err(v.span(), &key, "sha256: must be followed by 64 hex digits")
                    })?;
                let mut digest = [0u8; 32];
                digest.copy_from_slice(&bytes);
                set.push(digest);
            } else if plain.is_empty() {
                return Err(self.err(v.span(), &key, "a token cannot be empty"));
            } else {
                set.push(Sha256::digest(plain.as_bytes()).into());
            }
        }
        Ok(TokenSet(set))
    }

    fn positive(&self, v: &Spanned<i64>, key: &str) -> Result<u64, ConfigError> {
        match u64::try_from(*v.get_ref()) {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(self.err(v.span(), key, "must be a positive integer")),
        }
    }

    fn server(&self, raw: Option<Spanned<RawServer>>) -> Result<ServerConfig, ConfigError> {
        let raw = raw.map(Spanned::into_inner);
        let listen = match raw.as_ref().and_then(|r| r.listen.as_ref()) {
            Some(l) => l.get_ref().parse().map_err(|_| {
                self.err(
                    l.span(),
                    "server.listen",
                    "expected an address like 127.0.0.1:8080",
                )
            })?,
            None => DEFAULT_LISTEN
                .parse()
                .unwrap_or_else(|_| unreachable!("constant address parses")),
        };
        let data_dir = raw
            .as_ref()
            .and_then(|r| r.data_dir.as_ref())
            .map(|d| PathBuf::from(d.get_ref()))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let max_body_bytes = match raw.as_ref().and_then(|r| r.max_body_bytes.as_ref()) {
            Some(v) => self.positive(v, "server.max_body_bytes")? as usize,
            None => DEFAULT_MAX_BODY_BYTES,
        };
        let admin_token = match raw.as_ref().and_then(|r| r.admin_token.as_ref()) {
            Some(t) => Some(self.tokens(std::slice::from_ref(t), "server.admin_token")?),
            None => None,
        };
        let (stream_heartbeat_secs, stream_idle_timeout_secs) = self.stream_timers(raw.as_ref())?;
        let [first_byte, body, idle, connections, inflight] = self.conn_limits(raw.as_ref())?;
        let tls = raw.and_then(|r| r.tls).map(|t| {
            let t = t.into_inner();
            TlsConfig {
                cert: PathBuf::from(t.cert.into_inner()),
                key: PathBuf::from(t.key.into_inner()),
                client_ca: t.client_ca.map(|c| PathBuf::from(c.into_inner())),
            }
        });
        Ok(ServerConfig {
            listen,
            data_dir,
            max_body_bytes,
            admin_token,
            tls,
            stream_heartbeat_secs,
            stream_idle_timeout_secs,
            first_byte_timeout_secs: first_byte,
            body_timeout_secs: body,
            idle_timeout_secs: idle,
            max_connections: connections,
            max_inflight_body_bytes: inflight,
        })
    }

    /// The connection limits of `[server]`, in the order of the fields of [`ServerConfig`]:
    /// first byte, body and idle timeouts, max connections, max in-flight body bytes.
    fn conn_limits(&self, raw: Option<&RawServer>) -> Result<[u64; 5], ConfigError> {
        // Timeouts stay at most a day, like the stream timers, so deadlines never overflow.
        macro_rules! limit {
            ($key:ident, $default:expr, $max:expr) => {
                match raw.and_then(|r| r.$key.as_ref()) {
                    Some(v) if self.positive(v, concat!("server.", stringify!($key)))? > $max => {
                        let msg = format!("must be at most {}", $max);
                        return Err(self.err(v.span(), concat!("server.", stringify!($key)), msg));
                    }
                    Some(v) => self.positive(v, concat!("server.", stringify!($key)))?,
                    None => $default,
                }
            };
        }
        const DAY: u64 = MAX_STREAM_TIMER_SECS;
        Ok([
            limit!(
                first_byte_timeout_secs,
                DEFAULT_FIRST_BYTE_TIMEOUT_SECS,
                DAY
            ),
            limit!(body_timeout_secs, DEFAULT_BODY_TIMEOUT_SECS, DAY),
            limit!(idle_timeout_secs, DEFAULT_IDLE_TIMEOUT_SECS, DAY),
            limit!(
                max_connections,
                DEFAULT_MAX_CONNECTIONS,
                u64::from(u32::MAX)
            ),
            limit!(
                max_inflight_body_bytes,
                DEFAULT_MAX_INFLIGHT_BODY_BYTES,
                u64::MAX
            ),
        ])
    }

    /// `server.stream_heartbeat_secs` and `server.stream_idle_timeout_secs`: positive, at
    /// most [`MAX_STREAM_TIMER_SECS`], and the timeout longer than the heartbeat — else a
    /// healthy but quiet agent would be dropped between two heartbeats.
    fn stream_timers(&self, raw: Option<&RawServer>) -> Result<(u64, u64), ConfigError> {
        let bounded = |v: &Spanned<i64>, key: &str| -> Result<u64, ConfigError> {
            let n = self.positive(v, key)?;
            if n > MAX_STREAM_TIMER_SECS {
                return Err(self.err(
                    v.span(),
                    key,
                    format!("must be at most {MAX_STREAM_TIMER_SECS} (one day)"),
                ));
            }
            Ok(n)
        };
        let heartbeat = raw.and_then(|r| r.stream_heartbeat_secs.as_ref());
        let idle = raw.and_then(|r| r.stream_idle_timeout_secs.as_ref());
        let heartbeat_secs = match heartbeat {
            Some(v) => bounded(v, "server.stream_heartbeat_secs")?,
            None => DEFAULT_STREAM_HEARTBEAT_SECS,
        };
        let idle_secs = match idle {
            Some(v) => bounded(v, "server.stream_idle_timeout_secs")?,
            None => DEFAULT_STREAM_IDLE_TIMEOUT_SECS,
        };
        if idle_secs <= heartbeat_secs {
            // Point at the key that was written; with both written, at the timeout.
            let (span, key) = match (idle, heartbeat) {
                (Some(v), _) => (v.span(), "server.stream_idle_timeout_secs"),
                (None, Some(v)) => (v.span(), "server.stream_heartbeat_secs"),
                (None, None) => (0..0, "server.stream_idle_timeout_secs"),
            };
            return Err(self.err(
                span,
                key,
                format!(
                    "stream_idle_timeout_secs ({idle_secs}) must be greater than \
                     stream_heartbeat_secs ({heartbeat_secs})"
                ),
            ));
        }
        Ok((heartbeat_secs, idle_secs))
    }

    fn channel(
        &self,
        i: usize,
        raw: RawChannel,
        span: std::ops::Range<usize>,
    ) -> Result<ChannelConfig, ConfigError> {
        let key = |k: &str| format!("channel[{i}].{k}");
        let name = raw.name.as_ref().ok_or_else(|| {
            self.err(
                span.clone(),
                &key("name"),
                "missing (every channel needs a name)",
            )
        })?;
        if !valid_channel_name(name.get_ref()) {
            return Err(self.err(name.span(), &key("name"), "must match [A-Za-z0-9_-]{1,64}"));
        }
        let scheme = raw.scheme.as_ref().ok_or_else(|| {
            self.err(
                span.clone(),
                &key("scheme"),
                "missing: one of github, stripe, slack, standard, hmac, none",
            )
        })?;
        let kind = SchemeKind::parse(scheme.get_ref()).ok_or_else(|| {
            self.err(
                scheme.span(),
                &key("scheme"),
                format!(
                    "unknown scheme {:?}: expected github, stripe, slack, standard, hmac or none",
                    scheme.get_ref()
                ),
            )
        })?;

        let mut secrets = Vec::new();
        for (j, s) in raw.secrets.iter().enumerate() {
            let k = key(&format!("secrets[{j}]"));
            let plain = self.resolve(s, &k)?;
            let secret = Secret::for_scheme(kind, &plain)
                .map_err(|e| self.err(s.span(), &k, e.to_string()))?;
            secrets.push(secret);
        }
        if kind == SchemeKind::None && !secrets.is_empty() {
            return Err(self.err(
                scheme.span(),
                &key("secrets"),
                "scheme \"none\" checks no signature; remove secrets or pick a scheme",
            ));
        }
        if kind != SchemeKind::None && secrets.is_empty() {
            return Err(self.err(
                span.clone(),
                &key("secrets"),
                format!("scheme {:?} needs at least one secret", kind.as_str()),
            ));
        }

        let hmac = if kind == SchemeKind::Hmac {
            let header = raw.header.as_ref().ok_or_else(|| {
                self.err(
                    span.clone(),
                    &key("header"),
                    "scheme \"hmac\" needs the signature header name",
                )
            })?;
            let header_name =
                http::HeaderName::from_bytes(header.get_ref().as_bytes()).map_err(|_| {
                    self.err(
                        header.span(),
                        &key("header"),
                        "not a valid HTTP header name",
                    )
                })?;
            let encoding = match raw
                .encoding
                .as_ref()
                .map(|e| (e.get_ref().as_str(), e.span()))
            {
                None | Some(("hex", _)) => Encoding::Hex,
                Some(("base64", _)) => Encoding::Base64,
                Some((_, s)) => {
                    return Err(self.err(s, &key("encoding"), "expected \"hex\" or \"base64\""))
                }
            };
            Some(HmacParams {
                header: header_name,
                prefix: raw
                    .prefix
                    .as_ref()
                    .map(|p| p.get_ref().clone())
                    .unwrap_or_default(),
                encoding,
            })
        } else {
            for (field, value) in [
                ("header", &raw.header),
                ("prefix", &raw.prefix),
                ("encoding", &raw.encoding),
            ] {
                if let Some(v) = value {
                    return Err(self.err(
                        v.span(),
                        &key(field),
                        "only used with scheme = \"hmac\"",
                    ));
                }
            }
            None
        };

        let tolerance_secs = match &raw.tolerance_secs {
            Some(t) => self.positive(t, &key("tolerance_secs"))?,
            None => DEFAULT_TOLERANCE_SECS,
        };
        let id_header = match &raw.id_header {
            Some(h) => Some(
                http::HeaderName::from_bytes(h.get_ref().as_bytes()).map_err(|_| {
                    self.err(h.span(), &key("id_header"), "not a valid HTTP header name")
                })?,
            ),
            None => None,
        };
        let dedup_window = Duration::from_secs(match &raw.dedup_window_secs {
            Some(w) => self.positive(w, &key("dedup_window_secs"))?,
            None => DEFAULT_DEDUP_WINDOW_SECS,
        });
        let retention = match raw.retention.map(Spanned::into_inner) {
            Some(r) => Retention {
                max_age_secs: r
                    .max_age_secs
                    .as_ref()
                    .map(|v| self.positive(v, &key("retention.max_age_secs")))
                    .transpose()?,
                max_events: r
                    .max_events
                    .as_ref()
                    .map(|v| self.positive(v, &key("retention.max_events")))
                    .transpose()?,
                max_bytes: r
                    .max_bytes
                    .as_ref()
                    .map(|v| self.positive(v, &key("retention.max_bytes")))
                    .transpose()?,
            },
            None => Retention::default(),
        };
        let mut allow_ips = Vec::new();
        for (j, a) in raw.allow_ips.iter().enumerate() {
            let text = a.get_ref();
            let net = text
                .parse::<IpNet>()
                .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    self.err(
                        a.span(),
                        &key(&format!("allow_ips[{j}]")),
                        format!("{text:?} is not an IP address or CIDR range"),
                    )
                })?;
            allow_ips.push(net);
        }
        let rate_limit = match raw.rate_limit {
            Some(r) => {
                let span = r.span();
                let r = r.into_inner();
                let per_second = *r.per_second.get_ref();
                let burst = r.burst.as_ref().map(|b| *b.get_ref()).unwrap_or(per_second);
                if !(per_second > 0.0
                    && per_second.is_finite()
                    && burst >= 1.0
                    && burst.is_finite())
                {
                    return Err(self.err(
                        span,
                        &key("rate_limit"),
                        "per_second must be > 0 and burst >= 1",
                    ));
                }
                Some(RateLimit { per_second, burst })
            }
            None => None,
        };
        let tokens = self.tokens(&raw.tokens, &key("tokens"))?;

        Ok(ChannelConfig {
            name: name.get_ref().clone(),
            verifier: Verifier {
                kind,
                hmac,
                secrets,
                tolerance_secs,
            },
            id_header,
            dedup_window,
            retention,
            allow_ips,
            rate_limit,
            tokens,
        })
    }
}

/// Removes the quoted value from serde's `invalid type: string "..."` messages: the
/// value may be a secret put where a list was expected (guarantee 7).
/// The 1-based line of byte `offset` in `text` (shared with `agent.toml` parsing).
pub(crate) fn line_at(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map(|s| s.bytes().filter(|&b| b == b'\n').count() + 1)
        .unwrap_or(1)
}

pub(crate) fn redact_values(message: &str) -> String {
    const QUOTED: &str = "string \"";
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(i) = rest.find(QUOTED) {
        out.push_str(&rest[..i]);
        out.push_str("a string");
        let after = &rest[i + QUOTED.len()..];
        rest = match after.find("\", expected").or_else(|| after.rfind('"')) {
            Some(end) => &after[end + 1..],
            None => "",
        };
    }
    out.push_str(rest);
    out
}

/// `[A-Za-z0-9_-]{1,64}`: names appear in URLs and storage keys, so they stay plain.
pub fn valid_channel_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_with_env(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        Parser {
            text,
            file: "test.toml",
            env,
        }
        .parse()
    }

    #[test]
    fn development_defaults_are_valid() {
        let c = Config::parse(DEVELOPMENT_CONFIG, "dev").expect("valid");
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.channels[0].name, "demo");
    }

    #[test]
    fn shipped_config_is_valid() {
        let text = include_str!("../../config.toml");
        let c = Config::parse(text, "config.toml").expect("shipped config.toml must validate");
        assert!(!c.channels.is_empty());
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let text = "[server]\nlisten = \"127.0.0.1:1\"\n\n[[channel]]\nname = \"a\"\nscheme = \"gitlab\"\nsecrets = [\"x\"]\n";
        let e = Config::parse(text, "c.toml").unwrap_err();
        assert_eq!(e.line, Some(6));
        assert_eq!(e.key, "channel[0].scheme");
        assert!(
            e.to_string().starts_with("c.toml:6: channel[0].scheme:"),
            "{e}"
        );
    }

    #[test]
    fn toml_errors_name_the_key_and_never_echo_a_value() {
        let text = "[server]\nlisten = \"127.0.0.1:1\"\n\n[[channel]]\nname = \"a\"\nscheme = \"none\"\n\n[[channel]]\nname = \"b\"\nscheme = \"github\"\nsecrets = \"hunter2-secret\"\n";
        let e = Config::parse(text, "c.toml").unwrap_err();
        assert_eq!(
            (e.line, e.key.as_str()),
            (Some(11), "channel[1].secrets"),
            "{e}"
        );
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let e = Config::parse("[server.tls]\ncert = \"c\"\nkye = \"k\"\n", "c.toml").unwrap_err();
        assert_eq!(e.key, "server.tls.kye", "{e}");
        assert_eq!(
            redact_values("invalid type: string \"a\\\"b\", expected a sequence"),
            "invalid type: a string, expected a sequence"
        );
    }

    #[test]
    fn unknown_key_is_refused_with_line() {
        let e =
            Config::parse("[server]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n", "c.toml").unwrap_err();
        assert_eq!(e.line, Some(3));
        assert_eq!(e.key, "server.lisen");
        assert!(e.message.contains("lisen"), "{e}");
    }

    #[test]
    fn env_secrets_are_resolved_and_missing_ones_refused() {
        let text =
            "[[channel]]\nname = \"a\"\nscheme = \"github\"\nsecrets = [\"env:GH_SECRET\"]\n";
        let ok = parse_with_env(text, &|n| (n == "GH_SECRET").then(|| "s3cret".to_string()))
            .expect("ok");
        assert_eq!(ok.channels[0].verifier.secrets.len(), 1);
        let e = parse_with_env(text, &|_| None).unwrap_err();
        assert_eq!(e.line, Some(4));
        assert!(e.message.contains("GH_SECRET"));
        assert!(!e.to_string().contains("s3cret"));
    }

    #[test]
    fn tokens_plain_and_hashed() {
        let hash = hex::encode(Sha256::digest(b"tok2"));
        let text = format!("[[channel]]\nname = \"a\"\nscheme = \"none\"\ntokens = [\"tok1\", \"sha256:{hash}\"]\n");
        let c = Config::parse(&text, "c").expect("ok");
        let t = &c.channels[0].tokens;
        assert!(t.matches("tok1") && t.matches("tok2") && !t.matches("tok3"));
        assert!(!format!("{t:?}").contains("tok1"));
    }

    #[test]
    fn bad_values_are_refused() {
        for (text, key) in [
            ("[[channel]]\nname = \"a b\"\nscheme = \"none\"\n", "channel[0].name"),
            ("[[channel]]\nname = \"a\"\nscheme = \"github\"\n", "channel[0].secrets"),
            ("[[channel]]\nname = \"a\"\nscheme = \"none\"\nallow_ips = [\"10.0.0.0/33\"]\n", "channel[0].allow_ips[0]"),
            ("[[channel]]\nname = \"a\"\nscheme = \"hmac\"\nsecrets = [\"x\"]\n", "channel[0].header"),
            ("[[channel]]\nname = \"a\"\nscheme = \"none\"\n[[channel]]\nname = \"a\"\nscheme = \"none\"\n", "channel[1].name"),
            ("[server]\nmax_body_bytes = -1\n", "server.max_body_bytes"),
            ("[server]\nstream_heartbeat_secs = 0\n", "server.stream_heartbeat_secs"),
            ("[server]\nstream_idle_timeout_secs = -3\n", "server.stream_idle_timeout_secs"),
        ] {
            let e = Config::parse(text, "c").unwrap_err();
            assert_eq!(e.key, key, "{text}: {e}");
        }
    }

    #[test]
    fn stream_timers_default_to_the_protocol_constants() {
        let c = Config::parse("[server]\nlisten = \"127.0.0.1:1\"\n", "c").expect("ok");
        assert_eq!(
            (
                c.server.stream_heartbeat_secs,
                c.server.stream_idle_timeout_secs
            ),
            (10, 30)
        );
        let c = Config::parse("", "c").expect("ok");
        assert_eq!(c.server.stream_heartbeat_secs, 10);
        let c = Config::parse(DEVELOPMENT_CONFIG, "dev").expect("ok");
        assert_eq!(c.server.stream_idle_timeout_secs, 30);
    }

    #[test]
    fn stream_timers_are_read() {
        let c = Config::parse(
            "[server]\nstream_heartbeat_secs = 1\nstream_idle_timeout_secs = 3\n",
            "c",
        )
        .expect("ok");
        assert_eq!(
            (
                c.server.stream_heartbeat_secs,
                c.server.stream_idle_timeout_secs
            ),
            (1, 3)
        );
        // Either alone, checked against the other's default.
        let c = Config::parse("[server]\nstream_heartbeat_secs = 20\n", "c").expect("ok");
        assert_eq!(
            (
                c.server.stream_heartbeat_secs,
                c.server.stream_idle_timeout_secs
            ),
            (20, 30)
        );
        let c = Config::parse("[server]\nstream_idle_timeout_secs = 11\n", "c").expect("ok");
        assert_eq!(c.server.stream_idle_timeout_secs, 11);
    }

    #[test]
    fn idle_timeout_must_exceed_the_heartbeat() {
        // Both written: the error points at the timeout's line.
        let e = Config::parse(
            "[server]\nstream_heartbeat_secs = 5\nstream_idle_timeout_secs = 5\n",
            "c.toml",
        )
        .unwrap_err();
        assert_eq!(
            (e.line, e.key.as_str()),
            (Some(3), "server.stream_idle_timeout_secs"),
            "{e}"
        );
        assert!(
            e.to_string()
                .starts_with("c.toml:3: server.stream_idle_timeout_secs:")
                && e.message.contains("greater than"),
            "{e}"
        );
        // Only the timeout written, below the default heartbeat (10).
        let e = Config::parse("[server]\nstream_idle_timeout_secs = 10\n", "c.toml").unwrap_err();
        assert_eq!(
            (e.line, e.key.as_str()),
            (Some(2), "server.stream_idle_timeout_secs"),
            "{e}"
        );
        // Only the heartbeat written, at or above the default timeout (30).
        let e = Config::parse(
            "[server]\nlisten = \"127.0.0.1:1\"\nstream_heartbeat_secs = 30\n",
            "c.toml",
        )
        .unwrap_err();
        assert_eq!(
            (e.line, e.key.as_str()),
            (Some(3), "server.stream_heartbeat_secs"),
            "{e}"
        );
    }

    #[test]
    fn stream_timers_are_bounded() {
        let e = Config::parse(
            "[server]\nstream_heartbeat_secs = 10\nstream_idle_timeout_secs = 9223372036854775807\n",
            "c.toml",
        )
        .unwrap_err();
        assert_eq!(
            (e.line, e.key.as_str()),
            (Some(3), "server.stream_idle_timeout_secs"),
            "{e}"
        );
        assert!(e.message.contains("at most"), "{e}");
        let e = Config::parse("[server]\nstream_heartbeat_secs = \"10\"\n", "c.toml").unwrap_err();
        assert_eq!(e.key, "server.stream_heartbeat_secs", "{e}");
    }
}
