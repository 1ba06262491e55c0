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

/// How a scheme's dashboard shows its public key: hex (Discord) or base64 (Telnyx);
/// `None` for symmetric schemes.
pub(crate) fn key_encoding(kind: SchemeKind) -> Option<Encoding> {
    match kind {
        SchemeKind::Discord => Some(Encoding::Hex),
        SchemeKind::Telnyx => Some(Encoding::Base64),
        _ => None,
    }
}

/// The 32-byte public key a channel of `kind` configures; `None` when `raw` is not one.
pub(crate) fn public_key(kind: SchemeKind, raw: &str) -> Option<Vec<u8>> {
    decode(key_encoding(kind)?, raw.trim(), ED25519_KEY_BYTES)
}
