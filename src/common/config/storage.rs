//! The `[storage]` table: which backend keeps the log, and how to reach it.

use std::path::PathBuf;

use toml::Spanned;

use super::raw::RawStorage;
use super::source::{FileError, Source};

/// Default `[storage] stream_prefix`: names every stream and bucket of one relay.
pub const DEFAULT_STREAM_PREFIX: &str = "hookrelay";
/// Default `[storage] replicas`: copies of each stream and bucket.
pub const DEFAULT_REPLICAS: usize = 1;
/// Most replicas JetStream allows for a stream.
pub const MAX_REPLICAS: usize = 5;

/// The backend the relay keeps its log in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum StorageConfig {
    /// The embedded log in `[server] data_dir` (the default).
    #[default]
    Sled,
    /// Streams and key-value buckets on a NATS JetStream server or cluster.
    JetStream(JetStreamConfig),
}

/// How to reach JetStream and how to lay the log out on it.
#[derive(Clone, PartialEq, Eq)]
pub struct JetStreamConfig {
    /// Server URLs (`nats://host:4222`, `tls://…`); the client fails over between them.
    pub servers: Vec<String>,
    /// Credentials, already read from the environment when given as `env:NAME`.
    pub auth: NatsAuth,
    /// A PEM file of CA certificates to trust for TLS to the servers.
    pub tls_ca: Option<PathBuf>,
    /// Copies of each stream and bucket; an append is answered after a quorum has it.
    pub replicas: usize,
    /// Prefix of every stream (`{prefix}_{channel}`), subject and bucket name.
    pub stream_prefix: String,
}

impl JetStreamConfig {
    /// A configuration for `servers` with every other setting at its default.
    pub fn new(servers: Vec<String>) -> JetStreamConfig {
        JetStreamConfig {
            servers,
            auth: NatsAuth::None,
            tls_ca: None,
            replicas: DEFAULT_REPLICAS,
            stream_prefix: DEFAULT_STREAM_PREFIX.to_string(),
        }
    }
}

impl std::fmt::Debug for JetStreamConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print credentials: only which kind is configured.
        f.debug_struct("JetStreamConfig")
            .field("servers", &self.servers)
            .field("auth", &self.auth.kind())
            .field("tls_ca", &self.tls_ca)
            .field("replicas", &self.replicas)
            .field("stream_prefix", &self.stream_prefix)
            .finish()
    }
}

/// Credentials for the NATS servers.
#[derive(Clone, PartialEq, Eq)]
pub enum NatsAuth {
    /// No credentials.
    None,
    /// A user name and password.
    UserPassword {
        /// The user name.
        user: String,
        /// The password.
        password: String,
    },
    /// A bearer token.
    Token(String),
    /// A `.creds` file (JWT and nkey seed).
    CredsFile(PathBuf),
}

impl std::fmt::Debug for NatsAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The kind only: a password or token never reaches a log.
        f.write_str(self.kind())
    }
}

impl NatsAuth {
    /// The kind of credentials, for logs: never the secret itself.
    pub fn kind(&self) -> &'static str {
        match self {
            NatsAuth::None => "none",
            NatsAuth::UserPassword { .. } => "user+password",
            NatsAuth::Token(_) => "token",
            NatsAuth::CredsFile(_) => "creds file",
        }
    }
}

/// `[A-Za-z0-9_-]{1,32}`: the prefix goes into stream, subject and bucket names.
pub fn valid_stream_prefix(prefix: &str) -> bool {
    (1..=32).contains(&prefix.len())
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Validates the `[storage]` table (absent: the embedded log).
pub(super) fn storage(
    src: &Source,
    raw: Option<&Spanned<RawStorage>>,
) -> Result<StorageConfig, FileError> {
    let Some(raw) = raw else {
        return Ok(StorageConfig::Sled);
    };
    let (span, r) = (raw.span(), raw.get_ref());
    let backend = r.backend.as_ref().map_or("sled", |b| b.get_ref().as_str());
    match backend {
        "sled" => {
            let nats_only = r.servers.first().map(|s| (s.span(), "storage.servers"));
            if let Some((span, key)) = nats_only {
                return Err(src.err(span, key, "only the jetstream backend takes servers"));
            }
            Ok(StorageConfig::Sled)
        }
        "jetstream" => jetstream(src, span, r).map(StorageConfig::JetStream),
        other => Err(src.err(
            r.backend.as_ref().map_or(span, |b| b.span()),
            "storage.backend",
            format!("unknown backend {other:?}: expected \"sled\" or \"jetstream\""),
        )),
    }
}

fn jetstream(
    src: &Source,
    span: std::ops::Range<usize>,
    r: &RawStorage,
) -> Result<JetStreamConfig, FileError> {
    if r.servers.is_empty() {
        return Err(src.err(
            span,
            "storage.servers",
            "the jetstream backend needs servers",
        ));
    }
    let mut servers = Vec::with_capacity(r.servers.len());
    for (i, s) in r.servers.iter().enumerate() {
        let url = s.get_ref();
        let scheme_ok = ["nats://", "tls://"].iter().any(|p| url.starts_with(p));
        if !scheme_ok || url.len() <= "nats://".len() {
            let msg = "expected a URL like \"nats://host:4222\" or \"tls://host:4222\"";
            return Err(src.err(s.span(), &format!("storage.servers[{i}]"), msg));
        }
        servers.push(url.clone());
    }
    let mut cfg = JetStreamConfig::new(servers);
    cfg.auth = auth(src, span.clone(), r)?;
    cfg.tls_ca = r.tls_ca.as_ref().map(|p| PathBuf::from(p.get_ref()));
    if let Some(n) = &r.replicas {
        let n = src.positive(n, "storage.replicas")?;
        if n > MAX_REPLICAS as u64 {
            let msg = format!("at most {MAX_REPLICAS} (JetStream's limit)");
            return Err(src.err(
                r.replicas.as_ref().map_or(span, |v| v.span()),
                "storage.replicas",
                msg,
            ));
        }
        cfg.replicas = n as usize;
    }
    if let Some(p) = &r.stream_prefix {
        if !valid_stream_prefix(p.get_ref()) {
            let msg = "must be 1 to 32 of A-Z a-z 0-9 _ -";
            return Err(src.err(p.span(), "storage.stream_prefix", msg));
        }
        cfg.stream_prefix = p.get_ref().clone();
    }
    Ok(cfg)
}

/// At most one kind of credentials; secrets may come from `env:NAME`.
fn auth(src: &Source, span: std::ops::Range<usize>, r: &RawStorage) -> Result<NatsAuth, FileError> {
    let kinds = [
        r.user.is_some() || r.password.is_some(),
        r.token.is_some(),
        r.creds_file.is_some(),
    ];
    if kinds.iter().filter(|k| **k).count() > 1 {
        let msg = "give one of user+password, token or creds_file";
        return Err(src.err(span, "storage", msg));
    }
    match (&r.user, &r.password, &r.token, &r.creds_file) {
        (Some(u), Some(p), _, _) => Ok(NatsAuth::UserPassword {
            user: src.resolve(u, "storage.user")?,
            password: src.resolve(p, "storage.password")?,
        }),
        (Some(u), None, _, _) => {
            Err(src.err(u.span(), "storage.password", "user needs a password"))
        }
        (None, Some(p), _, _) => Err(src.err(p.span(), "storage.user", "password needs a user")),
        (_, _, Some(t), _) => Ok(NatsAuth::Token(src.resolve(t, "storage.token")?)),
        (_, _, _, Some(f)) => Ok(NatsAuth::CredsFile(PathBuf::from(f.get_ref()))),
        _ => Ok(NatsAuth::None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::config::Config;

    fn parse(storage: &str) -> Result<StorageConfig, FileError> {
        let text = format!("[server]\nlisten = \"127.0.0.1:0\"\n\n{storage}");
        Config::parse(&text, "c.toml").map(|c| c.storage)
    }

    #[test]
    fn sled_is_the_default() {
        assert_eq!(parse("").expect("ok"), StorageConfig::Sled);
        assert_eq!(
            parse("[storage]\nbackend = \"sled\"").expect("ok"),
            StorageConfig::Sled
        );
    }

    #[test]
    fn jetstream_settings_and_defaults() {
        let text = "[storage]\nbackend = \"jetstream\"\nservers = [\"nats://a:4222\"]\n\
                    token = \"t\"\nreplicas = 3";
        let StorageConfig::JetStream(js) = parse(text).expect("ok") else {
            panic!("jetstream")
        };
        assert_eq!(js.servers, vec!["nats://a:4222"]);
        assert_eq!(js.auth, NatsAuth::Token("t".into()));
        assert_eq!((js.replicas, js.stream_prefix.as_str()), (3, "hookrelay"));
        assert!(
            !format!("{js:?}").contains("\"t\""),
            "Debug hides the token"
        );
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let cases = [
            ("[storage]\nbackend = \"etcd\"", 5, "storage.backend"),
            ("[storage]\nbackend = \"jetstream\"", 4, "storage.servers"),
            ("[storage]\nbackend = \"jetstream\"\nservers = [\"http://x\"]", 6, "storage.servers[0]"),
            ("[storage]\nbackend = \"jetstream\"\nservers = [\"nats://x\"]\nreplicas = 7", 7, "storage.replicas"),
            ("[storage]\nbackend = \"jetstream\"\nservers = [\"nats://x\"]\nstream_prefix = \"a.b\"", 7, "storage.stream_prefix"),
            ("[storage]\nbackend = \"jetstream\"\nservers = [\"nats://x\"]\ntoken = \"env:HOOKRELAY_NO_SUCH_VAR\"", 7, "storage.token"),
        ];
        for (text, line, key) in cases {
            let e = parse(text).expect_err(text);
            assert_eq!(
                (e.file.as_str(), e.line, e.key.as_str()),
                ("c.toml", Some(line), key),
                "{text}"
            );
        }
    }
}
