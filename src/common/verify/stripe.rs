//! Tests of the `stripe` preset (its entry is in `preset.rs`, verified by the generic
//! engine): `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]` over `"{t}.{body}"`.
//!
//! The key is the whole configured `whsec_...` string (Stripe does not decode it).
//! Stripe sends several `v1=` entries while a secret is being rolled, and may add
//! entries of other versions (`v0=`), which are ignored. Because the timestamp lives
//! inside the signature header, a header without `t=` (or without any `v1=`) is
//! malformed: `InvalidSignature`.

use http::HeaderMap;

use super::scheme::{Verified, VerifyError};

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::{sign, SchemeKind};
    use super::*;

    // Stripe publishes no fixed vector; this one is cross-checked with Python's hmac:
    // hmac.new(b"whsec_test_secret", b'1700000000.{"id":"evt_1"}', sha256).hexdigest()
    const SECRET: &str = "whsec_test_secret";
    const TS: i64 = 1_700_000_000;
    const BODY: &[u8] = br#"{"id":"evt_1"}"#;
    const V1: &str = "248a374f50f943a28b0f6ab50faf9a7e7e29b710fa26df9fb1618b9bf8ea9c9a";

    fn req(value: &str) -> HeaderMap {
        headers(&[("Stripe-Signature", value.as_bytes())])
    }

    fn good() -> String {
        format!("t={TS},v1={V1}")
    }

    #[test]
    fn known_vector() {
        let v = verifier(SchemeKind::Stripe, &[SECRET]);
        assert_eq!(v.verify(&req(&good()), BODY, TS), Ok(Verified::default()));
        let signed = sign(SchemeKind::Stripe, None, &v.secrets[0], BODY, TS, None);
        assert_eq!(value_of(&signed, "stripe-signature"), good());
    }

    #[test]
    fn several_entries_and_other_versions() {
        let v = verifier(SchemeKind::Stripe, &[SECRET]);
        let zero = "0".repeat(64);
        let value = format!(
            "t={TS}, v0={V1}, v1={zero}, v1=nothex, v1={}",
            V1.to_uppercase()
        );
        assert!(v.verify(&req(&value), BODY, TS).is_ok());
        // A matching v0 alone does not count.
        let v0_only = format!("t={TS},v0={V1}");
        assert_eq!(
            v.verify(&req(&v0_only), BODY, TS),
            Err(VerifyError::InvalidSignature)
        );
    }

    #[test]
    fn tampered_wrong_secret_rotation() {
        let v = verifier(SchemeKind::Stripe, &[SECRET]);
        assert_eq!(
            v.verify(&req(&good()), br#"{"id":"evt_2"}"#, TS),
            Err(VerifyError::InvalidSignature)
        );
        let moved = format!("t={},v1={V1}", TS + 1);
        assert_eq!(
            v.verify(&req(&moved), BODY, TS),
            Err(VerifyError::InvalidSignature)
        );
        let wrong = verifier(SchemeKind::Stripe, &["whsec_other"]);
        assert_eq!(
            wrong.verify(&req(&good()), BODY, TS),
            Err(VerifyError::InvalidSignature)
        );
        let rotated = verifier(SchemeKind::Stripe, &["whsec_other", SECRET]);
        assert!(rotated.verify(&req(&good()), BODY, TS).is_ok());
    }

    #[test]
    fn stale_and_future() {
        let v = verifier(SchemeKind::Stripe, &[SECRET]);
        assert!(v.verify(&req(&good()), BODY, TS + 300).is_ok());
        assert_eq!(
            v.verify(&req(&good()), BODY, TS + 301),
            Err(VerifyError::TimestampOutOfTolerance)
        );
        assert_eq!(
            v.verify(&req(&good()), BODY, TS - 301),
            Err(VerifyError::TimestampOutOfTolerance)
        );
        let wrong = verifier(SchemeKind::Stripe, &["whsec_other"]);
        assert_eq!(
            wrong.verify(&req(&good()), BODY, TS + 10_000),
            Err(VerifyError::InvalidSignature)
        );
    }

    #[test]
    fn missing_and_malformed() {
        let v = verifier(SchemeKind::Stripe, &[SECRET]);
        let other = headers(&[("X-Hub-Signature-256", b"sha256=00")]);
        assert_eq!(
            v.verify(&other, BODY, TS),
            Err(VerifyError::MissingSignature)
        );
        assert_eq!(
            v.verify(&req(""), BODY, TS),
            Err(VerifyError::MissingSignature)
        );
        let bad = [
            "garbage".to_string(),
            format!("v1={V1}"),             // no t
            format!("t={TS}"),              // no v1
            format!("t=yesterday,v1={V1}"), // bad t
            format!("t={TS},v1=abc"),       // short hex
            ",,,==,t,v1".to_string(),
        ];
        for b in &bad {
            assert_eq!(
                v.verify(&req(b), BODY, TS),
                Err(VerifyError::InvalidSignature),
                "{b}"
            );
        }
        let non_utf8 = headers(&[("Stripe-Signature", b"t=1700000000,v1=\xff\xfe")]);
        assert_eq!(
            v.verify(&non_utf8, BODY, TS),
            Err(VerifyError::InvalidSignature)
        );
    }

    #[test]
    fn round_trip() {
        let v = verifier(SchemeKind::Stripe, &["whsec_abc"]);
        let h = from_signed(&sign(
            SchemeKind::Stripe,
            None,
            &v.secrets[0],
            b"{}",
            TS,
            None,
        ));
        assert_eq!(v.verify(&h, b"{}", TS - 10), Ok(Verified::default()));
    }
}
