//! Disk-full episodes of one session: when a write finds the file system full, the session enters
//! an episode (logged once, with the file and the bytes it needed), its writers keep what they
//! hold and retry with [`backoff`], and the episode ends (logged once) at the first write that
//! succeeds. A session whose episode lasts longer than `disk_full_timeout_s` is failed by the
//! caller.

use super::error::StorageError;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An ongoing disk-full episode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Episode {
    /// When it began.
    pub since: Instant,
    /// The file whose write found the disk full first.
    pub path: PathBuf,
    /// Bytes that write still had to write.
    pub needed: Option<u64>,
    /// Writes that found the disk full since.
    pub hits: u64,
}

/// The disk-full state of one session.
#[derive(Debug, Default)]
pub struct DiskFull {
    episode: Mutex<Option<Episode>>,
    full: AtomicBool,
}

impl DiskFull {
    /// Records that a write of `session` (a name for the log) found the disk full; returns how
    /// long the episode has lasted. The first hit of an episode is logged.
    pub fn hit(&self, session: &str, e: &StorageError, now: Instant) -> Duration {
        let mut ep = lock(&self.episode);
        match ep.as_mut() {
            Some(x) => {
                x.hits = x.hits.saturating_add(1);
                now.saturating_duration_since(x.since)
            }
            None => {
                tracing::error!(
                    session,
                    file = %e.path.display(),
                    needed = e.needed.unwrap_or(0),
                    "disk full: {e}; holding this session's data and pushing back on its sender until space returns"
                );
                self.full.store(true, Ordering::Release);
                *ep = Some(Episode {
                    since: now,
                    path: e.path.clone(),
                    needed: e.needed,
                    hits: 1,
                });
                Duration::ZERO
            }
        }
    }

    /// Records that a write of `session` succeeded: ends the episode, if one is ongoing.
    pub fn cleared(&self, session: &str) {
        if !self.is_full() {
            return;
        }
        let mut ep = lock(&self.episode);
        self.full.store(false, Ordering::Release);
        if let Some(x) = ep.take() {
            tracing::warn!(
                session,
                after_ms = x.since.elapsed().as_millis() as u64,
                retries = x.hits,
                "disk space is back: the session resumes"
            );
        }
    }

    /// Whether an episode is ongoing (cheap: writers call it after every success).
    pub fn is_full(&self) -> bool {
        self.full.load(Ordering::Acquire)
    }

    /// The ongoing episode.
    pub fn episode(&self) -> Option<Episode> {
        lock(&self.episode).clone()
    }
}

/// Pause before retry number `attempt` (from 0) of a write that found the disk full: 20 ms,
/// doubling, at most 1 s.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(20u64.saturating_mul(1 << attempt.min(6)).min(1000))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Op;

    #[test]
    fn one_episode_per_fill() {
        let d = DiskFull::default();
        let e = StorageError::new(
            Op::Write,
            std::path::Path::new("/o/s/c_0"),
            std::io::Error::from_raw_os_error(libc::ENOSPC),
        )
        .needing(10);
        let t0 = Instant::now();
        assert_eq!(d.hit("s", &e, t0), Duration::ZERO);
        assert_eq!(
            d.hit("s", &e, t0 + Duration::from_secs(3)),
            Duration::from_secs(3)
        );
        let ep = d.episode().unwrap();
        assert_eq!((ep.hits, ep.needed), (2, Some(10)));
        d.cleared("s");
        assert!(!d.is_full());
        assert_eq!(d.hit("s", &e, t0 + Duration::from_secs(9)), Duration::ZERO);
        assert_eq!(backoff(0), Duration::from_millis(20));
        assert_eq!(backoff(30), Duration::from_secs(1));
    }
}
