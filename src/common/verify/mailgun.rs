//! Mailgun: the signature travels in the JSON body, not in a header:
//! `{"signature": {"timestamp": "<unix>", "token": "<random>", "signature": "<hex>"}, ...}`
//! where `signature` is HMAC-SHA256 (hex) of `timestamp` followed by `token`, keyed with
//! the account's HTTP webhook signing key.
//!
//! This is the one scheme that reads the body: the signed material is in it. Note that
//! Mailgun's signature covers the timestamp and token only, not the event data, so the
//! tolerance window and dedup on the (signed) token are what stop a replay; the token
//! is returned as the delivery id.

use serde_json::{Map, Value};

use super::scheme::{Verified, VerifyError};
use super::secret::Secret;
use super::util::{
    any_secret_matches, check_tolerance, decode_hex_tag, generated_id, parse_timestamp, tags_equal,
};

/// The `signature` object's three strings; `MissingSignature` when the body is not a
/// JSON object carrying them.
fn fields(body: &[u8]) -> Result<(String, String, String), VerifyError> {
    let value: Value = serde_json::from_slice(body).map_err(|_| VerifyError::MissingSignature)?;
    let sig = value
        .get("signature")
        .ok_or(VerifyError::MissingSignature)?;
    let text = |k: &str| match sig.get(k) {
        None | Some(Value::Null) => Err(VerifyError::MissingSignature),
        Some(Value::String(s)) if s.is_empty() => Err(VerifyError::MissingSignature),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(VerifyError::InvalidSignature),
    };
    Ok((text("timestamp")?, text("token")?, text("signature")?))
}

/// Checks the body's signature, then the timestamp's tolerance; the delivery id is the
/// signed token.
pub(crate) fn verify(
    body: &[u8],
    secrets: &[Secret],
    tolerance_secs: u64,
    now: i64,
) -> Result<Verified, VerifyError> {
    let (ts_text, token, signature) = fields(body)?;
    let ts = parse_timestamp(&ts_text)?;
    let given = decode_hex_tag(&signature).ok_or(VerifyError::InvalidSignature)?;
    let parts: [&[u8]; 2] = [ts_text.as_bytes(), token.as_bytes()];
    if !any_secret_matches(secrets, &parts, |t| tags_equal(t, &given)) {
        return Err(VerifyError::InvalidSignature);
    }
    check_tolerance(ts, now, tolerance_secs)?;
    Ok(Verified {
        delivery_id: Some(token),
    })
}

/// `body` (a JSON object; empty means `{}`) with a `signature` object for `now`; the
/// token is `delivery_id` or a generated one.
pub(crate) fn sign_body(
    secret: &Secret,
    body: &[u8],
    now: i64,
    delivery_id: Option<&str>,
) -> Result<Vec<u8>, String> {
    let mut object: Map<String, Value> = if body.is_empty() {
        Map::new()
    } else {
        serde_json::from_slice(body).map_err(|_| {
            "scheme mailgun signs inside the body, which must be a JSON object".to_string()
        })?
    };
    let ts = now.to_string();
    let token = delivery_id.map_or_else(|| generated_id(now), str::to_owned);
    let tag = secret.tag(&[ts.as_bytes(), token.as_bytes()]);
    let signature = serde_json::json!({
        "timestamp": ts,
        "token": token,
        "signature": hex::encode(tag),
    });
    object.insert("signature".into(), signature);
    serde_json::to_vec(&object).map_err(|e| e.to_string())
}
