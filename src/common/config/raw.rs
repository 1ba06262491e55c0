//! `config.toml` as written: every value keeps its source span, so that validation
//! can name the line it refuses.

use serde::Deserialize;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub server: Option<Spanned<RawServer>>,
    #[serde(default, rename = "channel")]
    pub channels: Vec<Spanned<RawChannel>>,
    #[serde(default)]
    pub storage: Option<Spanned<RawStorage>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStorage {
    pub backend: Option<Spanned<String>>,
    #[serde(default)]
    pub servers: Vec<Spanned<String>>,
    pub user: Option<Spanned<String>>,
    pub password: Option<Spanned<String>>,
    pub token: Option<Spanned<String>>,
    pub creds_file: Option<Spanned<String>>,
    pub tls_ca: Option<Spanned<String>>,
    pub replicas: Option<Spanned<i64>>,
    pub stream_prefix: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: Option<Spanned<String>>,
    pub data_dir: Option<Spanned<String>>,
    pub max_body_bytes: Option<Spanned<i64>>,
    pub admin_token: Option<Spanned<String>>,
    pub public_url: Option<Spanned<String>>,
    pub tls: Option<Spanned<RawTls>>,
    pub stream_heartbeat_secs: Option<Spanned<i64>>,
    pub stream_idle_timeout_secs: Option<Spanned<i64>>,
    pub disk_reserve_bytes: Option<Spanned<i64>>,
    pub stream_connection_buffer_bytes: Option<Spanned<i64>>,
    pub stream_total_buffer_bytes: Option<Spanned<i64>>,
    pub first_byte_timeout_secs: Option<Spanned<i64>>,
    pub body_timeout_secs: Option<Spanned<i64>>,
    pub idle_timeout_secs: Option<Spanned<i64>>,
    pub max_connections: Option<Spanned<i64>>,
    pub max_inflight_body_bytes: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub cert: Spanned<String>,
    pub key: Spanned<String>,
    pub client_ca: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawChannel {
    pub name: Option<Spanned<String>>,
    pub scheme: Option<Spanned<String>>,
    #[serde(default)]
    pub secrets: Vec<Spanned<String>>,
    pub tolerance_secs: Option<Spanned<i64>>,
    #[serde(default)]
    pub tokens: Vec<Spanned<String>>,
    pub header: Option<Spanned<String>>,
    pub prefix: Option<Spanned<String>>,
    pub encoding: Option<Spanned<String>>,
    pub algorithm: Option<Spanned<String>>,
    pub template: Option<Spanned<String>>,
    pub timestamp_header: Option<Spanned<String>>,
    pub public_url: Option<Spanned<String>>,
    pub id_header: Option<Spanned<String>>,
    pub dedup_window_secs: Option<Spanned<i64>>,
    pub require_delivery_id: Option<Spanned<bool>>,
    pub retention: Option<Spanned<RawRetention>>,
    #[serde(default)]
    pub allow_ips: Vec<Spanned<String>>,
    pub rate_limit: Option<Spanned<RawRateLimit>>,
    pub handshake: Option<Spanned<bool>>,
    pub verify_token: Option<Spanned<String>>,
    pub replace_hook_secret: Option<Spanned<bool>>,
    pub msgraph_validation: Option<Spanned<bool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetention {
    pub max_age_secs: Option<Spanned<i64>>,
    pub max_events: Option<Spanned<i64>>,
    pub max_bytes: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimit {
    pub per_second: Spanned<f64>,
    pub burst: Option<Spanned<f64>>,
}

impl RawConfig {
    /// The key of the first secret written into the file itself rather than read from
    /// the environment (`env:NAME`); a token given as its `sha256:` digest is no secret.
    pub fn first_literal_secret(&self) -> Option<String> {
        let literal = |v: &Spanned<String>| !v.get_ref().starts_with("env:");
        let plain_token = |v: &Spanned<String>| literal(v) && !v.get_ref().starts_with("sha256:");
        let server = self.server.as_ref().map(|s| s.get_ref());
        if server
            .and_then(|s| s.admin_token.as_ref())
            .is_some_and(plain_token)
        {
            return Some("server.admin_token".into());
        }
        if let Some(st) = self.storage.as_ref().map(|s| s.get_ref()) {
            if st.password.as_ref().is_some_and(literal) {
                return Some("storage.password".into());
            }
            if st.token.as_ref().is_some_and(literal) {
                return Some("storage.token".into());
            }
        }
        self.channels.iter().enumerate().find_map(|(i, c)| {
            let c = c.get_ref();
            let secret = c.secrets.iter().position(literal);
            let token = c.tokens.iter().position(plain_token);
            match (secret, token) {
                (Some(j), _) => Some(format!("channel[{i}].secrets[{j}]")),
                (None, Some(j)) => Some(format!("channel[{i}].tokens[{j}]")),
                (None, None) if c.verify_token.as_ref().is_some_and(literal) => {
                    Some(format!("channel[{i}].verify_token"))
                }
                (None, None) => None,
            }
        })
    }
}
