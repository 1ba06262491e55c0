//! Ed25519 signatures (Discord interactions, Telnyx): the provider signs
//! `timestamp + separator + body` with its private key; the channel's "secret" is the
//! provider's public key. Nothing here is secret, so no constant-time compare is
//! needed; the timestamp is signed and checked against the tolerance.

use base64::Engine as _;
use http::{HeaderMap, HeaderName};
use ring::signature::{Ed25519KeyPair, ED25519};

use super::asymmetric::{self, Signed};
use super::pubkey::{decode, ED25519_KEY_BYTES};
use super::scheme::{Encoding, SchemeKind, Verified, VerifyError};
use super::secret::{Secret, BASE64};
use super::util::{parse_timestamp, required_header};

/// Ed25519 signatures, in bytes.
const SIGNATURE_BYTES: usize = 64;

/// One provider's Ed25519 convention.
struct Convention {
    signature: HeaderName,
    timestamp: HeaderName,
    separator: &'static [u8],
    encoding: Encoding,
}

fn convention(kind: SchemeKind) -> Option<Convention> {
    match kind {
        SchemeKind::Discord => Some(Convention {
            signature: HeaderName::from_static("x-signature-ed25519"),
            timestamp: HeaderName::from_static("x-signature-timestamp"),
            separator: b"",
            encoding: Encoding::Hex,
        }),
        SchemeKind::Telnyx => Some(Convention {
            signature: HeaderName::from_static("telnyx-signature-ed25519"),
            timestamp: HeaderName::from_static("telnyx-timestamp"),
            separator: b"|",
            encoding: Encoding::Base64,
        }),
        _ => None,
    }
}

/// Checks the signature under any configured public key, then the tolerance.
pub(crate) fn verify(
    kind: SchemeKind,
    headers: &HeaderMap,
    body: &[u8],
    secrets: &[Secret],
    tolerance_secs: u64,
    now: i64,
) -> Result<Verified, VerifyError> {
    let c = convention(kind).ok_or(VerifyError::InvalidSignature)?;
    let sig_text = required_header(headers, &c.signature)?;
    let ts_text = required_header(headers, &c.timestamp)?;
    let ts = parse_timestamp(ts_text)?;
    let sig = decode(c.encoding, sig_text, SIGNATURE_BYTES).ok_or(VerifyError::InvalidSignature)?;
    let message = [ts_text.as_bytes(), c.separator, body].concat();
    let signed = Signed {
        message: &message,
        signature: &sig,
        timestamp: ts,
    };
    asymmetric::verify(&ED25519, &signed, secrets, tolerance_secs, now)
}

/// Headers signed with the private key whose 32-byte seed is `seed` (hex or base64),
/// or why `seed` is unusable.
pub(crate) fn sign(
    kind: SchemeKind,
    seed: &str,
    body: &[u8],
    now: i64,
) -> Result<Vec<(HeaderName, String)>, String> {
    let c = convention(kind).ok_or("not an Ed25519 scheme")?;
    let seed = decode(Encoding::Hex, seed, ED25519_KEY_BYTES)
        .or_else(|| decode(Encoding::Base64, seed, ED25519_KEY_BYTES))
        .ok_or("expected the Ed25519 private key's 32-byte seed, in hex or base64")?;
    let pair = Ed25519KeyPair::from_seed_unchecked(&seed).map_err(|_| "invalid Ed25519 seed")?;
    let ts = now.to_string();
    let sig = pair.sign(&[ts.as_bytes(), c.separator, body].concat());
    let encoded = match c.encoding {
        Encoding::Hex => hex::encode(sig.as_ref()),
        Encoding::Base64 => BASE64.encode(sig.as_ref()),
    };
    Ok(vec![(c.signature, encoded), (c.timestamp, ts)])
}
