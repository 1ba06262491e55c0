//! Secrets as keyed MAC state, and the MAC primitives every scheme shares.

use std::fmt;

use ::hmac::{Hmac, Mac};
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use sha1::Sha1;
use sha2::{Digest as _, Sha256, Sha512};

use super::scheme::{Algorithm, SchemeKind};

/// HMAC-SHA256, the MAC of most schemes.
pub(crate) type HmacSha256 = Hmac<Sha256>;
type HmacSha1 = Hmac<Sha1>;
type HmacSha512 = Hmac<Sha512>;

/// A decoded HMAC-SHA256 tag.
pub(crate) type Tag = [u8; 32];

/// Longest MAC any scheme uses (SHA-512), in bytes.
pub(crate) const MAX_MAC_BYTES: usize = 64;

/// Standard base64 alphabet; encodes with padding, decodes with or without it.
pub(crate) const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A MAC of any supported algorithm (or a decoded signature): up to 64 bytes, no
/// allocation.
#[derive(Clone, Copy)]
pub(crate) struct MacBytes {
    buf: [u8; MAX_MAC_BYTES],
    len: usize,
}

impl MacBytes {
    /// Copies `bytes` (at most [`MAX_MAC_BYTES`]; `None` when longer).
    pub(crate) fn from_slice(bytes: &[u8]) -> Option<MacBytes> {
        let mut buf = [0u8; MAX_MAC_BYTES];
        buf.get_mut(..bytes.len())?.copy_from_slice(bytes);
        Some(MacBytes {
            buf,
            len: bytes.len(),
        })
    }

    /// The MAC's bytes.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// A MAC being computed, of the algorithm a scheme asks for.
pub(crate) enum MacState {
    Sha1(HmacSha1),
    Sha256(HmacSha256),
    Sha512(HmacSha512),
}

impl MacState {
    /// Absorbs more signed content.
    pub(crate) fn update(&mut self, data: &[u8]) {
        match self {
            MacState::Sha1(m) => m.update(data),
            MacState::Sha256(m) => m.update(data),
            MacState::Sha512(m) => m.update(data),
        }
    }

    /// The finished MAC.
    pub(crate) fn finish(self) -> MacBytes {
        let bytes = match self {
            MacState::Sha1(m) => MacBytes::from_slice(&m.finalize().into_bytes()),
            MacState::Sha256(m) => MacBytes::from_slice(&m.finalize().into_bytes()),
            MacState::Sha512(m) => MacBytes::from_slice(&m.finalize().into_bytes()),
        };
        // Every digest above is at most 64 bytes, so `from_slice` cannot fail.
        bytes.unwrap_or(MacBytes {
            buf: [0; MAX_MAC_BYTES],
            len: 0,
        })
    }
}

/// A signing secret, held as keyed HMAC states (SHA-1, SHA-256, SHA-512) and the
/// SHA-256 digest used by token schemes; the configured string itself is not kept.
/// Its `Debug`/`Display` print `Secret(<redacted>)`.
#[derive(Clone)]
pub struct Secret {
    keyed: HmacSha256,
    keyed_sha1: HmacSha1,
    keyed_sha512: HmacSha512,
    /// SHA-256 of the key, for schemes that send the secret itself (GitLab).
    token_digest: [u8; 32],
    /// For asymmetric schemes (Discord, Telnyx): the provider's public key.
    public_key: Option<Vec<u8>>,
}

/// Why a configured secret cannot be used. Messages never contain the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The secret (or, for `standard`, its decoded key) is empty.
    #[error("the secret is empty")]
    Empty,
    /// A `discord`, `telnyx` or `sendgrid` secret is not the provider's public key
    /// (hex Ed25519 for Discord, base64 Ed25519 for Telnyx, base64 DER P-256 for SendGrid).
    #[error("not the provider's public key")]
    InvalidPublicKey,
    /// A `standard` secret is not base64 after its optional `whsec_` prefix.
    #[error("the part after \"whsec_\" is not valid base64")]
    InvalidBase64,
}

/// What a `secrets` entry of `kind` must look like, for messages (`hookrelay check`).
pub fn secret_format(kind: SchemeKind) -> &'static str {
    match kind {
        SchemeKind::Standard => "\"whsec_\" followed by base64 of the key bytes (Standard Webhooks)",
        SchemeKind::Discord => "the application's Ed25519 public key: 64 hex digits (base64 of 32 bytes also accepted)",
        SchemeKind::Telnyx => "the account's Ed25519 public key: base64 of 32 bytes as Telnyx shows it (64 hex digits also accepted)",
        SchemeKind::Sendgrid => "the verification key: base64 DER of an ECDSA P-256 public key, as SendGrid shows it",
        SchemeKind::Postmark => "\"user:password\" of the basic authentication in the webhook URL",
        SchemeKind::None => "no secret",
        _ => "the signing secret as the provider shows it (non-empty text)",
    }
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
        if matches!(
            kind,
            SchemeKind::Discord | SchemeKind::Telnyx | SchemeKind::Sendgrid
        ) {
            let key = super::pubkey::public_key(kind, raw).ok_or(SecretError::InvalidPublicKey)?;
            let mut secret = Self::from_key(&key)?;
            secret.public_key = Some(key);
            return Ok(secret);
        }
        if kind == SchemeKind::Postmark {
            // Postmark sends HTTP basic auth; the secret is `user:password`.
            return Self::from_key(format!("Basic {}", BASE64.encode(raw)).as_bytes());
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
        // HMAC accepts keys of any length, so these never fail in practice; the error
        // path exists only so that no `expect` is needed.
        let keyed = HmacSha256::new_from_slice(key).map_err(|_| SecretError::Empty)?;
        let keyed_sha1 = HmacSha1::new_from_slice(key).map_err(|_| SecretError::Empty)?;
        let keyed_sha512 = HmacSha512::new_from_slice(key).map_err(|_| SecretError::Empty)?;
        Ok(Secret {
            keyed,
            keyed_sha1,
            keyed_sha512,
            token_digest: Sha256::digest(key).into(),
            public_key: None,
        })
    }

    /// A fresh MAC keyed with this secret, ready to absorb signed content.
    pub(crate) fn mac(&self) -> HmacSha256 {
        self.keyed.clone()
    }

    /// A fresh MAC of `algorithm` keyed with this secret.
    pub(crate) fn mac_of(&self, algorithm: Algorithm) -> MacState {
        match algorithm {
            Algorithm::Sha1 => MacState::Sha1(self.keyed_sha1.clone()),
            Algorithm::Sha256 => MacState::Sha256(self.keyed.clone()),
            Algorithm::Sha512 => MacState::Sha512(self.keyed_sha512.clone()),
        }
    }

    /// The provider's public key, for asymmetric schemes.
    pub(crate) fn public_key(&self) -> Option<&[u8]> {
        self.public_key.as_deref()
    }

    /// The SHA-256 digest of the key, compared (in constant time) with the digest of a
    /// token a request carries.
    pub(crate) fn token_digest(&self) -> &[u8; 32] {
        &self.token_digest
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
