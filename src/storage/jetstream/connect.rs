//! Connecting to the servers, and refusing ones that cannot keep the guarantees.

use std::time::Duration;

use async_nats::jetstream::{self, Context};
use async_nats::{Client, ConnectOptions, ServerAddr};

use crate::common::config::{JetStreamConfig, NatsAuth};
use crate::storage::error::StorageError;

/// The oldest server this backend runs on. Expected-last-sequence publishes, KV
/// compare-and-set and purge-by-sequence all predate 2.10, but before 2.12 a replicated
/// stream records a publish's `Nats-Msg-Id` when it proposes the message and checks
/// `Nats-Expected-Last-Sequence` only when applying it (`processClusteredInboundMsg` in
/// 2.10.29). A publish refused for a wrong last sequence — two writers, or a batch
/// behind a duplicate — then leaves its id in the duplicate window: 2.10 answers the
/// event's next publish as a duplicate at sequence 0, 2.11 as a conflict, so the event
/// would be acknowledged and not stored, or refused for the whole window. 2.12 checks
/// the expected sequence before proposing (`checkMsgHeadersPreClusteredProposal`).
pub const MIN_SERVER_VERSION: (u64, u64) = (2, 12);
/// How long the first connection may take before the relay refuses to start.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one JetStream request (publish ack, KV write) may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects, then checks the server version and that JetStream is enabled.
pub async fn connect(cfg: &JetStreamConfig) -> Result<(Client, Context), StorageError> {
    let addrs = cfg
        .servers
        .iter()
        .map(|s| {
            s.parse::<ServerAddr>()
                .map_err(|e| fail(format!("bad NATS server address {s:?}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let options = options(cfg).await?;
    let client = async_nats::connect_with_options(addrs, options)
        .await
        .map_err(|e| fail(format!("cannot connect to NATS at {:?}: {e}", cfg.servers)))?;
    check_version(&client.server_info().version)?;
    let mut js = jetstream::new(client.clone());
    js.set_timeout(REQUEST_TIMEOUT);
    js.query_account().await.map_err(|e| {
        fail(format!(
            "the NATS server at {:?} has no JetStream for this account \
             (start it with -js or a `jetstream {{}}` block): {e}",
            cfg.servers
        ))
    })?;
    Ok((client, js))
}

async fn options(cfg: &JetStreamConfig) -> Result<ConnectOptions, StorageError> {
    let mut o = ConnectOptions::new()
        .name("hookrelay")
        .connection_timeout(CONNECT_TIMEOUT)
        .request_timeout(Some(REQUEST_TIMEOUT));
    o = match &cfg.auth {
        NatsAuth::None => o,
        NatsAuth::UserPassword { user, password } => {
            o.user_and_password(user.clone(), password.clone())
        }
        NatsAuth::Token(t) => o.token(t.clone()),
        NatsAuth::CredsFile(path) => o.credentials_file(path).await.map_err(|e| {
            fail(format!(
                "cannot read NATS creds file {}: {e}",
                path.display()
            ))
        })?,
    };
    if let Some(ca) = &cfg.tls_ca {
        o = o.add_root_certificates(ca.clone()).require_tls(true);
    }
    Ok(o)
}

/// Refuses servers older than [`MIN_SERVER_VERSION`].
pub fn check_version(version: &str) -> Result<(), StorageError> {
    let mut parts = version
        .trim_start_matches('v')
        .split(['.', '-'])
        .map(|p| p.parse::<u64>().ok());
    let major = parts.next().flatten();
    let minor = parts.next().flatten();
    match (major, minor) {
        (Some(a), Some(b)) if (a, b) >= MIN_SERVER_VERSION => Ok(()),
        _ => Err(fail(format!(
            "nats-server {version} is too old or unknown: the JetStream backend needs {}.{} or newer",
            MIN_SERVER_VERSION.0, MIN_SERVER_VERSION.1
        ))),
    }
}

/// A backend failure with `message`.
pub fn fail(message: String) -> StorageError {
    StorageError::Failed(message)
}

#[cfg(test)]
mod tests {
    use super::check_version;

    #[test]
    fn versions_below_the_minimum_are_refused() {
        assert!(check_version("2.15.1").is_ok());
        assert!(check_version("2.12.0-beta").is_ok());
        assert!(check_version("2.11.9").is_err());
        assert!(check_version("2.10.29").is_err());
        assert!(check_version("3.0.0").is_ok());
        assert!(check_version("2.9.25").is_err());
        assert!(check_version("garbage").is_err());
    }
}
