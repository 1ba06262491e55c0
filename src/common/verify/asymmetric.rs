//! The check Ed25519 and ECDSA schemes share once their headers are decoded: any
//! configured public key verifies the signature over the signed message, and only then
//! is the signed timestamp held to the tolerance (a leaf: `ed25519.rs` and `ecdsa.rs`
//! use it).

use ring::signature::{UnparsedPublicKey, VerificationAlgorithm};

use super::scheme::{Verified, VerifyError};
use super::secret::Secret;
use super::util::check_tolerance;

/// One decoded asymmetric signature: what was signed, the signature, and the signed
/// timestamp (unix seconds).
pub(crate) struct Signed<'a> {
    /// The signed bytes (timestamp, separator, body).
    pub message: &'a [u8],
    /// The decoded signature.
    pub signature: &'a [u8],
    /// The signed timestamp.
    pub timestamp: i64,
}

/// Accepts when a public key in `secrets` verifies `signed` under `algorithm` and its
/// timestamp is within `tolerance_secs` of `now`.
pub(crate) fn verify(
    algorithm: &'static dyn VerificationAlgorithm,
    signed: &Signed<'_>,
    secrets: &[Secret],
    tolerance_secs: u64,
    now: i64,
) -> Result<Verified, VerifyError> {
    let matched = secrets.iter().filter_map(Secret::public_key).any(|pk| {
        UnparsedPublicKey::new(algorithm, pk)
            .verify(signed.message, signed.signature)
            .is_ok()
    });
    if !matched {
        return Err(VerifyError::InvalidSignature);
    }
    check_tolerance(signed.timestamp, now, tolerance_secs)?;
    Ok(Verified::default())
}
