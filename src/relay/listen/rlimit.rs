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
/// after, or `None` when the limits cannot be read or changed.
#[cfg(unix)]
#[allow(unsafe_code)]
pub fn raise_nofile_limit() -> Option<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit; getrlimit only writes into it.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return None;
    }
    let before = lim.rlim_cur;
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: `lim` is a valid rlimit that setrlimit only reads; raising the soft
        // limit up to the hard one needs no privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return None;
        }
    }
    // The field type differs between platforms.
    #[allow(clippy::unnecessary_cast)]
    Some((before as u64, lim.rlim_cur as u64))
}

#[cfg(not(unix))]
pub fn raise_nofile_limit() -> Option<(u64, u64)> {
    None
}
