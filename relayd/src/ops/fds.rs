//! File descriptors: every stream holds a data and an index file open, so a relay serving
//! thousands of streams needs more than the usual soft limit of 1024.

use nix::sys::resource::{getrlimit, setrlimit, Resource};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

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

/// Whether the process is within `reserve` descriptors of its open-file limit: listeners of
/// lower priority than ingest (operations, live) stop accepting then, so that they can never
/// take the descriptors the control and data ports need. The count is read from
/// `/proc/self/fd` at most every [`RESERVE_RECHECK`] (a listing per accept would cost a
/// relay with many streams dearly); in between, the connections those listeners accepted
/// since ([`accepted`]) are added to it, and what other paths opened meanwhile is absorbed by
/// the reserve.
pub fn within_reserve(reserve: u64) -> bool {
    use std::time::Instant;
    if reserve == 0 {
        return false;
    }
    let Some(limit) = limit() else {
        return false;
    };
    let mut last = RESERVE_COUNT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let now = Instant::now();
    let open = match *last {
        Some((at, n)) if now.duration_since(at) < RESERVE_RECHECK => {
            n.saturating_add(ACCEPTED_SINCE.load(Ordering::Relaxed))
        }
        _ => {
            ACCEPTED_SINCE.store(0, Ordering::Relaxed);
            let n = open_count().map_or(0, |n| n as u64);
            *last = Some((now, n));
            n
        }
    };
    open.saturating_add(reserve) >= limit
}

/// Notes a connection accepted by a listener that consults [`within_reserve`].
pub fn accepted() {
    ACCEPTED_SINCE.fetch_add(1, Ordering::Relaxed);
}

static RESERVE_COUNT: Mutex<Option<(std::time::Instant, u64)>> = Mutex::new(None);
static ACCEPTED_SINCE: AtomicU64 = AtomicU64::new(0);

/// How long a count of open descriptors is reused by [`within_reserve`].
pub const RESERVE_RECHECK: std::time::Duration = std::time::Duration::from_millis(50);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_raised_and_open_files_are_counted() {
        let limit = raise_limit().unwrap();
        assert_eq!(Some(limit), self::limit());
        // Other tests of this process open and close descriptors meanwhile: one quiet reading
        // in a few tries is enough.
        let counted = (0..100).any(|_| {
            let before = open_count().unwrap();
            let f = std::fs::File::open("/proc/self/status").unwrap();
            let after = open_count().unwrap();
            drop(f);
            after == before + 1
        });
        assert!(counted, "opening a file never counted as one more");
    }
}
