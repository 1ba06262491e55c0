//! How many async worker threads `serve` runs with.
//!
//! With the embedded log, one core belongs to the committer: the thread that writes and
//! flushes every batch (`storage/sled/commit.rs`), nearly a whole core at full speed.
//! tokio's default, one worker per core, puts a second worker beside it on that core,
//! and at a webhook trickle that worker costs more than it brings: whenever the other
//! worker schedules a task, tokio wakes an idle sibling to steal it (`notify_parked`),
//! so every event paid for futex and eventfd wake-ups of a thread that mostly found
//! nothing to do. Measured on 2 cores at 400 events/s (docs/benchmarks.md, "Cost per
//! event"): one worker instead of two cut the relay's CPU per event by 17 % and its
//! context switches by a third, with the same p50 and p99; full-speed ingest did not
//! change, since the committer keeps its core. So `serve` on sled runs one worker fewer
//! than there are cores, and at least one. JetStream has no committer thread: there
//! tokio's default stays. `TOKIO_WORKER_THREADS`, when set, wins (tokio reads it).

use crate::common::config::StorageConfig;

/// The worker count for `serve` with this storage, or `None` to keep tokio's default.
pub(super) fn serve_workers(storage: &StorageConfig) -> Option<usize> {
    if std::env::var_os("TOKIO_WORKER_THREADS").is_some() {
        return None;
    }
    let cores = std::thread::available_parallelism().ok()?.get();
    uses_committer(storage).then_some(workers_beside_committer(cores))
}

/// One core for the committer, the rest for the workers, and at least one worker.
fn workers_beside_committer(cores: usize) -> usize {
    cores.saturating_sub(1).max(1)
}

/// Whether the log is written by sled's committer thread.
fn uses_committer(storage: &StorageConfig) -> bool {
    *storage == StorageConfig::Sled
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_core_is_left_to_the_committer_and_one_worker_always_runs() {
        assert_eq!(workers_beside_committer(1), 1);
        assert_eq!(workers_beside_committer(2), 1);
        assert_eq!(workers_beside_committer(8), 7);
    }

    #[test]
    fn only_a_sled_config_leaves_a_core_to_the_committer() {
        use crate::common::config::Config;
        let dir = tempfile::tempdir().expect("tempdir");
        let sled = dir.path().join("sled.toml");
        std::fs::write(&sled, "[server]\nlisten = \"127.0.0.1:0\"\n").expect("write");
        let sled = Config::load(&sled).expect("sled config");
        assert!(uses_committer(&sled.storage));
        let js = dir.path().join("js.toml");
        std::fs::write(
            &js,
            "[server]\nlisten = \"127.0.0.1:0\"\n\n[storage]\nbackend = \"jetstream\"\nservers = [\"nats://127.0.0.1:4222\"]\n",
        )
        .expect("write");
        let js = Config::load(&js).expect("jetstream config");
        assert!(!uses_committer(&js.storage));
    }
}
