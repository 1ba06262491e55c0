//! Secrets as keyed MAC state, and the MAC primitives every scheme shares.

use std::fmt;

use ::hmac::{Hmac, Mac};
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use sha2::Sha256;

use super::scheme::SchemeKind;

/// HMAC-SHA256, the MAC of every scheme.
pub(crate) type HmacSha256 = Hmac<Sha256>;

/// A decoded HMAC-SHA256 tag.
pub(crate) type Tag = [u8; 32];

/// Standard base64 alphabet; encodes with padding, decodes with or without it.
pub(crate) const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A signing secret, held as a keyed HMAC-SHA256 state (the configured string itself
/// is not kept). Its `Debug`/`Display` print `Secret(<redacted>)`.
#[derive(Clone)]
pub struct Secret {
    keyed: HmacSha256,
}

/// Why a configured secret cannot be used. Messages never contain the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The secret (or, for `standard`, its decoded key) is empty.
    #[error("the secret is empty")]
    Empty,
    /// A `standard` secret is not base64 after its optional `whsec_` prefix.
    #[error("a \"standard\" secret must be \"whsec_\" followed by base64 (the part after the prefix is not valid base64)")]
    InvalidBase64,
}

impl Secret {
    /// Builds the HMAC key for the scheme from the configured string: for `standard`,
    /// `whsec_<base64>` (the prefix is optional) is base64-decoded and the key is the
    /// decoded bytes; for every other scheme the whole string's bytes are the key
    /// (Stripe's `whsec_...` is *not* decoded).
    pub fn for_scheme(kind: SchemeKind, raw: &str) -> Result<Secret, SecretError> {
        if raw.is_empty() {
            return Err(SecretError::Empty);
        }
        if kind == SchemeKind::Standard {
            let b64 = raw.strip_prefix("whsec_").unwrap_or(raw);
            let key = BASE64.decode(b64).map_err(|_| SecretError::InvalidBase64)?;
            Self::from_key(&key)
        } else {
            Self::from_key(raw.as_bytes())
        }
    }

    /// A secret whose HMAC key is exactly `key`.
    pub fn from_key(key: &[u8]) -> Result<Secret, SecretError> {
        if key.is_empty() {
            return Err(SecretError::Empty);
        }
        // HMAC accepts keys of any length, so this never fails in practice; the error
        // path exists only so that no `expect` is needed.
        let keyed = HmacSha256::new_from_slice(key).map_err(|_| SecretError::Empty)?;
        Ok(Secret { keyed })
    }

    /// A fresh MAC keyed with this secret, ready to absorb signed content.
    pub(crate) fn mac(&self) -> HmacSha256 {
        self.keyed.clone()
    }

    /// The HMAC-SHA256 tag of the concatenation of `parts`.
    pub(crate) fn tag(&self, parts: &[&[u8]]) -> Tag {
        let mut mac = self.mac();
        for p in parts {
            mac.update(p);
        }
        mac.finalize().into_bytes().into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}
