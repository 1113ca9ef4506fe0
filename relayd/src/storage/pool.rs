//! The open-file pool: a bound on the file descriptors stream files keep open.
//!
//! Each stream holds a data and an index file; per-process LTTng sessions with many short-lived
//! applications open thousands of them. Every [`super::StorageFile`] keeps its descriptor in a
//! [`Slot`]; when more than `max_open_files` slots hold one, the least recently used idle slots
//! are closed, and a closed slot reopens its file (at the file's current path: chunks move) on
//! its next use, taking back its committed-frontier lock before anything is written.
//!
//! Only a file with nothing uncommitted is closed (everything written lies below its
//! committed-frontier lock, so no local reader can see uncommitted bytes meanwhile), and never
//! while an operation uses it. Recency is an epoch, advanced by each eviction round and by the
//! relay's tick, rather than a per-operation counter, so the data path only reads one shared
//! word. The pool is process-wide, like the descriptor table it protects.

use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, Weak};

/// `lock_from` of a file that holds no committed-frontier lock.
pub const NO_LOCK: u64 = u64::MAX;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The current directory of a trace chunk: shared by the chunk (which updates it when it moves)
/// and the files inside it (which reopen through it).
pub type Root = Arc<Mutex<PathBuf>>;

/// Where a file is: a fixed path, or a path relative to a chunk that may move.
#[derive(Debug, Clone)]
pub enum Location {
    /// A path that does not move.
    Fixed(PathBuf),
    /// `rel` under the chunk directory `root`.
    InChunk {
        /// The chunk's current directory.
        root: Root,
        /// The path under it.
        rel: PathBuf,
    },
}

impl Location {
    /// The file's path now.
    pub fn current(&self) -> PathBuf {
        match self {
            Location::Fixed(p) => p.clone(),
            Location::InChunk { root, rel } => lock(root).join(rel),
        }
    }
}

impl From<PathBuf> for Location {
    fn from(p: PathBuf) -> Location {
        Location::Fixed(p)
    }
}

/// One file's descriptor (or none, while closed by the pool) and what eviction needs to know.
#[derive(Debug)]
pub struct Slot {
    file: Mutex<Option<Arc<File>>>,
    used: AtomicU64,
    end: AtomicU64,
    lock_from: AtomicU64,
}

impl Slot {
    /// A slot holding the freshly opened `file`, counted in the pool.
    pub fn new(file: File, end: u64) -> Arc<Slot> {
        let slot = Arc::new(Slot {
            file: Mutex::new(Some(Arc::new(file))),
            used: AtomicU64::new(POOL.epoch.load(Ordering::Relaxed)),
            end: AtomicU64::new(end),
            lock_from: AtomicU64::new(NO_LOCK),
        });
        POOL.register(&slot);
        slot
    }

    /// The open descriptor, reopening it with `reopen` if the pool closed it (`relock` then
    /// takes the committed-frontier lock back on the new descriptor).
    pub fn get(
        &self,
        reopen: impl FnOnce() -> std::io::Result<File>,
        relock: impl FnOnce(&File, u64),
    ) -> std::io::Result<Arc<File>> {
        self.used
            .store(POOL.epoch.load(Ordering::Relaxed), Ordering::Relaxed);
        let mut g = lock(&self.file);
        if let Some(f) = &*g {
            return Ok(f.clone());
        }
        let f = match reopen() {
            Err(e) if is_out_of_fds(&e) => {
                // Make room and try once more.
                drop(g);
                POOL.evict(true);
                g = lock(&self.file);
                if let Some(f) = &*g {
                    return Ok(f.clone());
                }
                return Err(e);
            }
            r => r?,
        };
        let from = self.lock_from.load(Ordering::Acquire);
        if from != NO_LOCK {
            relock(&f, from);
        }
        let f = Arc::new(f);
        *g = Some(f.clone());
        drop(g);
        POOL.reopened();
        Ok(f)
    }

    /// Records that bytes up to `end` were written.
    pub fn wrote(&self, end: u64) {
        self.end.fetch_max(end, Ordering::AcqRel);
    }

    /// Records that the file was cut to `len`.
    pub fn cut(&self, len: u64) {
        self.end.store(len, Ordering::Release);
    }

    /// Records where the committed-frontier lock now starts.
    pub fn locked_from(&self, from: u64) {
        self.lock_from.store(from, Ordering::Release);
    }

    /// Whether the slot holds a descriptor now.
    pub fn is_open(&self) -> bool {
        lock(&self.file).is_some()
    }

    /// Closes the descriptor if nothing is uncommitted and nobody uses it; true if it did.
    fn try_close(&self) -> bool {
        let from = self.lock_from.load(Ordering::Acquire);
        if from == NO_LOCK || self.end.load(Ordering::Acquire) > from {
            return false;
        }
        let mut g = lock(&self.file);
        let idle = g.as_ref().is_some_and(|f| Arc::strong_count(f) == 1);
        if idle {
            *g = None;
        }
        idle
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if lock(&self.file).is_some() {
            POOL.open.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Whether `e` says the process or the system ran out of descriptors.
pub fn is_out_of_fds(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
}

/// The process-wide pool.
#[derive(Debug)]
pub struct Pool {
    max: AtomicUsize,
    open: AtomicUsize,
    epoch: AtomicU64,
    slots: Mutex<Vec<Weak<Slot>>>,
    evicting: AtomicBool,
    evicted: AtomicU64,
}

static POOL: LazyLock<Pool> = LazyLock::new(|| Pool {
    max: AtomicUsize::new(usize::MAX),
    open: AtomicUsize::new(0),
    epoch: AtomicU64::new(0),
    slots: Mutex::new(Vec::new()),
    evicting: AtomicBool::new(false),
    evicted: AtomicU64::new(0),
});

/// The pool.
pub fn pool() -> &'static Pool {
    &POOL
}

impl Pool {
    /// Sets how many stream files may hold a descriptor at once (at least 16).
    pub fn set_max(&self, max: usize) {
        self.max.store(max.max(16), Ordering::Release);
        self.evict(false);
    }

    /// The bound.
    pub fn max(&self) -> usize {
        self.max.load(Ordering::Acquire)
    }

    /// Stream files holding a descriptor now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Descriptors closed by the pool so far.
    pub fn evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }

    /// Advances the recency epoch.
    pub fn advance(&self) {
        self.epoch.fetch_add(1, Ordering::Relaxed);
    }

    /// The relay's periodic step: advances the epoch and closes what became closable since
    /// (files left open over the bound while they held uncommitted bytes).
    pub fn tick(&self) {
        self.advance();
        self.evict(false);
    }

    fn register(&self, slot: &Arc<Slot>) {
        {
            let mut slots = lock(&self.slots);
            if slots.len() >= 64 && slots.len().is_power_of_two() {
                slots.retain(|w| w.strong_count() > 0);
            }
            slots.push(Arc::downgrade(slot));
        }
        self.reopened();
    }

    fn reopened(&self) {
        let n = self.open.fetch_add(1, Ordering::AcqRel) + 1;
        if n > self.max() {
            self.evict(false);
        }
    }

    /// Closes the least recently used idle descriptors until a sixteenth of the bound is free
    /// (`hard`: also when under the bound, because the system refused a descriptor).
    pub fn evict(&self, hard: bool) {
        let max = self.max();
        let target = max - max / 16;
        if !hard && self.open() <= max {
            return;
        }
        if self.evicting.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut candidates: Vec<(u64, Arc<Slot>)> = {
            let mut slots = lock(&self.slots);
            slots.retain(|w| w.strong_count() > 0);
            slots
                .iter()
                .filter_map(Weak::upgrade)
                .map(|s| (s.used.load(Ordering::Relaxed), s))
                .collect()
        };
        candidates.sort_by_key(|(used, _)| *used);
        let want = if hard {
            (self.open() / 16).max(1)
        } else {
            self.open().saturating_sub(target)
        };
        let mut closed = 0usize;
        for (_, s) in &candidates {
            if closed >= want {
                break;
            }
            if s.try_close() {
                closed += 1;
                self.open.fetch_sub(1, Ordering::AcqRel);
            }
        }
        self.evicted.fetch_add(closed as u64, Ordering::Relaxed);
        self.advance();
        self.evicting.store(false, Ordering::Release);
        if closed < want {
            tracing::debug!(
                open = self.open(),
                max,
                "open-file pool: not enough idle committed files to close"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{RealFs, StorageFile};

    #[test]
    fn idle_committed_files_are_closed_and_reopen_where_their_chunk_moved() {
        let dir = tempfile::tempdir().unwrap();
        let fs = RealFs::shared();
        let first = dir.path().join("chunk-a");
        std::fs::create_dir_all(&first).unwrap();
        let root: Root = Arc::new(Mutex::new(first.clone()));
        let files: Vec<StorageFile> = (0..64)
            .map(|i| {
                let loc = Location::InChunk {
                    root: root.clone(),
                    rel: PathBuf::from(format!("f{i}")),
                };
                let f = StorageFile::create_at(&fs, loc).unwrap();
                f.hold_from(0);
                f.write_all_at(&[i as u8; 10], 0).unwrap();
                f
            })
            .collect();
        // Uncommitted bytes keep every file open whatever the bound.
        pool().set_max(16);
        assert!(files.iter().all(StorageFile::is_open));
        for f in &files {
            f.hold_from(10);
        }
        pool().set_max(16);
        let open = files.iter().filter(|f| f.is_open()).count();
        assert!(open <= 16, "{open} of 64 still open");
        assert!(pool().evicted() >= 48);
        // The chunk moves; a closed file reopens at its new place, locked again.
        let second = dir.path().join("archives-b");
        std::fs::rename(&first, &second).unwrap();
        *lock(&root) = second.clone();
        for (i, f) in files.iter().enumerate() {
            f.write_all_at(&[0xee; 2], 10).unwrap();
            let mut back = [0u8; 12];
            f.read_exact_at(&mut back, 0).unwrap();
            assert_eq!(&back[..10], &[i as u8; 10]);
            assert_eq!(&back[10..], &[0xee; 2]);
            let reader = std::fs::File::open(second.join(format!("f{i}"))).unwrap();
            assert!(crate::storage::lock::range_locked(&reader, 10, 2).unwrap());
            assert!(!crate::storage::lock::range_locked(&reader, 0, 10).unwrap());
        }
        pool().set_max(usize::MAX);
    }
}
