//! Tests of the `github` preset (its entry is in `preset.rs`, verified by the generic
//! engine): `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(body)>`, no timestamp.
//!
//! GitHub signs only the body, so a captured delivery can be replayed verbatim; the
//! relay's dedup on `X-GitHub-Delivery` (returned as the delivery id) is what absorbs
//! such replays and GitHub's own redeliveries.

use http::HeaderMap;

use super::scheme::{Verified, VerifyError};

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::{sign, SchemeKind};
    use super::*;

    // docs.github.com, "Validating webhook deliveries".
    const SECRET: &str = "It's a Secret to Everybody";
    const BODY: &[u8] = b"Hello, World!";
    const SIG: &str = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    fn req(sig: &[u8]) -> HeaderMap {
        headers(&[
            ("X-Hub-Signature-256", sig),
            ("X-GitHub-Delivery", b"72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        ])
    }

    #[test]
    fn published_vector() {
        let v = verifier(SchemeKind::Github, &[SECRET]);
        let got = v.verify(&req(SIG.as_bytes()), BODY, 0).unwrap();
        assert_eq!(
            got.delivery_id.as_deref(),
            Some("72d3162e-cc78-11e3-81ab-4c9367dc0958")
        );
        let s = &v.secrets[0];
        assert_eq!(
            value_of(
                &sign(SchemeKind::Github, None, s, BODY, 0, None),
                "x-hub-signature-256"
            ),
            SIG
        );
    }

    #[test]
    fn tampered_wrong_secret_rotation() {
        let v = verifier(SchemeKind::Github, &[SECRET]);
        assert_eq!(
            v.verify(&req(SIG.as_bytes()), b"Hello, World?", 0),
            Err(VerifyError::InvalidSignature)
        );
        let wrong = verifier(SchemeKind::Github, &["nope"]);
        assert_eq!(
            wrong.verify(&req(SIG.as_bytes()), BODY, 0),
            Err(VerifyError::InvalidSignature)
        );
        let rotated = verifier(SchemeKind::Github, &["old", SECRET]);
        assert!(rotated.verify(&req(SIG.as_bytes()), BODY, 0).is_ok());
    }

    #[test]
    fn no_timestamp_involved() {
        let v = verifier(SchemeKind::Github, &[SECRET]);
        assert!(v.verify(&req(SIG.as_bytes()), BODY, i64::MAX).is_ok());
        assert!(v.verify(&req(SIG.as_bytes()), BODY, i64::MIN).is_ok());
    }

    #[test]
    fn missing_and_malformed() {
        let v = verifier(SchemeKind::Github, &[SECRET]);
        let only_delivery = headers(&[("X-GitHub-Delivery", b"abc")]);
        assert_eq!(
            v.verify(&only_delivery, BODY, 0),
            Err(VerifyError::MissingSignature)
        );
        // The legacy SHA-1 header alone is not enough.
        let sha1 = headers(&[(
            "X-Hub-Signature",
            b"sha1=0000000000000000000000000000000000000000",
        )]);
        assert_eq!(v.verify(&sha1, BODY, 0), Err(VerifyError::MissingSignature));
        for bad in [
            &b"garbage"[..],
            b"sha256=xyz",
            b"sha1=abc",
            b"sha256=\xff\xfe",
            b"\x80\x81",
        ] {
            assert_eq!(
                v.verify(&req(bad), BODY, 0),
                Err(VerifyError::InvalidSignature),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn unreadable_delivery_id_is_ignored() {
        let v = verifier(SchemeKind::Github, &[SECRET]);
        let h = headers(&[
            ("X-Hub-Signature-256", SIG.as_bytes()),
            ("X-GitHub-Delivery", b"\xff"),
        ]);
        assert_eq!(v.verify(&h, BODY, 0), Ok(Verified::default()));
    }

    #[test]
    fn round_trip() {
        let v = verifier(SchemeKind::Github, &["k"]);
        let signed = sign(
            SchemeKind::Github,
            None,
            &v.secrets[0],
            b"{}",
            0,
            Some("d-1"),
        );
        let got = v.verify(&from_signed(&signed), b"{}", 99).unwrap();
        assert_eq!(got.delivery_id.as_deref(), Some("d-1"));
        let signed = sign(SchemeKind::Github, None, &v.secrets[0], b"{}", 0, None);
        assert_eq!(signed.len(), 1);
        assert_eq!(
            v.verify(&from_signed(&signed), b"{}", 0),
            Ok(Verified::default())
        );
    }
}
