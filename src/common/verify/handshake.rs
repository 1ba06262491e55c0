//! Provider handshakes the relay answers itself: which scheme has which, and the pure
//! computations their answers need (so `hookrelay send`, tests and the relay share
//! them). The HTTP side lives in `relay::handshake`.

use base64::Engine as _;

use super::scheme::SchemeKind;
use super::secret::{Secret, BASE64};

/// A handshake a provider performs before (or besides) sending events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeKind {
    /// Slack Events API `{"type":"url_verification","challenge":...}`, signed.
    SlackUrlVerification,
    /// Meta / WhatsApp `GET ?hub.mode=subscribe&hub.verify_token=...&hub.challenge=...`.
    MetaSubscribe,
    /// Zoom `{"event":"endpoint.url_validation","payload":{"plainToken":...}}`, signed.
    ZoomUrlValidation,
    /// Twitter / X CRC: `GET ?crc_token=...`.
    TwitterCrc,
    /// Asana's first `POST` carrying `X-Hook-Secret`.
    AsanaHookSecret,
    /// Okta event hook one-time `GET` with `x-okta-verification-challenge`.
    OktaVerification,
    /// Dropbox `GET ?challenge=...`.
    DropboxChallenge,
    /// Twitch EventSub `webhook_callback_verification`, signed.
    TwitchCallbackVerification,
    /// Microsoft Graph `?validationToken=...` (a channel opts in with
    /// `msgraph_validation = true`; Graph has no preset of its own).
    MsGraphValidation,
}

impl HandshakeKind {
    /// The handshake a preset has, answered by default on its channels.
    pub fn of_scheme(kind: SchemeKind) -> Option<HandshakeKind> {
        Some(match kind {
            SchemeKind::Slack => HandshakeKind::SlackUrlVerification,
            SchemeKind::Meta => HandshakeKind::MetaSubscribe,
            SchemeKind::Zoom => HandshakeKind::ZoomUrlValidation,
            SchemeKind::Twitter => HandshakeKind::TwitterCrc,
            SchemeKind::Asana => HandshakeKind::AsanaHookSecret,
            SchemeKind::Okta => HandshakeKind::OktaVerification,
            SchemeKind::Dropbox => HandshakeKind::DropboxChallenge,
            SchemeKind::Twitch => HandshakeKind::TwitchCallbackVerification,
            _ => return None,
        })
    }

    /// A short name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            HandshakeKind::SlackUrlVerification => "slack_url_verification",
            HandshakeKind::MetaSubscribe => "meta_subscribe",
            HandshakeKind::ZoomUrlValidation => "zoom_url_validation",
            HandshakeKind::TwitterCrc => "twitter_crc",
            HandshakeKind::AsanaHookSecret => "asana_hook_secret",
            HandshakeKind::OktaVerification => "okta_verification",
            HandshakeKind::DropboxChallenge => "dropbox_challenge",
            HandshakeKind::TwitchCallbackVerification => "twitch_callback_verification",
            HandshakeKind::MsGraphValidation => "msgraph_validation",
        }
    }

    /// Whether the provider sends it as a `GET` (the only `GET`s `/hooks/` answers).
    pub fn uses_get(self) -> bool {
        matches!(
            self,
            HandshakeKind::MetaSubscribe
                | HandshakeKind::TwitterCrc
                | HandshakeKind::OktaVerification
                | HandshakeKind::DropboxChallenge
        )
    }

    /// What the relay answers, for the README's preset table.
    pub fn describe(self) -> &'static str {
        match self {
            HandshakeKind::SlackUrlVerification => "`url_verification`: signature checked, then `{\"challenge\":...}`",
            HandshakeKind::MetaSubscribe => "`GET ?hub.mode=subscribe`: `hub.verify_token` checked against `verify_token`, then `hub.challenge` (text/plain)",
            HandshakeKind::ZoomUrlValidation => "`endpoint.url_validation`: signature checked, then `{\"plainToken\",\"encryptedToken\"}` (hex HMAC-SHA-256 of `plainToken`)",
            HandshakeKind::TwitterCrc => "CRC `GET ?crc_token=`: `{\"response_token\":\"sha256=<base64 HMAC-SHA-256 of crc_token>\"}`",
            HandshakeKind::AsanaHookSecret => "`X-Hook-Secret` echoed and stored durably as the channel's secret (first one only, unless `replace_hook_secret = true`)",
            HandshakeKind::OktaVerification => "one-time `GET` with `x-okta-verification-challenge`: `{\"verification\":...}`",
            HandshakeKind::DropboxChallenge => "`GET ?challenge=`: the challenge (text/plain, `nosniff`)",
            HandshakeKind::TwitchCallbackVerification => "`webhook_callback_verification`: signature checked, then the `challenge` (text/plain)",
            HandshakeKind::MsGraphValidation => "`?validationToken=`: the decoded token (text/plain)",
        }
    }
}

/// Zoom's `encryptedToken`: hex HMAC-SHA256 of `plain_token` under the secret token.
pub fn zoom_encrypted_token(secret: &Secret, plain_token: &str) -> String {
    hex::encode(secret.tag(&[plain_token.as_bytes()]))
}

/// Twitter's CRC `response_token`: `sha256=` + base64 HMAC-SHA256 of `crc_token`
/// under the consumer secret.
pub fn twitter_response_token(secret: &Secret, crc_token: &str) -> String {
    format!(
        "sha256={}",
        BASE64.encode(secret.tag(&[crc_token.as_bytes()]))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zoom_encrypted_token_is_hex_hmac() {
        let s = Secret::from_key(b"4aH6ZM0TS2y7EAJ-4dyFWg").unwrap();
        let token = zoom_encrypted_token(&s, "qgg8vlvZRS6UYooatFL8Aw");
        assert_eq!(token, hex::encode(s.tag(&[b"qgg8vlvZRS6UYooatFL8Aw"])));
    }

    #[test]
    fn twitter_response_token_is_base64_hmac() {
        let s = Secret::from_key(b"consumer-secret").unwrap();
        let t = twitter_response_token(&s, "abc");
        let raw = BASE64.decode(t.strip_prefix("sha256=").unwrap()).unwrap();
        assert_eq!(raw, s.tag(&[b"abc"]));
    }

    #[test]
    fn only_meta_twitter_okta_and_dropbox_use_get() {
        let get: Vec<_> = SchemeKind::ALL
            .into_iter()
            .filter_map(HandshakeKind::of_scheme)
            .filter(|h| h.uses_get())
            .collect();
        assert_eq!(get.len(), 4);
    }
}
