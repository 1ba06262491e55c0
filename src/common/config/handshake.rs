//! The handshake keys of a `[[channel]]`: `handshake`, `verify_token`,
//! `replace_hook_secret` and `msgraph_validation` (what the relay answers is in
//! `relay::handshake`).

use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::raw::RawChannel;
use super::source::{Entry, FileError};
use crate::common::verify::{HandshakeKind, SchemeKind};

/// A channel's handshake settings.
#[derive(Debug, Clone, Default)]
pub struct Handshakes {
    /// The scheme's handshake, when the channel answers it (`handshake`, on by
    /// default for presets that have one).
    pub kind: Option<HandshakeKind>,
    /// Meta's `hub.verify_token`, kept only as its digest.
    pub verify_token: Option<VerifyToken>,
    /// Asana: accept a new `X-Hook-Secret` even when one is stored (off by default, so
    /// that a stranger's handshake cannot replace the secret).
    pub replace_hook_secret: bool,
    /// Answer Microsoft Graph's `?validationToken=` (opt-in on any channel).
    pub msgraph_validation: bool,
}

impl Handshakes {
    /// Whether the channel learns its signing secret from Asana's handshake (and so
    /// needs no `secrets`).
    pub fn learns_secret(&self) -> bool {
        self.kind == Some(HandshakeKind::AsanaHookSecret)
    }
}

/// A verify token, kept as its SHA-256 so that comparing it takes the same time
/// whatever the guess; `Debug` never shows it.
#[derive(Clone)]
pub struct VerifyToken([u8; 32]);

impl VerifyToken {
    /// The token `plain`.
    pub fn new(plain: &str) -> VerifyToken {
        VerifyToken(Sha256::digest(plain.as_bytes()).into())
    }

    /// Whether `given` is the token (constant time).
    pub fn matches(&self, given: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(given.as_bytes()).into();
        digest.ct_eq(&self.0).into()
    }
}

impl fmt::Debug for VerifyToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VerifyToken(<redacted>)")
    }
}

/// Reads and checks the handshake keys of a channel of scheme `kind`.
pub fn handshakes(at: &Entry, raw: &RawChannel, kind: SchemeKind) -> Result<Handshakes, FileError> {
    let own = HandshakeKind::of_scheme(kind);
    let enabled = match (&raw.handshake, own) {
        (Some(h), None) if *h.get_ref() => {
            return Err(at.err(
                h.span(),
                "handshake",
                format!(
                    "scheme {:?} has no handshake the relay answers (slack, meta, zoom, twitter, asana, okta, dropbox and twitch do; Microsoft Graph: msgraph_validation = true)",
                    kind.as_str()
                ),
            ))
        }
        (Some(h), _) => *h.get_ref(),
        (None, _) => true,
    };
    let kind_on = own.filter(|_| enabled);
    let verify_token = match &raw.verify_token {
        None => None,
        Some(t) if kind_on != Some(HandshakeKind::MetaSubscribe) => {
            return Err(at.err(
                t.span(),
                "verify_token",
                "only used by scheme \"meta\" with its handshake on (hub.verify_token)",
            ))
        }
        Some(t) => {
            let plain = at.src.resolve(t, &at.key("verify_token"))?;
            if plain.is_empty() {
                return Err(at.err(t.span(), "verify_token", "must not be empty"));
            }
            Some(VerifyToken::new(&plain))
        }
    };
    let replace_hook_secret = match &raw.replace_hook_secret {
        Some(r) if kind_on != Some(HandshakeKind::AsanaHookSecret) => {
            return Err(at.err(
                r.span(),
                "replace_hook_secret",
                "only used by scheme \"asana\" with its handshake on",
            ))
        }
        Some(r) => *r.get_ref(),
        None => false,
    };
    Ok(Handshakes {
        kind: kind_on,
        verify_token,
        replace_hook_secret,
        msgraph_validation: raw
            .msgraph_validation
            .as_ref()
            .is_some_and(|v| *v.get_ref()),
    })
}
