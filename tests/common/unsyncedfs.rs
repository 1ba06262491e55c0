//! A mount of `tests/powercut/unsyncedfs.py`: a FUSE layer that keeps every write not
//! yet fsynced in memory and drops it all on a simulated power cut (see that file for
//! what is and is not buffered).
//!
//! Needs root, `/dev/fuse`, `libfuse2` and the `fusepy` Python package; `require`
//! fails the test naming whichever is missing (`.ci/run` installs them).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{drain, drain_tracked, wait_exit, DEADLINE};

/// How often a wait polls the layer's output.
const POLL_MS: u64 = 10;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/powercut/unsyncedfs.py")
}

/// Fails the test, naming what is missing, unless a FUSE mount can work here.
pub fn require() {
    assert!(
        unsafe { libc::geteuid() } == 0,
        "the power-cut test mounts a FUSE file system and needs root (CI runs as root)"
    );
    assert!(
        Path::new("/dev/fuse").exists(),
        "the power-cut test needs /dev/fuse (the kernel's fuse module; in a container, \
         --device /dev/fuse --cap-add SYS_ADMIN)"
    );
    let probe = Command::new("python3")
        .args(["-c", "import fuse"])
        .output()
        .unwrap_or_else(|e| panic!("the power-cut test needs python3: {e}"));
    assert!(
        probe.status.success(),
        "the power-cut test needs the Python package fusepy (pip install fusepy) and \
         libfuse2 (apt-get install libfuse2): {}",
        String::from_utf8_lossy(&probe.stderr)
    );
}

/// A live mount of the layer over `backing` at `mountpoint`.
pub struct UnsyncedFs {
    child: Child,
    mountpoint: PathBuf,
    stdout: Arc<Mutex<String>>,
    /// Set once the layer's stdout reached its end (it exited).
    stdout_closed: Arc<AtomicBool>,
    stderr: Arc<Mutex<String>>,
    mounted: bool,
}

impl UnsyncedFs {
    /// Mounts and returns once the kernel has initialised the mount.
    pub fn mount(backing: &Path, mountpoint: &Path) -> UnsyncedFs {
        std::fs::create_dir_all(backing).expect("backing dir");
        std::fs::create_dir_all(mountpoint).expect("mountpoint");
        let mut child = Command::new("python3")
            .arg(script())
            .arg(backing)
            .arg(mountpoint)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn python3 unsyncedfs.py");
        let (stdout, stderr, stdout_closed) = (Arc::default(), Arc::default(), Arc::default());
        drain_tracked(
            child.stdout.take().expect("stdout"),
            Arc::clone(&stdout),
            Arc::clone(&stdout_closed),
        );
        drain(child.stderr.take().expect("stderr"), Arc::clone(&stderr));
        let fs = UnsyncedFs {
            child,
            mountpoint: mountpoint.to_path_buf(),
            stdout,
            stdout_closed,
            stderr,
            mounted: true,
        };
        fs.wait_output("unsyncedfs mounted");
        fs
    }

    /// The power cut: every write not yet fsynced is dropped and the layer exits, so
    /// the backing dir holds exactly what was synced. Returns the layer's report line.
    /// Then unmounts the dead mount.
    pub fn cut(mut self) -> String {
        assert_eq!(
            unsafe { libc::kill(self.child.id() as i32, libc::SIGUSR1) },
            0,
            "signal the layer"
        );
        let status = wait_exit(&mut self.child);
        assert!(status.success(), "layer exit {status:?}: {}", self.stderr());
        let report = self.wait_output("unsyncedfs cut: ");
        self.unmount();
        report
    }

    fn unmount(&mut self) {
        let out = Command::new("umount")
            .arg(&self.mountpoint)
            .output()
            .expect("run umount");
        assert!(
            out.status.success(),
            "umount {}: {}",
            self.mountpoint.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        self.mounted = false;
    }

    fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Waits for a stdout line starting with `prefix`; fails if the layer dies first.
    fn wait_output(&self, prefix: &str) -> String {
        let start = Instant::now();
        loop {
            // Read the flag first: once it is set, the text below is complete.
            let closed = self.stdout_closed.load(Ordering::Acquire);
            let out = self.stdout.lock().map(|s| s.clone()).unwrap_or_default();
            if let Some(line) = out.lines().find(|l| l.starts_with(prefix)) {
                return line.to_string();
            }
            assert!(
                !closed,
                "unsyncedfs exited without printing {prefix:?}; stdout: {out}; stderr: {}",
                self.stderr()
            );
            assert!(
                start.elapsed() < DEADLINE,
                "unsyncedfs printed no {prefix:?} in time: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(POLL_MS));
        }
    }
}

impl Drop for UnsyncedFs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if self.mounted {
            // Lazily, so a failing test does not leave a busy mount behind.
            let _ = Command::new("umount")
                .arg("-l")
                .arg(&self.mountpoint)
                .status();
        }
    }
}
