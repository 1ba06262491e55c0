//! Generic HMAC (scheme `hmac`): `<header>: <prefix><hex|base64>` over a configurable
//! signed content, with SHA-1, SHA-256 or SHA-512.
//!
//! Many providers sign the bare body and differ only in header name, prefix and
//! encoding; others add a timestamp or a message id to the signed content. The channel's
//! [`HmacParams`] become a [`Spec`] like any preset's, and the generic engine does the
//! rest.

use super::scheme::HmacParams;
use super::spec::{Layout, Spec, Timestamp, TsFormat, TsSource};

/// The engine's view of `params`. `{timestamp}` and `{id}` read their headers only when
/// the template uses them (config validation refuses a template field without its
/// header, and a header without its field).
pub(crate) fn spec(params: &HmacParams) -> Spec<'_> {
    let uses = |field: &str| params.template.contains(field);
    Spec {
        header: params.header.as_str(),
        layout: Layout::Single {
            prefix: &params.prefix,
        },
        encoding: params.encoding,
        algorithm: params.algorithm,
        template: &params.template,
        timestamp: params
            .timestamp_header
            .as_ref()
            .filter(|_| uses("{timestamp}"))
            .map(|h| Timestamp {
                source: TsSource::Header(h.as_str()),
                format: TsFormat::UnixSecs,
                default_tolerance_secs: super::preset::DEFAULT_TOLERANCE_SECS,
            }),
        id_header: params
            .id_header
            .as_ref()
            .filter(|_| uses("{id}"))
            .map(|h| h.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::{sign, Algorithm, Encoding, SchemeKind, Verified, Verifier, VerifyError};
    use super::*;
    use http::HeaderName;

    const BODY: &[u8] = br#"{"id":1}"#;
    // Cross-checked with Python's hmac + base64 (Shopify-style).
    const VECTOR_B64: &str = "plW8VGqq0nDMIEhDqaNNW99asdUCy7EIqLZVcQwtAZ0=";
    const VECTOR_HEX: &str = "a655bc546aaad270cc204843a9a34d5bdf5ab1d502cbb108a8b655710c2d019d";

    fn params(prefix: &str, encoding: Encoding) -> HmacParams {
        HmacParams::new(
            HeaderName::from_static("x-signature"),
            prefix.to_string(),
            encoding,
        )
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

    #[test]
    fn algorithms_and_templates() {
        // Python: hmac.new(b"k1", b"id-1.1700000000.{\"id\":1}", hashlib.sha512).hexdigest()
        let mut p = params("", Encoding::Hex);
        p.algorithm = Algorithm::Sha512;
        p.template = "{id}.{timestamp}.{body}".into();
        p.timestamp_header = Some(HeaderName::from_static("x-ts"));
        p.id_header = Some(HeaderName::from_static("x-id"));
        let ver = v(&["k1"], p.clone());
        let signed = sign(
            SchemeKind::Hmac,
            Some(&p),
            &ver.secrets[0],
            BODY,
            1_700_000_000,
            Some("id-1"),
        );
        let h = from_signed(&signed);
        assert_eq!(value_of(&signed, "x-ts"), "1700000000");
        assert_eq!(value_of(&signed, "x-id"), "id-1");
        assert_eq!(
            value_of(&signed, "x-signature"),
            "95ed7a337b96061f853d9acd1a1c858832c243d91a2698b2668ce5c021f0ce6d\
             6d8be250810648d4a17761bf4bc95a4c09015023a56fe86f277a94d795a676fa"
        );
        let got = ver.verify(&h, BODY, 1_700_000_000).unwrap();
        assert_eq!(got.delivery_id.as_deref(), Some("id-1"));
        assert_eq!(
            ver.verify(&h, BODY, 1_700_000_301),
            Err(VerifyError::TimestampOutOfTolerance)
        );
        let mut no_ts = h.clone();
        no_ts.remove("x-ts");
        assert_eq!(
            ver.verify(&no_ts, BODY, 1_700_000_000),
            Err(VerifyError::MissingSignature)
        );
        for alg in [Algorithm::Sha1, Algorithm::Sha256] {
            let mut q = p.clone();
            q.algorithm = alg;
            let other = v(&["k1"], q);
            assert_eq!(
                other.verify(&h, BODY, 1_700_000_000),
                Err(VerifyError::InvalidSignature)
            );
        }
    }
}
