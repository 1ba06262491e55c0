//! `hookrelay send`: post a correctly signed test webhook.
//!
//! It exists so that a person can try a relay (or a channel's secret) in one line,
//! and so that the README's quick start needs nothing but hookrelay itself.

use std::path::PathBuf;

use crate::common::verify::{self, Encoding, HmacParams, SchemeKind, Secret};

/// What to send and how to sign it.
#[derive(Debug, Clone)]
pub struct SendRequest {
    pub url: String,
    pub scheme: SchemeKind,
    pub secret: String,
    pub body: Vec<u8>,
    pub headers: Vec<(String, String)>,
    pub method: http::Method,
    pub hmac: Option<HmacParams>,
    pub delivery_id: Option<String>,
}

/// The relay's answer.
#[derive(Debug)]
pub struct SendResponse {
    pub status: u16,
    pub body: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("{0}")]
    Usage(String),
    #[error("request to {url} failed: {source}")]
    Http { url: String, source: reqwest::Error },
}

/// Reads `--data`: literal text, or `@FILE` for a file's exact bytes.
pub fn read_data(data: Option<&str>) -> Result<Vec<u8>, SendError> {
    match data {
        None => Ok(Vec::new()),
        Some(d) => match d.strip_prefix('@') {
            Some(path) => std::fs::read(PathBuf::from(path))
                .map_err(|e| SendError::Usage(format!("cannot read {path}: {e}"))),
            None => Ok(d.as_bytes().to_vec()),
        },
    }
}

/// `Name: value` as given to `-H`.
pub fn parse_header(h: &str) -> Result<(String, String), SendError> {
    let (name, value) = h
        .split_once(':')
        .ok_or_else(|| SendError::Usage(format!("header {h:?} is not 'Name: value'")))?;
    let name = name.trim();
    http::HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| SendError::Usage(format!("{name:?} is not a valid header name")))?;
    Ok((name.to_string(), value.trim().to_string()))
}

/// Parses `hex` / `base64`.
pub fn parse_encoding(s: &str) -> Result<Encoding, SendError> {
    match s {
        "hex" => Ok(Encoding::Hex),
        "base64" => Ok(Encoding::Base64),
        _ => Err(SendError::Usage(format!(
            "encoding {s:?}: expected hex or base64"
        ))),
    }
}

/// The signature headers of `req` (none for scheme "none", which needs no secret).
fn signature(req: &SendRequest) -> Result<Vec<(http::HeaderName, String)>, SendError> {
    let secret = match req.scheme {
        SchemeKind::None => return Ok(Vec::new()),
        kind => Secret::for_scheme(kind, &req.secret)
            .map_err(|e| SendError::Usage(format!("--secret: {e}")))?,
    };
    if req.scheme == SchemeKind::Hmac && req.hmac.is_none() {
        return Err(SendError::Usage(
            "scheme hmac needs --signature-header".into(),
        ));
    }
    let now = (crate::common::time::now_unix_ms() / 1000) as i64;
    let delivery_id = req.delivery_id.clone().or_else(|| {
        matches!(req.scheme, SchemeKind::Github | SchemeKind::Standard)
            .then(|| format!("msg_{}", uuid::Uuid::new_v4().simple()))
    });
    Ok(verify::sign(
        req.scheme,
        req.hmac.as_ref(),
        &secret,
        &req.body,
        now,
        delivery_id.as_deref(),
    ))
}

/// Signs and posts; any HTTP answer is returned, not turned into an error.
pub async fn send(req: SendRequest) -> Result<SendResponse, SendError> {
    let signed = signature(&req)?;
    let url = req.url.clone();
    let failed = |source| SendError::Http {
        url: url.clone(),
        source,
    };
    let client = reqwest::Client::builder().build().map_err(failed)?;
    let mut builder = client.request(req.method.clone(), &req.url);
    let has_content_type = req
        .headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-type"));
    if !has_content_type {
        builder = builder.header("content-type", "application/json");
    }
    for (n, v) in &req.headers {
        builder = builder.header(n, v);
    }
    for (n, v) in signed {
        builder = builder.header(n, v);
    }
    let resp = builder.body(req.body).send().await.map_err(failed)?;
    let status = resp.status().as_u16();
    let body = resp.text().await.map_err(failed)?;
    Ok(SendResponse { status, body })
}
