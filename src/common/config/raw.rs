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
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: Option<Spanned<String>>,
    pub data_dir: Option<Spanned<String>>,
    pub max_body_bytes: Option<Spanned<i64>>,
    pub admin_token: Option<Spanned<String>>,
    pub tls: Option<Spanned<RawTls>>,
    pub stream_heartbeat_secs: Option<Spanned<i64>>,
    pub stream_idle_timeout_secs: Option<Spanned<i64>>,
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
    pub id_header: Option<Spanned<String>>,
    pub dedup_window_secs: Option<Spanned<i64>>,
    pub retention: Option<Spanned<RawRetention>>,
    #[serde(default)]
    pub allow_ips: Vec<Spanned<String>>,
    pub rate_limit: Option<Spanned<RawRateLimit>>,
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
