//! `--embedded`: a throwaway relay in this process, on a temporary data directory
//! that is removed afterwards.

use std::path::PathBuf;

use super::target::{BenchError, Signer, Target};
use crate::common::verify::{SchemeKind, Secret};

/// An embedded relay and the directory it must remove.
pub struct Embedded {
    dir: PathBuf,
    shutdown: crate::common::shutdown::Shutdown,
    task: tokio::task::JoinHandle<()>,
}

/// Starts a relay with one github channel `channel` signed with `secret` and read with
/// `token`, on 127.0.0.1 and a free port.
pub async fn start(
    channel: &str,
    secret: &str,
    token: &str,
) -> Result<(Target, Embedded), BenchError> {
    let dir = std::env::temp_dir().join(format!(
        "hookrelay-bench-{}-{:x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = {:?}\n\n[[channel]]\nname = {channel:?}\nscheme = \"github\"\nsecrets = [{secret:?}]\ntokens = [{token:?}]\n",
        dir.join("data").display().to_string()
    );
    let config = crate::common::config::Config::parse(&text, "<bench>")
        .map_err(|e| BenchError::Setup(e.to_string()))?;
    let shutdown = crate::common::shutdown::Shutdown::new();
    let server = crate::relay::server::Server::bind(config, shutdown.clone())
        .await
        .map_err(|e| BenchError::Setup(e.to_string()))?;
    let addr = server
        .local_addr()
        .map_err(|e| BenchError::Setup(e.to_string()))?;
    let task = tokio::spawn(async move {
        if let Err(e) = server.run().await {
            tracing::error!(error = %e, "embedded relay stopped with an error");
        }
    });
    let signer = Signer::new(
        SchemeKind::Github,
        Secret::for_scheme(SchemeKind::Github, secret)
            .map_err(|e| BenchError::Setup(e.to_string()))?,
    );
    let base = format!("http://{addr}");
    let target = Target {
        stream_base: base.clone(),
        base,
        channel: channel.to_string(),
        token: token.to_string(),
        signer,
    };
    Ok((
        target,
        Embedded {
            dir,
            shutdown,
            task,
        },
    ))
}

impl Embedded {
    /// Stops the relay and removes its directory.
    pub async fn stop(self) {
        self.shutdown.trigger();
        let _ = self.task.await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
