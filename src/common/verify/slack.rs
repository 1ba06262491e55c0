//! Tests of the `slack` preset (its entry is in `preset.rs`, verified by the generic
//! engine): `X-Slack-Signature: v0=<hex>` over `"v0:{ts}:{body}"`, with the timestamp
//! in `X-Slack-Request-Timestamp`.
//!
//! The timestamp is signed, so the tolerance window bounds how long a captured request
//! can be replayed. It is checked after the signature (see the parent module).

use http::HeaderMap;

use super::scheme::{Verified, VerifyError};

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::{sign, SchemeKind};
    use super::*;

    // docs.slack.dev/authentication/verifying-requests-from-slack (worked example).
    // Note the command is `%2Fwebhook-collect`, as on Slack's page.
    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const TS: i64 = 1531420618;
    const BODY: &[u8] = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SIG: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    fn req(sig: &[u8], ts: &[u8]) -> HeaderMap {
        headers(&[
            ("X-Slack-Signature", sig),
            ("X-Slack-Request-Timestamp", ts),
        ])
    }

    fn doc_req() -> HeaderMap {
        req(SIG.as_bytes(), TS.to_string().as_bytes())
    }

    #[test]
    fn published_vector() {
        let v = verifier(SchemeKind::Slack, &[SECRET]);
        assert_eq!(v.verify(&doc_req(), BODY, TS + 60), Ok(Verified::default()));
        let signed = sign(SchemeKind::Slack, None, &v.secrets[0], BODY, TS, None);
        assert_eq!(value_of(&signed, "x-slack-signature"), SIG);
        assert_eq!(value_of(&signed, "x-slack-request-timestamp"), "1531420618");
    }

    #[test]
    fn tampered_wrong_secret_rotation() {
        let v = verifier(SchemeKind::Slack, &[SECRET]);
        assert_eq!(
            v.verify(&doc_req(), b"token=x", TS),
            Err(VerifyError::InvalidSignature)
        );
        // The timestamp is signed too.
        let moved = req(SIG.as_bytes(), b"1531420619");
        assert_eq!(
            v.verify(&moved, BODY, TS),
            Err(VerifyError::InvalidSignature)
        );
        let wrong = verifier(SchemeKind::Slack, &["nope"]);
        assert_eq!(
            wrong.verify(&doc_req(), BODY, TS),
            Err(VerifyError::InvalidSignature)
        );
        let rotated = verifier(SchemeKind::Slack, &["old", SECRET]);
        assert!(rotated.verify(&doc_req(), BODY, TS).is_ok());
    }

    #[test]
    fn stale_and_future() {
        let v = verifier(SchemeKind::Slack, &[SECRET]);
        assert!(v.verify(&doc_req(), BODY, TS + 300).is_ok());
        assert!(v.verify(&doc_req(), BODY, TS - 300).is_ok());
        assert_eq!(
            v.verify(&doc_req(), BODY, TS + 301),
            Err(VerifyError::TimestampOutOfTolerance)
        );
        assert_eq!(
            v.verify(&doc_req(), BODY, TS - 301),
            Err(VerifyError::TimestampOutOfTolerance)
        );
        // A forged request is invalid whatever its timestamp.
        let wrong = verifier(SchemeKind::Slack, &["nope"]);
        assert_eq!(
            wrong.verify(&doc_req(), BODY, TS + 10_000),
            Err(VerifyError::InvalidSignature)
        );
    }

    #[test]
    fn missing_and_malformed() {
        let v = verifier(SchemeKind::Slack, &[SECRET]);
        let ts = TS.to_string();
        let no_sig = headers(&[("X-Slack-Request-Timestamp", ts.as_bytes())]);
        assert_eq!(
            v.verify(&no_sig, BODY, TS),
            Err(VerifyError::MissingSignature)
        );
        let no_ts = headers(&[("X-Slack-Signature", SIG.as_bytes())]);
        assert_eq!(
            v.verify(&no_ts, BODY, TS),
            Err(VerifyError::MissingSignature)
        );
        for bad_ts in [
            &b"soon"[..],
            b"-1531420618",
            b"1531420618.5",
            b"\xff\xfe",
            b"99999999999999999999999",
        ] {
            assert_eq!(
                v.verify(&req(SIG.as_bytes(), bad_ts), BODY, TS),
                Err(VerifyError::InvalidSignature),
                "{bad_ts:?}"
            );
        }
        for bad_sig in [
            &b"garbage"[..],
            b"v0=",
            b"v0=abc",
            b"v1=a2114d57",
            b"v0=\xff\xfe",
            b"\xe9\xe9",
        ] {
            let h = req(bad_sig, ts.as_bytes());
            assert_eq!(
                v.verify(&h, BODY, TS),
                Err(VerifyError::InvalidSignature),
                "{bad_sig:?}"
            );
        }
    }

    #[test]
    fn round_trip() {
        let v = verifier(SchemeKind::Slack, &["k"]);
        let now = 1_700_000_000;
        let h = from_signed(&sign(
            SchemeKind::Slack,
            None,
            &v.secrets[0],
            b"a=b",
            now,
            None,
        ));
        assert_eq!(v.verify(&h, b"a=b", now + 5), Ok(Verified::default()));
    }
}
