//! File descriptors: every stream holds a data and an index file open, so a relay serving
//! thousands of streams needs more than the usual soft limit of 1024.

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// Raises the soft RLIMIT_NOFILE to the hard limit; returns the limit now in force.
pub fn raise_limit() -> Option<u64> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    if soft < hard {
        if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            tracing::warn!(soft, hard, "cannot raise the open file limit: {e}");
            return Some(soft);
        }
        tracing::debug!(from = soft, to = hard, "open file limit raised");
    }
    Some(hard.max(soft))
}

/// The hard open file limit (what [`raise_limit`] raises the soft one to).
pub fn hard_limit() -> Option<u64> {
    getrlimit(Resource::RLIMIT_NOFILE)
        .ok()
        .map(|(_, hard)| hard)
}

/// The soft open file limit.
pub fn limit() -> Option<u64> {
    getrlimit(Resource::RLIMIT_NOFILE)
        .ok()
        .map(|(soft, _)| soft)
}

/// How many file descriptors the process has open (Linux: `/proc/self/fd`).
pub fn open_count() -> Option<usize> {
    // One entry is the directory handle of the listing itself.
    std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|d| d.count().saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_raised_and_open_files_are_counted() {
        let limit = raise_limit().unwrap();
        assert_eq!(Some(limit), self::limit());
        let before = open_count().unwrap();
        let f = std::fs::File::open("/proc/self/status").unwrap();
        assert_eq!(open_count().unwrap(), before + 1);
        drop(f);
    }
}
