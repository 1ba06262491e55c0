//! The vocabulary of the preset table: what one provider's webhook signature looks
//! like, declared as data so that one engine (`engine.rs`) verifies and signs them all.

use super::scheme::{Algorithm, Encoding, SchemeKind};

/// One provider preset: a row of the table (and of the README's table).
pub(crate) struct Preset {
    /// The scheme this row describes.
    pub kind: SchemeKind,
    /// The provider's name as people write it, for the README.
    pub provider: &'static str,
    /// Other config names accepted for this scheme (e.g. `svix` for `standard`).
    pub aliases: &'static [&'static str],
    /// What is checked.
    pub check: Check,
    /// Unsigned header carrying the provider's delivery id, used for dedup (a signed
    /// `{id}` wins over it).
    pub delivery_header: Option<&'static str>,
    /// The provider's handshake, for the README (`None`: nothing to answer).
    pub handshake: Option<&'static str>,
    /// The provider documentation this row follows.
    pub doc: &'static str,
}

/// How a preset's requests are checked.
pub(crate) enum Check {
    /// An HMAC described by a [`Spec`], verified by the generic engine.
    Hmac(Spec<'static>),
    /// The header's value must equal the secret (compared in constant time).
    Token {
        /// The header carrying the secret.
        header: &'static str,
    },
    /// A scheme with its own code (Stripe, Standard Webhooks, Mailgun, the generic
    /// `hmac`); the text says what it checks, for the README.
    Custom(&'static str),
    /// Nothing is checked.
    Nothing,
}

/// A declarative HMAC signature: where it is, how it is spelled and what it signs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spec<'a> {
    /// The header carrying the signature (lower-case).
    pub header: &'a str,
    /// How the signature sits in the header.
    pub layout: Layout<'a>,
    /// Hex or base64.
    pub encoding: Encoding,
    /// The HMAC's hash function.
    pub algorithm: Algorithm,
    /// The signed content: literal text with `{body}`, `{timestamp}`, `{id}` and `{url}`.
    pub template: &'a str,
    /// The signed timestamp, if the provider signs one.
    pub timestamp: Option<Timestamp<'a>>,
    /// The header `{id}` stands for (signed, so also the delivery id).
    pub id_header: Option<&'a str>,
}

/// How the signature sits in its header.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Layout<'a> {
    /// `<prefix><mac>`; the prefix is matched ASCII case-insensitively.
    Single {
        /// Text before the MAC, e.g. `sha256=`; may be empty.
        prefix: &'a str,
    },
    /// Entries separated by `sep`; those starting with `prefix` are candidate MACs
    /// (several during a key rotation), others are ignored.
    List {
        /// Entry separator.
        sep: char,
        /// Text before each MAC, e.g. `v1=`.
        prefix: &'a str,
    },
    /// `key=value` fields separated by `sep`: the timestamp in `ts_key` (use
    /// [`TsSource::Field`]), candidate MACs in every `sig_key` field.
    Fields {
        /// Field separator.
        sep: char,
        /// The timestamp's key.
        ts_key: &'a str,
        /// The signature's key.
        sig_key: &'a str,
    },
}

/// A signed timestamp.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timestamp<'a> {
    /// Where it is.
    pub source: TsSource<'a>,
    /// How it is written.
    pub format: TsFormat,
    /// The provider's recommended tolerance, the channel's default.
    pub default_tolerance_secs: u64,
}

/// Where a signed timestamp is.
#[derive(Debug, Clone, Copy)]
pub(crate) enum TsSource<'a> {
    /// In its own header.
    Header(&'a str),
    /// In the signature header's `ts_key` field ([`Layout::Fields`]).
    Field,
}

/// How a signed timestamp is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TsFormat {
    /// Unix seconds, decimal.
    UnixSecs,
    /// Unix milliseconds, decimal.
    UnixMillis,
    /// RFC 3339 in UTC (`2021-06-17T18:33:10Z`, fraction optional).
    Rfc3339,
}
