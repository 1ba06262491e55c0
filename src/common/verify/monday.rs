//! monday.com: integration requests carry `Authorization: <JWT>` (optionally
//! `Bearer <JWT>`), an HS256 JSON Web Token signed with the app's signing secret.
//!
//! The token signs its own header and claims, not the request body: what this check
//! proves is that monday.com sent the request (and, through `exp`, that it is recent),
//! not that the body is intact. Only `alg: HS256` is accepted (never `none`).

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use http::{HeaderMap, HeaderName};
use serde_json::Value;

use super::scheme::{Verified, VerifyError};
use super::secret::Secret;
use super::util::{any_secret_matches, required_header, tags_equal};

const AUTHORIZATION: HeaderName = HeaderName::from_static("authorization");

/// Lifetime of the tokens `sign` makes.
const SIGNED_TOKEN_LIFETIME_SECS: i64 = 300;

/// base64url, padding optional (JWTs omit it).
const B64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

fn json_part(part: &str) -> Result<Value, VerifyError> {
    let bytes = B64URL
        .decode(part)
        .map_err(|_| VerifyError::InvalidSignature)?;
    serde_json::from_slice(&bytes).map_err(|_| VerifyError::InvalidSignature)
}

/// Checks the JWT's HS256 signature under any secret, then that it has not expired.
pub(crate) fn verify(
    headers: &HeaderMap,
    secrets: &[Secret],
    now: i64,
) -> Result<Verified, VerifyError> {
    let value = required_header(headers, &AUTHORIZATION)?;
    let token = value.strip_prefix("Bearer ").unwrap_or(value).trim();
    let mut parts = token.split('.');
    let (Some(head), Some(claims), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(VerifyError::InvalidSignature);
    };
    if json_part(head)?.get("alg").and_then(Value::as_str) != Some("HS256") {
        return Err(VerifyError::InvalidSignature);
    }
    let mut given = [0u8; 32];
    match B64URL.decode_slice(sig, &mut given) {
        Ok(32) => {}
        _ => return Err(VerifyError::InvalidSignature),
    }
    let signed: [&[u8]; 3] = [head.as_bytes(), b".", claims.as_bytes()];
    if !any_secret_matches(secrets, &signed, |t| tags_equal(t, &given)) {
        return Err(VerifyError::InvalidSignature);
    }
    match json_part(claims)?.get("exp").map(Value::as_i64) {
        None => Ok(Verified::default()),
        Some(Some(exp)) if now <= exp => Ok(Verified::default()),
        Some(Some(_)) => Err(VerifyError::TimestampOutOfTolerance),
        Some(None) => Err(VerifyError::InvalidSignature),
    }
}

/// `Authorization: <JWT>` valid for five minutes from `now`.
pub(crate) fn sign(secret: &Secret, now: i64) -> Vec<(HeaderName, String)> {
    let head = B64URL.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let exp = now.saturating_add(SIGNED_TOKEN_LIFETIME_SECS);
    let claims = B64URL.encode(format!(r#"{{"iat":{now},"exp":{exp}}}"#));
    let tag = secret.tag(&[head.as_bytes(), b".", claims.as_bytes()]);
    vec![(
        AUTHORIZATION,
        format!("{head}.{claims}.{}", B64URL.encode(tag)),
    )]
}
