//! SendGrid's signed event webhook: ECDSA P-256 with SHA-256 over `timestamp + body`,
//! the signature base64 DER in `X-Twilio-Email-Event-Webhook-Signature`, the timestamp
//! in `X-Twilio-Email-Event-Webhook-Timestamp`. The channel's "secret" is the
//! verification key SendGrid shows (public), so no constant-time compare is needed.

use base64::Engine as _;
use http::{HeaderMap, HeaderName};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING};

use super::asymmetric::{self, Signed};
use super::pubkey::decode_any;
use super::scheme::{Verified, VerifyError};
use super::secret::{Secret, BASE64};
use super::util::{parse_timestamp, required_header};

const SIGNATURE: HeaderName = HeaderName::from_static("x-twilio-email-event-webhook-signature");
const TIMESTAMP: HeaderName = HeaderName::from_static("x-twilio-email-event-webhook-timestamp");

/// Longest DER encoding of a P-256 ECDSA signature.
const MAX_SIGNATURE_BYTES: usize = 72;

/// Checks the signature under any configured verification key, then the tolerance.
pub(crate) fn verify(
    headers: &HeaderMap,
    body: &[u8],
    secrets: &[Secret],
    tolerance_secs: u64,
    now: i64,
) -> Result<Verified, VerifyError> {
    let sig_text = required_header(headers, &SIGNATURE)?;
    let ts_text = required_header(headers, &TIMESTAMP)?;
    let ts = parse_timestamp(ts_text)?;
    let sig = decode_any(sig_text)
        .filter(|s| !s.is_empty() && s.len() <= MAX_SIGNATURE_BYTES)
        .ok_or(VerifyError::InvalidSignature)?;
    let message = [ts_text.as_bytes(), body].concat();
    let signed = Signed {
        message: &message,
        signature: &sig,
        timestamp: ts,
    };
    asymmetric::verify(
        &ECDSA_P256_SHA256_ASN1,
        &signed,
        secrets,
        tolerance_secs,
        now,
    )
}

/// Headers signed with the P-256 private key `pkcs8` (base64 PKCS#8 DER), or why it is
/// unusable.
pub(crate) fn sign(
    pkcs8: &str,
    body: &[u8],
    now: i64,
) -> Result<Vec<(HeaderName, String)>, String> {
    let der = decode_any(pkcs8.trim()).ok_or("expected a base64 PKCS#8 P-256 private key")?;
    let rng = SystemRandom::new();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &der, &rng)
        .map_err(|_| "not a PKCS#8 P-256 private key")?;
    let ts = now.to_string();
    let sig = pair
        .sign(&rng, &[ts.as_bytes(), body].concat())
        .map_err(|_| "signing failed")?;
    Ok(vec![
        (SIGNATURE, BASE64.encode(sig.as_ref())),
        (TIMESTAMP, ts),
    ])
}
