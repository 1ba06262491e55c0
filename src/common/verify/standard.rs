//! Standard Webhooks (and Svix, its origin): `webhook-id`, `webhook-timestamp` and
//! `webhook-signature: v1,<base64> [v1,<base64>...]` over `"{id}.{ts}.{body}"`.
//!
//! The `svix-id`, `svix-timestamp` and `svix-signature` names are accepted as
//! alternatives, header by header (the `webhook-` name wins when both are present).
//! The key is the base64-decoded part of `whsec_<base64>` (see
//! [`Secret::for_scheme`](super::Secret::for_scheme)). Signature entries are separated
//! by spaces; entries of other versions (e.g. `v1a,` asymmetric signatures) are
//! ignored. The message id is signed, so it is a trustworthy delivery id for dedup.

use base64::Engine as _;
use http::{HeaderMap, HeaderName};

use super::scheme::{Verified, VerifyError};
use super::secret::{Secret, BASE64};
use super::util::{
    any_secret_matches, check_tolerance, decode_base64_tag, generated_id, header_str,
    parse_timestamp, tags_equal,
};

const ID: HeaderName = HeaderName::from_static("webhook-id");
const TIMESTAMP: HeaderName = HeaderName::from_static("webhook-timestamp");
const SIGNATURE: HeaderName = HeaderName::from_static("webhook-signature");
const SVIX_ID: HeaderName = HeaderName::from_static("svix-id");
const SVIX_TIMESTAMP: HeaderName = HeaderName::from_static("svix-timestamp");
const SVIX_SIGNATURE: HeaderName = HeaderName::from_static("svix-signature");

/// The value of `name`, else of its `svix-` alternative; `MissingSignature` if neither.
fn either<'a>(
    h: &'a HeaderMap,
    name: &HeaderName,
    alt: &HeaderName,
) -> Result<&'a str, VerifyError> {
    match header_str(h, name)? {
        Some(v) => Ok(v),
        None => header_str(h, alt)?.ok_or(VerifyError::MissingSignature),
    }
}

/// The base64 parts of the `v1,` entries of a signature header.
fn v1_entries(header: &str) -> impl Iterator<Item = &str> {
    header
        .split_ascii_whitespace()
        .filter_map(|e| e.split_once(','))
        .filter(|(version, _)| *version == "v1")
        .map(|(_, sig)| sig)
}

/// Checks any `v1` signature against any secret, then the timestamp's tolerance.
/// The delivery id is the (signed) message id.
pub(crate) fn verify(
    headers: &HeaderMap,
    body: &[u8],
    secrets: &[Secret],
    tolerance_secs: u64,
    now: i64,
) -> Result<Verified, VerifyError> {
    let id = either(headers, &ID, &SVIX_ID)?;
    let ts_text = either(headers, &TIMESTAMP, &SVIX_TIMESTAMP)?;
    let sigs = either(headers, &SIGNATURE, &SVIX_SIGNATURE)?;
    let ts = parse_timestamp(ts_text)?;
    if v1_entries(sigs).next().is_none() {
        return Err(VerifyError::InvalidSignature);
    }
    let parts: [&[u8]; 5] = [id.as_bytes(), b".", ts_text.as_bytes(), b".", body];
    let matched = any_secret_matches(secrets, &parts, |tag| {
        v1_entries(sigs)
            .filter_map(decode_base64_tag)
            .any(|given| tags_equal(tag, &given))
    });
    if !matched {
        return Err(VerifyError::InvalidSignature);
    }
    check_tolerance(ts, now, tolerance_secs)?;
    Ok(Verified {
        delivery_id: Some(id.to_owned()),
    })
}

/// `webhook-id` (the given one, or a generated `msg_...`), `webhook-timestamp` and
/// `webhook-signature: v1,<base64>`.
pub(crate) fn sign(
    secret: &Secret,
    body: &[u8],
    now: i64,
    delivery_id: Option<&str>,
) -> Vec<(HeaderName, String)> {
    let id = delivery_id.map_or_else(|| generated_id(now), str::to_owned);
    let ts = now.to_string();
    let tag = secret.tag(&[id.as_bytes(), b".", ts.as_bytes(), b".", body]);
    vec![
        (ID, id),
        (TIMESTAMP, ts),
        (SIGNATURE, format!("v1,{}", BASE64.encode(tag))),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::{sign, SchemeKind};
    use super::*;

    // The example in the Standard Webhooks specification (and Svix's docs).
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const MSG_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn req(prefix: &str, id: &[u8], ts: &[u8], sig: &[u8]) -> HeaderMap {
        headers(&[
            (format!("{prefix}-id").as_str(), id),
            (format!("{prefix}-timestamp").as_str(), ts),
            (format!("{prefix}-signature").as_str(), sig),
        ])
    }

    fn doc_req(prefix: &str, sig: &str) -> HeaderMap {
        req(
            prefix,
            MSG_ID.as_bytes(),
            TS.to_string().as_bytes(),
            sig.as_bytes(),
        )
    }

    #[test]
    fn published_vector() {
        let v = verifier(SchemeKind::Standard, &[SECRET]);
        for prefix in ["webhook", "svix", "Webhook"] {
            let got = v.verify(&doc_req(prefix, SIG), BODY, TS).unwrap();
            assert_eq!(got.delivery_id.as_deref(), Some(MSG_ID));
        }
        let signed = sign(
            SchemeKind::Standard,
            None,
            &v.secrets[0],
            BODY,
            TS,
            Some(MSG_ID),
        );
        assert_eq!(value_of(&signed, "webhook-signature"), SIG);
        assert_eq!(value_of(&signed, "webhook-id"), MSG_ID);
        assert_eq!(value_of(&signed, "webhook-timestamp"), "1614265330");
        // The whsec_ prefix is optional.
        let bare = verifier(SchemeKind::Standard, &["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]);
        assert!(bare.verify(&doc_req("webhook", SIG), BODY, TS).is_ok());
    }

    #[test]
    fn several_entries_and_other_versions() {
        let v = verifier(SchemeKind::Standard, &[SECRET]);
        let zero = BASE64.encode([0u8; 32]);
        let many = format!("v1a,{} v2,xyz  v1,{zero} v1,!!! garbage {SIG}", &SIG[3..]);
        assert!(v.verify(&doc_req("webhook", &many), BODY, TS).is_ok());
        // The right MAC under another version tag does not count.
        let v1a = format!("v1a,{}", &SIG[3..]);
        assert_eq!(
            v.verify(&doc_req("webhook", &v1a), BODY, TS),
            Err(VerifyError::InvalidSignature)
        );
    }

    #[test]
    fn mixed_header_names() {
        let v = verifier(SchemeKind::Standard, &[SECRET]);
        let ts = TS.to_string();
        let h = headers(&[
            ("svix-id", MSG_ID.as_bytes()),
            ("webhook-timestamp", ts.as_bytes()),
            ("svix-signature", SIG.as_bytes()),
        ]);
        assert!(v.verify(&h, BODY, TS).is_ok());
    }

    #[test]
    fn tampered_wrong_secret_rotation() {
        let v = verifier(SchemeKind::Standard, &[SECRET]);
        assert_eq!(
            v.verify(&doc_req("webhook", SIG), br#"{"test": 1}"#, TS),
            Err(VerifyError::InvalidSignature)
        );
        let other_id = req(
            "webhook",
            b"msg_other",
            TS.to_string().as_bytes(),
            SIG.as_bytes(),
        );
        assert_eq!(
            v.verify(&other_id, BODY, TS),
            Err(VerifyError::InvalidSignature)
        );
        let wrong = verifier(SchemeKind::Standard, &["whsec_dGhlIHdyb25nIGtleQ=="]);
        assert_eq!(
            wrong.verify(&doc_req("webhook", SIG), BODY, TS),
            Err(VerifyError::InvalidSignature)
        );
        let rotated = verifier(
            SchemeKind::Standard,
            &["whsec_dGhlIHdyb25nIGtleQ==", SECRET],
        );
        assert!(rotated.verify(&doc_req("webhook", SIG), BODY, TS).is_ok());
    }

    #[test]
    fn stale_and_future() {
        let v = verifier(SchemeKind::Standard, &[SECRET]);
        let h = doc_req("webhook", SIG);
        assert!(v.verify(&h, BODY, TS - 300).is_ok());
        assert_eq!(
            v.verify(&h, BODY, TS + 301),
            Err(VerifyError::TimestampOutOfTolerance)
        );
        assert_eq!(
            v.verify(&h, BODY, TS - 301),
            Err(VerifyError::TimestampOutOfTolerance)
        );
        let wrong = verifier(SchemeKind::Standard, &["whsec_dGhlIHdyb25nIGtleQ=="]);
        assert_eq!(
            wrong.verify(&h, BODY, 0),
            Err(VerifyError::InvalidSignature)
        );
    }

    #[test]
    fn missing_and_malformed() {
        let v = verifier(SchemeKind::Standard, &[SECRET]);
        let ts = TS.to_string();
        let (id, t, s) = (MSG_ID.as_bytes(), ts.as_bytes(), SIG.as_bytes());
        for h in [
            headers(&[("webhook-timestamp", t), ("webhook-signature", s)]),
            headers(&[("webhook-id", id), ("webhook-signature", s)]),
            headers(&[("webhook-id", id), ("webhook-timestamp", t)]),
            headers(&[
                ("webhook-id", id),
                ("webhook-timestamp", t),
                ("webhook-signature", b""),
            ]),
        ] {
            assert_eq!(v.verify(&h, BODY, TS), Err(VerifyError::MissingSignature));
        }
        for bad_sig in [
            &b"garbage"[..],
            b"v1,",
            b"v1,abc",
            b"v1,!!!!",
            b"v1 g0hM",
            b"v1,\xff\xfe",
            b"\xe9",
        ] {
            let h = req("webhook", id, t, bad_sig);
            assert_eq!(
                v.verify(&h, BODY, TS),
                Err(VerifyError::InvalidSignature),
                "{bad_sig:?}"
            );
        }
        for bad_ts in [&b"now"[..], b"1614265330.0", b"\xff"] {
            let h = req("webhook", id, bad_ts, s);
            assert_eq!(
                v.verify(&h, BODY, TS),
                Err(VerifyError::InvalidSignature),
                "{bad_ts:?}"
            );
        }
        let h = req("webhook", b"msg_\xff", t, s);
        assert_eq!(v.verify(&h, BODY, TS), Err(VerifyError::InvalidSignature));
    }

    #[test]
    fn round_trip_and_generated_ids() {
        let v = verifier(
            SchemeKind::Standard,
            &["whsec_dGVzdC1rZXktMTIzNDU2Nzg5MA=="],
        );
        let s = &v.secrets[0];
        let a = sign(SchemeKind::Standard, None, s, b"{}", TS, None);
        let b = sign(SchemeKind::Standard, None, s, b"{}", TS, None);
        let (ida, idb) = (value_of(&a, "webhook-id"), value_of(&b, "webhook-id"));
        assert!(ida.starts_with("msg_") && ida != idb);
        let got = v.verify(&from_signed(&a), b"{}", TS + 1).unwrap();
        assert_eq!(got.delivery_id.as_deref(), Some(ida));
        let c = sign(SchemeKind::Standard, None, s, b"{}", TS, Some("evt-7"));
        let got = v.verify(&from_signed(&c), b"{}", TS).unwrap();
        assert_eq!(got.delivery_id.as_deref(), Some("evt-7"));
    }
}
