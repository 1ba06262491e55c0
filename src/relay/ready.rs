//! Readiness (`GET /readyz`, `hookrelay_ready`): the relay is ready when it is not
//! stopping and its storage can take a write now.
//!
//! The storage answer comes from [`Storage::writable`], which really writes (a probe
//! file for sled), so it is cached for [`READY_CACHE`]: a storm of probes or scrapes
//! costs one write per interval, and concurrent callers wait for the one probe in
//! progress instead of starting their own. "Listener up" needs no check of its own:
//! the answer travels over the listener.

use std::time::{Duration, Instant};

use crate::storage::Storage;

/// How long a readiness answer is reused.
pub const READY_CACHE: Duration = Duration::from_secs(1);

/// The cached readiness answer.
#[derive(Debug, Default)]
pub struct Readiness {
    last: tokio::sync::Mutex<Option<(Instant, Result<(), String>)>>,
}

impl Readiness {
    /// `Ok` when ready, else why not (for a person; no secret in it).
    pub async fn check(&self, log: &dyn Storage, stopping: bool) -> Result<(), String> {
        if stopping {
            return Err("the relay is stopping".into());
        }
        let mut last = self.last.lock().await;
        if let Some((at, answer)) = last.as_ref() {
            if at.elapsed() < READY_CACHE {
                return answer.clone();
            }
        }
        let answer = log
            .writable()
            .await
            .map_err(|e| format!("storage is not writable: {}", e.detail()));
        *last = Some((Instant::now(), answer.clone()));
        answer
    }
}
