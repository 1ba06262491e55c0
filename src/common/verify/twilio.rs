//! Twilio: `X-Twilio-Signature: <base64 HMAC-SHA1>` over the URL Twilio posted to
//! followed by every form parameter of the body, sorted by name, each as name then
//! value (no separators), keyed with the account's auth token.
//!
//! The URL is the one Twilio posted to: the channel's public URL with the request's
//! path suffix and query (`crate::common::config::public_url`). Only form-encoded
//! bodies (what Twilio's voice and messaging webhooks send) are covered; the JSON
//! variant, which signs a `bodySHA256` query parameter, is not checked.

use base64::Engine as _;
use http::{HeaderMap, HeaderName};
use subtle::ConstantTimeEq;

use super::scheme::{Algorithm, Verified, VerifyError};
use super::secret::{MacBytes, Secret, BASE64};
use super::util::{header_str, required_header};

const SIGNATURE: HeaderName = HeaderName::from_static("x-twilio-signature");
const IDEMPOTENCY: HeaderName = HeaderName::from_static("i-twilio-idempotency-token");
const SHA1_BYTES: usize = 20;

/// The body's form parameters, decoded (`+` is a space), sorted by name then value.
fn sorted_params(body: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let decode = |s: &[u8]| -> Vec<u8> {
        let spaced: Vec<u8> = s
            .iter()
            .map(|&b| if b == b'+' { b' ' } else { b })
            .collect();
        percent_encoding::percent_decode(&spaced).collect()
    };
    let mut params: Vec<(Vec<u8>, Vec<u8>)> = body
        .split(|&b| b == b'&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.iter().position(|&b| b == b'=') {
            Some(i) => (decode(&p[..i]), decode(&p[i + 1..])),
            None => (decode(p), Vec::new()),
        })
        .collect();
    params.sort();
    params
}

fn mac(secret: &Secret, url: &str, params: &[(Vec<u8>, Vec<u8>)]) -> MacBytes {
    let mut m = secret.mac_of(Algorithm::Sha1);
    m.update(url.as_bytes());
    for (k, v) in params {
        m.update(k);
        m.update(v);
    }
    m.finish()
}

/// Checks the signature over `url` and the body's parameters under any secret; the
/// delivery id is `I-Twilio-Idempotency-Token` (unsigned). No `url`: fails closed.
pub(crate) fn verify(
    headers: &HeaderMap,
    body: &[u8],
    url: Option<&str>,
    secrets: &[Secret],
) -> Result<Verified, VerifyError> {
    let value = required_header(headers, &SIGNATURE)?;
    let url = url.ok_or(VerifyError::InvalidSignature)?;
    let mut given = [0u8; 32];
    match BASE64.decode_slice(value, &mut given) {
        Ok(SHA1_BYTES) => {}
        _ => return Err(VerifyError::InvalidSignature),
    }
    let params = sorted_params(body);
    let matched = secrets.iter().any(|s| {
        let m = mac(s, url, &params);
        bool::from(m.as_bytes().ct_eq(&given[..SHA1_BYTES]))
    });
    if !matched {
        return Err(VerifyError::InvalidSignature);
    }
    let delivery_id = header_str(headers, &IDEMPOTENCY)
        .ok()
        .flatten()
        .map(str::to_owned);
    Ok(Verified { delivery_id })
}

/// `X-Twilio-Signature` for a form body posted to `url`.
pub(crate) fn sign(secret: &Secret, body: &[u8], url: &str) -> Vec<(HeaderName, String)> {
    let m = mac(secret, url, &sorted_params(body));
    vec![(SIGNATURE, BASE64.encode(m.as_bytes()))]
}
