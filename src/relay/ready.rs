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
/// Longest a write probe may take before the answer is "not ready" (a hung disk or
/// network filesystem must not hang `/readyz` and every scrape behind it).
pub const READY_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

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
        let answer = match tokio::time::timeout(READY_PROBE_TIMEOUT, log.writable()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("storage is not writable: {}", e.detail())),
            Err(_) => Err(format!(
                "the storage write probe did not finish within {} s",
                READY_PROBE_TIMEOUT.as_secs()
            )),
        };
        *last = Some((Instant::now(), answer.clone()));
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_writable_log_is_ready_unless_the_relay_is_stopping() {
        let dir = tempfile::tempdir().expect("tmp");
        let log = crate::storage::sled::SledStorage::open(dir.path()).expect("open");
        let r = Readiness::default();
        assert_eq!(r.check(&log, false).await, Ok(()));
        assert_eq!(r.check(&log, false).await, Ok(()), "cached");
        let stopping = r.check(&log, true).await.expect_err("stopping");
        assert!(stopping.contains("stopping"), "{stopping}");
    }
}
