//! Bearer tokens (`tokens`, `admin_token`): kept as SHA-256 digests only.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use toml::Spanned;

use super::source::{FileError, Source};

/// Bearer tokens, kept only as SHA-256 digests so that neither memory dumps nor
/// `Debug` output hold the plaintext.
#[derive(Clone, Default)]
pub struct TokenSet(Vec<[u8; 32]>);

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenSet({} tokens, redacted)", self.0.len())
    }
}

impl TokenSet {
    /// Whether `presented` is one of the tokens, in constant time per stored token.
    pub fn matches(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = subtle::Choice::from(0);
        for stored in &self.0 {
            found |= stored.ct_eq(&digest);
        }
        bool::from(found)
    }

    /// Whether the set holds no token at all (then nothing matches).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A set holding one plaintext token (tests and defaults).
    pub fn from_plain(token: &str) -> TokenSet {
        TokenSet(vec![Sha256::digest(token.as_bytes()).into()])
    }
}

/// Reads a list of tokens, each plain, `sha256:<64 hex digits>` or `env:NAME`;
/// `key` is the list's key path.
pub fn parse_tokens(
    src: &Source,
    values: &[Spanned<String>],
    key: &str,
) -> Result<TokenSet, FileError> {
    let mut set = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let key = format!("{key}[{i}]");
        let plain = src.resolve(v, &key)?;
        if let Some(hash) = plain.strip_prefix("sha256:") {
            let bytes = hex::decode(hash)
                .ok()
                .filter(|b| b.len() == 32)
                .ok_or_else(|| {
                    src.err(v.span(), &key, "sha256: must be followed by 64 hex digits")
                })?;
            let mut digest = [0u8; 32];
            digest.copy_from_slice(&bytes);
            set.push(digest);
        } else if plain.is_empty() {
            return Err(src.err(v.span(), &key, "a token cannot be empty"));
        } else {
            set.push(Sha256::digest(plain.as_bytes()).into());
        }
    }
    Ok(TokenSet(set))
}
