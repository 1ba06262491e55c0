//! The write probe behind [`crate::storage::Storage::writable`] for sled: a small file
//! created, written, fsynced and removed in the data directory. Permission bits are no
//! answer (root ignores them, a read-only remount keeps them), so it really writes.
//! A disk below the free-space reserve also counts as not writable: appends are
//! refused there (see `disk`), so the relay cannot take webhooks either.

use std::io::Write;
use std::path::Path;

/// The probe's file name; a leftover from a crash is overwritten by the next probe.
pub const PROBE_FILE: &str = ".hookrelay-write-probe";

/// Writes, fsyncs and removes the probe file in `dir`, then checks that the disk
/// has at least `reserve_bytes` free; `Err` says what failed.
pub fn probe(dir: &Path, reserve_bytes: u64) -> Result<(), String> {
    write_probe(dir)?;
    match super::disk::free_bytes(dir) {
        Some(free) if free < reserve_bytes => Err(format!(
            "the disk holding {} has {free} bytes free, below the {reserve_bytes} bytes \
             reserve (disk_reserve_bytes): appends are refused",
            dir.display()
        )),
        _ => Ok(()),
    }
}

fn write_probe(dir: &Path) -> Result<(), String> {
    let path = dir.join(PROBE_FILE);
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&path)?;
        f.write_all(b"ok")?;
        f.sync_all()?;
        std::fs::remove_file(&path)
    };
    write().map_err(|e| format!("the data directory {} is not writable: {e}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_writable_directory_passes_and_a_missing_one_fails_with_its_path() {
        let dir = tempfile::tempdir().expect("tmp");
        probe(dir.path(), 0).expect("writable");
        let err = probe(dir.path(), u64::MAX).expect_err("below the reserve");
        assert!(err.contains("reserve"), "{err}");
        assert!(!dir.path().join(PROBE_FILE).exists(), "the probe cleans up");
        let gone = dir.path().join("gone");
        let err = probe(&gone, 0).expect_err("missing dir");
        assert!(err.contains("gone"), "{err}");
    }
}
