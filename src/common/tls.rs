//! TLS configuration from PEM files, for both ends: the relay's listener
//! ([`server_config`]) and every client that dials out — the agent to the relay, the
//! agent to a local service, the admin commands ([`client_config`]).
//!
//! Everything uses rustls with the ring provider (no OpenSSL). Errors name the file, and
//! on the relay side the config key, so a person knows which line to fix.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::common::config::TlsConfig;

/// A TLS file or setting that cannot be used; the message names the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(pub String);

/// TLS material for an outgoing connection.
#[derive(Debug, Default, Clone)]
pub struct TlsFiles<'a> {
    /// PEM CA certificates to trust instead of the web PKI roots.
    pub ca_cert: Option<&'a Path>,
    /// PEM client certificate chain and key, for a server that requires one.
    pub client_cert: Option<(&'a Path, &'a Path)>,
}

/// Reads a file; `label` (a config key, or empty) prefixes the message.
fn read(label: &str, p: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(p).map_err(|e| TlsError(format!("{label}cannot read {}: {e}", p.display())))
}

/// The certificates of a PEM file; at least one.
fn certs(label: &str, p: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = rustls_pemfile::certs(&mut read(label, p)?.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError(format!("{label}{}: {e}", p.display())))?;
    if certs.is_empty() {
        return Err(TlsError(format!(
            "{label}{}: no PEM certificate found",
            p.display()
        )));
    }
    Ok(certs)
}

/// The first private key of a PEM file.
fn private_key(label: &str, p: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    rustls_pemfile::private_key(&mut read(label, p)?.as_slice())
        .map_err(|e| TlsError(format!("{label}{}: {e}", p.display())))?
        .ok_or_else(|| TlsError(format!("{label}{}: no PEM private key found", p.display())))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls client configuration: web PKI roots, or only the CAs of `files.ca_cert`;
/// a client certificate when `files.client_cert` is set. ALPN is left empty: callers
/// that want HTTP/2 set it themselves.
pub fn client_config(files: &TlsFiles<'_>) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    match files.ca_cert {
        Some(ca) => {
            for c in certs("", ca)? {
                roots
                    .add(c)
                    .map_err(|e| TlsError(format!("{}: {e}", ca.display())))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(e.to_string()))?
        .with_root_certificates(roots);
    let config = match files.client_cert {
        Some((cert, key)) => builder
            .with_client_auth_cert(certs("", cert)?, private_key("", key)?)
            .map_err(|e| TlsError(e.to_string()))?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The relay's `[server.tls]` as a rustls server configuration, offering h2 and
/// http/1.1. With `client_ca`, client certificates are verified but optional at the
/// TLS layer: they are required per route (only `/v1/stream`), so providers can still
/// post webhooks without one.
pub fn server_config(t: &TlsConfig) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let chain = certs("server.tls.cert: ", &t.cert)?;
    let key = private_key("server.tls.key: ", &t.key)?;
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(e.to_string()))?;
    let builder = match &t.client_ca {
        Some(ca) => builder.with_client_cert_verifier(client_verifier(ca)?),
        None => builder.with_no_client_auth(),
    };
    let mut cfg = builder.with_single_cert(chain, key).map_err(|e| {
        TlsError(format!(
            "server.tls.key: {} does not fit {}: {e}",
            t.key.display(),
            t.cert.display()
        ))
    })?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

fn client_verifier(
    ca: &Path,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, TlsError> {
    let label = "server.tls.client_ca: ";
    let mut roots = rustls::RootCertStore::empty();
    for c in certs(label, ca)? {
        roots
            .add(c)
            .map_err(|e| TlsError(format!("{label}{}: {e}", ca.display())))?;
    }
    rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .allow_unauthenticated()
        .build()
        .map_err(|e| TlsError(e.to_string()))
}
