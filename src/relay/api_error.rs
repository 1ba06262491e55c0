//! The relay's HTTP error vocabulary.
//!
//! Every refusal the relay sends is `{"error": "<code>", "message": "<text>"}` with one
//! of the stable codes of the spec, so that scripts can branch on `error` while people
//! read `message`. Messages are written here or by callers that know no secret: a
//! signing secret or token never reaches this type (guarantee 7).

use http::StatusCode;
use serde::Serialize;

/// A refusal with its HTTP status and stable code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status of the response.
    pub status: StatusCode,
    /// Stable machine-readable code, sent as `error` in the JSON body.
    pub code: &'static str,
    /// Explanation for a person, sent as `message`; never holds a secret or token.
    pub message: String,
    /// Seconds for a `Retry-After` header (rate limiting, busy).
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    message: &'a str,
}

impl ApiError {
    /// A refusal with any status and code, without `Retry-After`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400 `bad_request`: the request is malformed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 401 `unauthorized`: a token or client certificate is missing or wrong.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 404 `not_found`: no such route (also the admin API when it is disabled).
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such route")
    }

    /// 404 `unknown_channel`: no channel of that name is configured.
    pub fn unknown_channel(name: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "unknown_channel",
            format!("no channel named {name:?} is configured"),
        )
    }

    /// 405 `method_not_allowed`; `allowed` names the methods the route takes.
    pub fn method_not_allowed(allowed: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("this route accepts {allowed}"),
        )
    }

    /// 413 `payload_too_large`: the body exceeds `limit` bytes.
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body exceeds the limit of {limit} bytes"),
        )
    }

    /// 408: the request body did not arrive in time.
    pub fn request_timeout(secs: u64) -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!("the request body did not arrive within {secs} s"),
        )
    }

    /// 503: too many request bodies are being received at once.
    pub fn busy(retry_after_secs: u64) -> Self {
        let mut e = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the relay is receiving too many request bodies at once; retry later",
        );
        e.retry_after = Some(retry_after_secs);
        e
    }

    /// 503 `unavailable`: storage failed and the event was not stored; the sender
    /// should retry.
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "storage failure: the event was not stored; retry later",
        )
    }

    /// The JSON body, as bytes.
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&Body {
            error: self.code,
            message: &self.message,
        })
        .unwrap_or_default()
    }
}

impl ApiError {
    /// The whole HTTP/1.1 response, `Connection: close` included, for the places that
    /// answer below hyper (see `relay::listen::hyper_errors`).
    pub fn http1_bytes(&self) -> Vec<u8> {
        let body = self.body();
        let mut out = format!(
            "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            self.status.as_u16(),
            self.status.canonical_reason().unwrap_or(""),
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(&body);
        out
    }
}

impl warp::Reply for ApiError {
    fn into_response(self) -> warp::reply::Response {
        let mut resp = http::Response::new(self.body().into());
        *resp.status_mut() = self.status;
        let headers = resp.headers_mut();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        if let Some(secs) = self.retry_after {
            headers.insert(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
        }
        resp
    }
}

/// A JSON 200 response.
pub fn json_ok<T: Serialize>(value: &T) -> warp::reply::Response {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut resp = http::Response::new(body.into());
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}
