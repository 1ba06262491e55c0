//! The open-file limit: a relay holds one descriptor per connection, and the soft limit
//! a shell hands down (often 1024) is far below what the hard limit allows.

/// [`raise_nofile_limit`], saying what it did.
pub fn raise_and_log() {
    match raise_nofile_limit() {
        Some((before, after)) if after > before => {
            tracing::info!(
                before,
                after,
                "raised the open-file limit to the hard limit"
            )
        }
        Some((_, now)) => tracing::debug!(limit = now, "open-file limit"),
        None => tracing::warn!("cannot read or raise the open-file limit"),
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit. Returns the soft limit before and
/// after, or `None` when the limits cannot be read or changed. (rustix's safe wrapper:
/// the crate has no `unsafe`.)
#[cfg(unix)]
pub fn raise_nofile_limit() -> Option<(u64, u64)> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let lim = getrlimit(Resource::Nofile);
    let before = lim.current?;
    let Some(max) = lim.maximum else {
        // No hard limit: nothing above the soft one to raise to.
        return Some((before, before));
    };
    if before < max {
        let raised = Rlimit {
            current: Some(max),
            maximum: Some(max),
        };
        setrlimit(Resource::Nofile, raised).ok()?;
    }
    Some((before, before.max(max)))
}

#[cfg(not(unix))]
pub fn raise_nofile_limit() -> Option<(u64, u64)> {
    None
}
