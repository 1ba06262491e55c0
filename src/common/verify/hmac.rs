//! Generic HMAC-SHA256 over the body (scheme `hmac`): `<header>: <prefix><hex|base64>`.
//!
//! Many providers (Shopify, Linear, GitLab-style custom senders, ...) sign the bare
//! body and differ only in header name, prefix and encoding, so one configurable scheme
//! covers them. GitHub is the same construction with fixed parameters and reuses
//! [`check_body`].

use http::{HeaderMap, HeaderName};

use super::scheme::{Encoding, HmacParams, Verified, VerifyError};
use super::secret::{Secret, BASE64};
use super::util::{
    any_secret_matches, decode_base64_tag, decode_hex_tag, required_header, tags_equal,
};
use base64::Engine as _;

/// Checks `params.header` against HMAC-SHA256(body) under any of `secrets`.
pub(crate) fn verify(
    params: &HmacParams,
    headers: &HeaderMap,
    body: &[u8],
    secrets: &[Secret],
) -> Result<Verified, VerifyError> {
    check_body(
        headers,
        &params.header,
        &params.prefix,
        params.encoding,
        body,
        secrets,
    )?;
    Ok(Verified::default())
}

/// Verifies a `<prefix><encoded MAC of body>` header. The prefix is matched ASCII
/// case-insensitively; a missing prefix or a badly encoded MAC is `InvalidSignature`.
pub(crate) fn check_body(
    headers: &HeaderMap,
    header: &HeaderName,
    prefix: &str,
    encoding: Encoding,
    body: &[u8],
    secrets: &[Secret],
) -> Result<(), VerifyError> {
    let value = required_header(headers, header)?;
    let encoded = value
        .get(..prefix.len())
        .filter(|p| p.eq_ignore_ascii_case(prefix))
        .and_then(|_| value.get(prefix.len()..))
        .ok_or(VerifyError::InvalidSignature)?;
    let given = match encoding {
        Encoding::Hex => decode_hex_tag(encoded),
        Encoding::Base64 => decode_base64_tag(encoded),
    }
    .ok_or(VerifyError::InvalidSignature)?;
    if any_secret_matches(secrets, &[body], |t| tags_equal(t, &given)) {
        Ok(())
    } else {
        Err(VerifyError::InvalidSignature)
    }
}

/// `<prefix><encoded MAC>` for `body`.
pub(crate) fn encode_body_mac(secret: &Secret, body: &[u8], prefix: &str, enc: Encoding) -> String {
    let tag = secret.tag(&[body]);
    let encoded = match enc {
        Encoding::Hex => hex::encode(tag),
        Encoding::Base64 => BASE64.encode(tag),
    };
    format!("{prefix}{encoded}")
}

/// The one header that makes `body` pass [`verify`].
pub(crate) fn sign(params: &HmacParams, secret: &Secret, body: &[u8]) -> Vec<(HeaderName, String)> {
    let value = encode_body_mac(secret, body, &params.prefix, params.encoding);
    vec![(params.header.clone(), value)]
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::{sign, SchemeKind, Verifier};
    use super::*;

    const BODY: &[u8] = br#"{"id":1}"#;
    // Cross-checked with Python's hmac + base64 (Shopify-style).
    const VECTOR_B64: &str = "plW8VGqq0nDMIEhDqaNNW99asdUCy7EIqLZVcQwtAZ0=";
    const VECTOR_HEX: &str = "a655bc546aaad270cc204843a9a34d5bdf5ab1d502cbb108a8b655710c2d019d";

    fn params(prefix: &str, encoding: Encoding) -> HmacParams {
        HmacParams {
            header: HeaderName::from_static("x-signature"),
            prefix: prefix.to_string(),
            encoding,
        }
    }

    fn v(secrets: &[&str], p: HmacParams) -> Verifier {
        Verifier {
            hmac: Some(p),
            ..verifier(SchemeKind::Hmac, secrets)
        }
    }

    fn check(ver: &Verifier, value: &[u8], body: &[u8]) -> Result<Verified, VerifyError> {
        ver.verify(&headers(&[("X-Signature", value)]), body, 0)
    }

    #[test]
    fn published_style_vectors() {
        let b64 = v(&["shop-secret"], params("", Encoding::Base64));
        assert_eq!(
            check(&b64, VECTOR_B64.as_bytes(), BODY),
            Ok(Verified::default())
        );
        let unpadded = VECTOR_B64.trim_end_matches('=');
        assert!(check(&b64, unpadded.as_bytes(), BODY).is_ok());
        let hx = v(&["shop-secret"], params("sha256=", Encoding::Hex));
        let val = format!("sha256={VECTOR_HEX}");
        assert!(check(&hx, val.as_bytes(), BODY).is_ok());
        // Hex and prefix are case-insensitive.
        let upper = format!("SHA256={}", VECTOR_HEX.to_uppercase());
        assert!(check(&hx, upper.as_bytes(), BODY).is_ok());
    }

    #[test]
    fn tampered_wrong_secret_rotation() {
        let p = params("", Encoding::Base64);
        let ok = v(&["shop-secret"], p.clone());
        assert_eq!(
            check(&ok, VECTOR_B64.as_bytes(), br#"{"id":2}"#),
            Err(VerifyError::InvalidSignature)
        );
        let wrong = v(&["other"], p.clone());
        assert_eq!(
            check(&wrong, VECTOR_B64.as_bytes(), BODY),
            Err(VerifyError::InvalidSignature)
        );
        let rotated = v(&["other", "shop-secret"], p);
        assert!(check(&rotated, VECTOR_B64.as_bytes(), BODY).is_ok());
    }

    #[test]
    fn missing_and_malformed() {
        let ver = v(&["shop-secret"], params("sha256=", Encoding::Hex));
        let none = ver.verify(&headers(&[("x-other", b"x")]), BODY, 0);
        assert_eq!(none, Err(VerifyError::MissingSignature));
        assert_eq!(check(&ver, b"", BODY), Err(VerifyError::MissingSignature));
        for bad in [
            &b"garbage"[..],
            b"sha256=",
            b"sha256=zz",
            b"sha256=abcd",
            VECTOR_HEX.as_bytes(), // prefix missing
            b"sha256=\xff\xfe\xfd",
            b"\xc3\xa9",
        ] {
            assert_eq!(
                check(&ver, bad, BODY),
                Err(VerifyError::InvalidSignature),
                "{bad:?}"
            );
        }
        let b64 = v(&["shop-secret"], params("", Encoding::Base64));
        assert_eq!(
            check(&b64, b"not base64!!", BODY),
            Err(VerifyError::InvalidSignature)
        );
        assert_eq!(
            check(&b64, VECTOR_HEX.as_bytes(), BODY),
            Err(VerifyError::InvalidSignature)
        );
    }

    #[test]
    fn round_trip() {
        for p in [
            params("", Encoding::Base64),
            params("sha256=", Encoding::Hex),
            params("v1=", Encoding::Base64),
        ] {
            let ver = v(&["k1"], p.clone());
            let h = from_signed(&sign(
                SchemeKind::Hmac,
                Some(&p),
                &ver.secrets[0],
                BODY,
                0,
                None,
            ));
            assert_eq!(ver.verify(&h, BODY, 12345), Ok(Verified::default()));
            assert_eq!(
                ver.verify(&h, b"other", 0),
                Err(VerifyError::InvalidSignature)
            );
        }
    }
}
