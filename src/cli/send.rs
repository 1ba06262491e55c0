//! `hookrelay send`: post a correctly signed test webhook.
//!
//! It exists so that a person can try a relay (or a channel's secret) in one line,
//! and so that the README's quick start needs nothing but hookrelay itself.

use std::path::PathBuf;

use crate::common::verify::{self, Encoding, HmacParams, SchemeKind, Secret};

/// What to send and how to sign it.
#[derive(Debug, Clone)]
pub struct SendRequest {
    /// Where to post.
    pub url: String,
    /// The scheme to sign for.
    pub scheme: SchemeKind,
    /// The signing secret (or private key, for asymmetric schemes).
    pub secret: String,
    /// The body's exact bytes.
    pub body: Vec<u8>,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// The HTTP method.
    pub method: http::Method,
    /// Parameters of the generic `hmac` scheme.
    pub hmac: Option<HmacParams>,
    /// The delivery id to send, for schemes that carry one.
    pub delivery_id: Option<String>,
    /// For schemes that sign the URL (hubspot): the URL to sign, when it is not `url`
    /// (e.g. the relay's public address behind a proxy).
    pub public_url: Option<String>,
}

/// The relay's answer.
#[derive(Debug)]
pub struct SendResponse {
    /// The relay's HTTP status.
    pub status: u16,
    /// The relay's answer, as text.
    pub body: String,
}

/// Why `send` could not post.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The flags do not make a request (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The request could not be sent or answered.
    #[error("request to {url} failed: {cause}")]
    Http {
        /// Where it was sent (query and userinfo redacted).
        url: String,
        /// The transport error.
        cause: reqwest::Error,
    },
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

/// `--scheme`'s accepted values, for clap: every preset's name (aliases accepted,
/// ASCII case-insensitively), so `--help` lists them all.
pub fn scheme_values() -> clap::builder::PossibleValuesParser {
    let values = SchemeKind::ALL.map(|k| {
        let mut v = clap::builder::PossibleValue::new(k.as_str());
        for a in k.aliases() {
            v = v.alias(*a);
        }
        v
    });
    clap::builder::PossibleValuesParser::new(values)
}

/// Signature headers, and the body to send.
type Signed = (Vec<(http::HeaderName, String)>, Vec<u8>);

/// The signature headers of `req` and the body to send (Mailgun signs inside the
/// body). Scheme "none" needs no secret and adds nothing.
fn signed(req: &SendRequest) -> Result<Signed, SendError> {
    let now = (crate::common::time::now_unix_ms() / 1000) as i64;
    if let Some(signed) = verify::sign_with_private_key(req.scheme, &req.secret, &req.body, now) {
        let headers = signed.map_err(|e| SendError::Usage(format!("--secret: {e}")))?;
        return Ok((headers, req.body.clone()));
    }
    let secret = match req.scheme {
        SchemeKind::None => return Ok((Vec::new(), req.body.clone())),
        kind => Secret::for_scheme(kind, &req.secret)
            .map_err(|e| SendError::Usage(format!("--secret: {e}")))?,
    };
    if req.scheme == SchemeKind::Hmac && req.hmac.is_none() {
        return Err(SendError::Usage(
            "scheme hmac needs --signature-header".into(),
        ));
    }
    let delivery_id = req.delivery_id.clone().or_else(|| {
        req.scheme
            .delivery_header()
            .map(|_| format!("msg_{}", uuid::Uuid::new_v4().simple()))
    });
    let id = delivery_id.as_deref();
    if let Some(token) = req.scheme.token_header() {
        let value = req.scheme.token_value(&req.secret);
        let mut headers = vec![(http::HeaderName::from_static(token), value)];
        if let (Some(h), Some(id)) = (req.scheme.delivery_header(), id) {
            headers.push((http::HeaderName::from_static(h), id.to_owned()));
        }
        return Ok((headers, req.body.clone()));
    }
    if let Some(body) = verify::sign_body(req.scheme, &secret, &req.body, now, id) {
        return Ok((Vec::new(), body.map_err(SendError::Usage)?));
    }
    let url = req.public_url.as_deref().unwrap_or(&req.url);
    let headers = verify::sign_for_url(
        req.scheme,
        req.hmac.as_ref(),
        &secret,
        &req.body,
        now,
        (id, Some(url)),
    );
    Ok((headers, req.body.clone()))
}

/// Signs and posts; any HTTP answer is returned, not turned into an error.
pub async fn send(req: SendRequest) -> Result<SendResponse, SendError> {
    let (signed, body) = signed(&req)?;
    let url = req.url.clone();
    let failed = |cause| SendError::Http {
        url: url.clone(),
        cause,
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
    let resp = builder.body(body).send().await.map_err(failed)?;
    let status = resp.status().as_u16();
    let body = resp.text().await.map_err(failed)?;
    Ok(SendResponse { status, body })
}
