//! `hookrelay secret new --scheme S`: a fresh signing secret, in the scheme's format,
//! for the schemes where the receiver (you) chooses the secret and types it into the
//! provider's settings. Where the provider issues the secret or key, there is nothing
//! to generate: the command says where to find it and exits 2.

use base64::Engine as _;
use clap::{Args, Subcommand};

use crate::common::verify::SchemeKind;

/// Random bytes in a generated secret: 256 bits, as much as HMAC-SHA256 uses.
pub const SECRET_BYTES: usize = 32;

/// `hookrelay secret`.
#[derive(Debug, Args)]
pub struct SecretArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: SecretCommand,
}

/// The `secret` subcommands.
#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Print a fresh random secret in the scheme's format.
    New {
        /// The channel's scheme (a provider preset, standard, hmac).
        #[arg(long)]
        scheme: String,
    },
}

/// Why no secret can be generated (a usage error: exit 2).
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Not a scheme name.
    #[error("--scheme {0:?}: unknown scheme")]
    Unknown(String),
    /// The provider issues the secret or key.
    #[error("{0}")]
    Issued(String),
}

/// The secret for `scheme`, or why there is none to generate.
pub fn new_secret(scheme: &str) -> Result<String, SecretError> {
    let kind = SchemeKind::parse(scheme).ok_or_else(|| SecretError::Unknown(scheme.into()))?;
    let bytes: [u8; SECRET_BYTES] = rand::random();
    match kind {
        // Standard Webhooks: `whsec_` + base64 of the key bytes.
        SchemeKind::Standard => Ok(format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        )),
        // HTTP basic authentication: `user:password`.
        SchemeKind::Postmark => Ok(format!("hookrelay:{}", hex::encode(bytes))),
        k if chosen_by_receiver(k) => Ok(hex::encode(bytes)),
        k => Err(SecretError::Issued(issued_message(k))),
    }
}

/// Schemes whose provider lets the receiver type in (or leave to it) the secret.
fn chosen_by_receiver(kind: SchemeKind) -> bool {
    matches!(
        kind,
        SchemeKind::Hmac
            | SchemeKind::Github
            | SchemeKind::Gitlab
            | SchemeKind::Bitbucket
            | SchemeKind::Gitea
            | SchemeKind::Atlassian
            | SchemeKind::Okta
            | SchemeKind::Woocommerce
            | SchemeKind::Typeform
            | SchemeKind::Razorpay
            | SchemeKind::Lemonsqueezy
            | SchemeKind::Twitch
            | SchemeKind::Calendly
    )
}

fn issued_message(kind: SchemeKind) -> String {
    let name = kind.as_str();
    let doc = kind.doc_url();
    let see = if doc.is_empty() {
        String::new()
    } else {
        format!(" (see {doc})")
    };
    match kind {
        SchemeKind::None => "scheme \"none\" checks no signature and takes no secret".into(),
        SchemeKind::Asana => "asana: the secret arrives in Asana's X-Hook-Secret handshake, which the relay answers and stores; configure no secret".into(),
        SchemeKind::Discord | SchemeKind::Telnyx | SchemeKind::Sendgrid => format!(
            "{name}: the provider signs with its own private key; put the public key it shows in secrets{see}"
        ),
        _ => format!(
            "{name}: the provider issues the signing secret; copy it from the provider's webhook settings{see}"
        ),
    }
}
