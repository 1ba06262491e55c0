//! Decoding the public keys and signatures of asymmetric schemes (a leaf: both
//! `secret.rs` and `ed25519.rs` use it).

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;

use super::scheme::{Encoding, SchemeKind};

/// Ed25519 public keys and seeds, in bytes.
pub(crate) const ED25519_KEY_BYTES: usize = 32;

/// Standard base64, padding optional.
const B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decodes exactly `len` bytes written in hex or base64; `None` for anything else.
pub(crate) fn decode(encoding: Encoding, text: &str, len: usize) -> Option<Vec<u8>> {
    let bytes = match encoding {
        Encoding::Hex => hex::decode(text).ok()?,
        Encoding::Base64 => B64.decode(text).ok()?,
    };
    (bytes.len() == len).then_some(bytes)
}

/// The DER header of a P-256 `SubjectPublicKeyInfo`, before the 65-byte point.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// An uncompressed P-256 point, in bytes.
const P256_POINT_BYTES: usize = 65;

/// The public key a channel of `kind` configures, as the provider's dashboard shows
/// it: Discord 32 bytes hex, Telnyx 32 bytes base64 (Ed25519; either encoding is
/// accepted for both), SendGrid a base64 DER
/// P-256 `SubjectPublicKeyInfo` (returned as its uncompressed point). `None` when
/// `raw` is not one, or for symmetric schemes.
pub(crate) fn public_key(kind: SchemeKind, raw: &str) -> Option<Vec<u8>> {
    let raw = raw.trim();
    match kind {
        // Each provider shows one encoding; the other is accepted too (a 64-digit hex
        // key and a 44-character base64 key cannot be mistaken for each other).
        SchemeKind::Discord | SchemeKind::Telnyx => decode(Encoding::Hex, raw, ED25519_KEY_BYTES)
            .or_else(|| decode(Encoding::Base64, raw, ED25519_KEY_BYTES)),
        SchemeKind::Sendgrid => {
            let der = B64.decode(raw).ok()?;
            let point = der.strip_prefix(&P256_SPKI_PREFIX[..])?;
            (point.len() == P256_POINT_BYTES).then(|| point.to_vec())
        }
        _ => None,
    }
}

/// Decodes base64 of any length (ECDSA signatures vary); `None` if it is not base64.
pub(crate) fn decode_any(text: &str) -> Option<Vec<u8>> {
    B64.decode(text).ok()
}
