//! Helpers shared by the scheme files: header access, timestamps and constant-time tag
//! comparison.

use base64::Engine as _;
use std::sync::atomic::{AtomicU64, Ordering};

use http::header::AsHeaderName;
use http::HeaderMap;
use subtle::ConstantTimeEq;

use super::scheme::VerifyError;
use super::secret::{Secret, Tag, BASE64};

/// The first value of header `name`, trimmed. `Ok(None)` when absent or empty;
/// `InvalidSignature` when it is not visible ASCII.
pub(crate) fn header_str(
    headers: &HeaderMap,
    name: impl AsHeaderName,
) -> Result<Option<&str>, VerifyError> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => {
            let s = v
                .to_str()
                .map_err(|_| VerifyError::InvalidSignature)?
                .trim();
            Ok((!s.is_empty()).then_some(s))
        }
    }
}

/// Like [`header_str`], but absence is `MissingSignature`.
pub(crate) fn required_header(
    headers: &HeaderMap,
    name: impl AsHeaderName,
) -> Result<&str, VerifyError> {
    header_str(headers, name)?.ok_or(VerifyError::MissingSignature)
}

/// A unix timestamp in plain decimal digits; anything else is `InvalidSignature`.
pub(crate) fn parse_timestamp(s: &str) -> Result<i64, VerifyError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(VerifyError::InvalidSignature);
    }
    s.parse().map_err(|_| VerifyError::InvalidSignature)
}

/// Refuses timestamps more than `tolerance_secs` away from `now`, in either direction.
pub(crate) fn check_tolerance(ts: i64, now: i64, tolerance_secs: u64) -> Result<(), VerifyError> {
    if ts.abs_diff(now) > tolerance_secs {
        Err(VerifyError::TimestampOutOfTolerance)
    } else {
        Ok(())
    }
}

/// Constant-time equality of two tags.
pub(crate) fn tags_equal(a: &Tag, b: &Tag) -> bool {
    a.ct_eq(b).into()
}

/// Decodes a 64-digit hex tag (either case); `None` for anything else.
pub(crate) fn decode_hex_tag(s: &str) -> Option<Tag> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

/// Decodes a base64 tag of exactly 32 bytes (padding optional); `None` for anything else.
pub(crate) fn decode_base64_tag(s: &str) -> Option<Tag> {
    let mut buf = [0u8; 48];
    let n = BASE64.decode_slice(s, &mut buf).ok()?;
    buf.get(..n)?.try_into().ok()
}

/// Whether any secret's tag over the concatenation of `parts` satisfies `matches`
/// (which compares against the request's candidate signatures in constant time).
pub(crate) fn any_secret_matches(
    secrets: &[Secret],
    parts: &[&[u8]],
    mut matches: impl FnMut(&Tag) -> bool,
) -> bool {
    secrets.iter().any(|s| matches(&s.tag(parts)))
}

/// Distinguishes ids generated in the same second by the same process.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// `msg_<hex now><hex pid><hex counter>`: unique enough for `hookrelay send` (distinct
/// across calls in a process and across processes alive at the same second) without
/// randomness.
pub(crate) fn generated_id(now: i64) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("msg_{now:x}{:08x}{n:x}", std::process::id())
}
