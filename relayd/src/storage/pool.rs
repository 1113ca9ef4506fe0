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
use std::time::{Duration, Instant};

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

/// How long an open waits for the pool to free a descriptor (every open one in use) before it
/// fails with `EMFILE`.
const ADMIT_WAIT: Duration = Duration::from_secs(5);

impl Slot {
    /// Opens a file with `open` once the pool has room for its descriptor, and counts it there;
    /// `end` is how far the file was written (its bytes up to `end` count as written).
    pub fn open_with(
        mut open: impl FnMut() -> std::io::Result<File>,
        end: u64,
    ) -> std::io::Result<Arc<Slot>> {
        let file = POOL.admit(&mut open)?;
        let slot = Arc::new(Slot {
            file: Mutex::new(Some(Arc::new(file))),
            used: AtomicU64::new(POOL.epoch.load(Ordering::Relaxed)),
            end: AtomicU64::new(end),
            lock_from: AtomicU64::new(NO_LOCK),
        });
        POOL.register(&slot);
        Ok(slot)
    }

    /// The open descriptor, reopening it with `reopen` if the pool closed it (`relock` then
    /// takes the committed-frontier lock back on the new descriptor).
    pub fn get(
        &self,
        mut reopen: impl FnMut() -> std::io::Result<File>,
        relock: impl Fn(&File, u64),
    ) -> std::io::Result<Arc<File>> {
        self.used
            .store(POOL.epoch.load(Ordering::Relaxed), Ordering::Relaxed);
        if let Some(f) = &*lock(&self.file) {
            return Ok(f.clone());
        }
        // Room first (eviction locks other slots, never this one: it holds no descriptor).
        let f = POOL.admit(&mut reopen)?;
        let mut g = lock(&self.file);
        if let Some(other) = &*g {
            // Reopened meanwhile by another user: give the room back.
            let other = other.clone();
            drop(g);
            drop(f);
            POOL.open.fetch_sub(1, Ordering::AcqRel);
            return Ok(other);
        }
        let mut from = self.lock_from.load(Ordering::Acquire);
        if from != NO_LOCK {
            relock(&f, from);
        }
        let f = Arc::new(f);
        *g = Some(f.clone());
        drop(g);
        // A lock moved while the file was being reopened (by a user that found it closed) is
        // moved on the new descriptor too.
        loop {
            let now = self.lock_from.load(Ordering::Acquire);
            if now == from || now == NO_LOCK {
                break;
            }
            relock(&f, now);
            from = now;
        }
        POOL.reopens.fetch_add(1, Ordering::Relaxed);
        Ok(f)
    }

    /// The descriptor if the slot holds one now (never reopens).
    pub fn current(&self) -> Option<Arc<File>> {
        lock(&self.file).clone()
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

    /// How eviction ranks the slot: `None` if it may not be closed at all (a file opened without
    /// a committed-frontier lock), else whether it holds uncommitted bytes.
    fn dirty(&self) -> Option<bool> {
        let from = self.lock_from.load(Ordering::Acquire);
        (from != NO_LOCK).then(|| self.end.load(Ordering::Acquire) > from)
    }

    /// Closes the descriptor if nobody uses it (and, unless `dirty`, only if nothing is
    /// uncommitted); true if it did.
    fn try_close(&self, dirty: bool) -> bool {
        match self.dirty() {
            None => return false,
            Some(true) if !dirty => return false,
            Some(_) => {}
        }
        // Held: someone is (re)opening or using it right now; not a candidate.
        let Ok(mut g) = self.file.try_lock() else {
            return false;
        };
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
    spilled: AtomicU64,
    reopens: AtomicU64,
}

static POOL: LazyLock<Pool> = LazyLock::new(|| Pool {
    max: AtomicUsize::new(usize::MAX),
    open: AtomicUsize::new(0),
    epoch: AtomicU64::new(0),
    slots: Mutex::new(Vec::new()),
    evicting: AtomicBool::new(false),
    evicted: AtomicU64::new(0),
    spilled: AtomicU64::new(0),
    reopens: AtomicU64::new(0),
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

    /// Stream files holding a descriptor now (never more than [`Self::max`]).
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Descriptors closed by the pool so far.
    pub fn evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }

    /// Of those, descriptors of files holding uncommitted bytes (closed because every file
    /// over the bound held some).
    pub fn spilled(&self) -> u64 {
        self.spilled.load(Ordering::Relaxed)
    }

    /// Descriptors reopened after the pool closed them.
    pub fn reopens(&self) -> u64 {
        self.reopens.load(Ordering::Relaxed)
    }

    /// Advances the recency epoch.
    pub fn advance(&self) {
        self.epoch.fetch_add(1, Ordering::Relaxed);
    }

    /// The relay's periodic step: advances the epoch and closes idle committed files while the
    /// pool is near its bound, so opens rarely have to wait for an eviction.
    pub fn tick(&self) {
        self.advance();
        self.evict(false);
    }

    fn register(&self, slot: &Arc<Slot>) {
        let mut slots = lock(&self.slots);
        if slots.len() >= 64 && slots.len().is_power_of_two() {
            slots.retain(|w| w.strong_count() > 0);
        }
        slots.push(Arc::downgrade(slot));
    }

    /// Takes room for one descriptor (closing others to make it: the bound is never passed),
    /// then opens it with `open`; an `EMFILE` from the system closes more and tries once again.
    fn admit(&self, open: &mut dyn FnMut() -> std::io::Result<File>) -> std::io::Result<File> {
        let started = Instant::now();
        loop {
            let n = self.open.load(Ordering::Acquire);
            if n < self.max() {
                if self
                    .open
                    .compare_exchange(n, n + 1, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    break;
                }
                continue;
            }
            if self.make_room() == 0 {
                // Every descriptor is in use this instant, or another thread is evicting.
                if started.elapsed() > ADMIT_WAIT {
                    return Err(std::io::Error::from_raw_os_error(libc::EMFILE));
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        let r = match open() {
            Err(e) if is_out_of_fds(&e) => {
                self.evict(true);
                open()
            }
            r => r,
        };
        if r.is_err() {
            self.open.fetch_sub(1, Ordering::AcqRel);
        }
        r
    }

    /// Closes down to the eviction target, files holding uncommitted bytes too if need be;
    /// how many it closed.
    fn make_room(&self) -> usize {
        self.close_some(false, true)
    }

    /// Closes the least recently used idle descriptors of files with nothing uncommitted until
    /// a sixteenth of the bound is free; `hard` (the system refused a descriptor): a sixteenth
    /// of those open, whatever the bound, files holding uncommitted bytes too if need be.
    pub fn evict(&self, hard: bool) {
        self.close_some(hard, hard);
    }

    /// The eviction round. Files with nothing uncommitted go first; with `spill`, when they are
    /// not enough, files holding uncommitted bytes are closed too: they reopen on their next
    /// use with their committed-frontier lock taken back (their unlocked tail is readable
    /// meanwhile), and the commit's fdatasync reaches their written bytes through the new
    /// descriptor (a sync flushes the file, not the descriptor).
    fn close_some(&self, hard: bool, spill: bool) -> usize {
        let max = self.max();
        let target = max - max / 16;
        if !hard && self.open() <= target {
            return 0;
        }
        if self.evicting.swap(true, Ordering::AcqRel) {
            return 0;
        }
        let mut candidates: Vec<(bool, u64, Arc<Slot>)> = {
            let mut slots = lock(&self.slots);
            slots.retain(|w| w.strong_count() > 0);
            slots
                .iter()
                .filter_map(Weak::upgrade)
                .filter_map(|s| {
                    let dirty = s.dirty()?;
                    let open = s.file.try_lock().is_ok_and(|g| g.is_some());
                    (open && (spill || !dirty)).then(|| (dirty, s.used.load(Ordering::Relaxed), s))
                })
                .collect()
        };
        let want = if hard {
            (self.open() / 16).max(1)
        } else {
            self.open().saturating_sub(target).max(1)
        };
        // Clean before dirty, least recently used first: only the `want` first (and a margin
        // for the busy ones) need ordering.
        let key = |c: &(bool, u64, Arc<Slot>)| (c.0, c.1);
        let ranked = want
            .saturating_mul(2)
            .saturating_add(16)
            .min(candidates.len());
        if ranked > 0 && ranked < candidates.len() {
            candidates.select_nth_unstable_by_key(ranked - 1, key);
            candidates.truncate(ranked);
        }
        candidates.sort_unstable_by_key(key);
        let mut closed = 0usize;
        let mut spilled = 0u64;
        for (dirty, _, s) in &candidates {
            if closed >= want {
                break;
            }
            if s.try_close(spill) {
                closed += 1;
                spilled += u64::from(*dirty);
                self.open.fetch_sub(1, Ordering::AcqRel);
            }
        }
        self.evicted.fetch_add(closed as u64, Ordering::Relaxed);
        self.spilled.fetch_add(spilled, Ordering::Relaxed);
        self.advance();
        self.evicting.store(false, Ordering::Release);
        if spilled > 0 {
            tracing::debug!(
                open = self.open(),
                max,
                spilled,
                "open-file pool: closed files holding uncommitted bytes"
            );
        }
        closed
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
        // The bound is hard: files holding uncommitted bytes are closed too when every open
        // file holds some, and reopen with their bytes and their lock.
        let dirty: Vec<StorageFile> = (0..48)
            .map(|i| {
                let f = StorageFile::create(&fs, second.join(format!("d{i}"))).unwrap();
                f.hold_from(0);
                f.write_all_at(&[i as u8; 7], 0).unwrap();
                assert!(pool().open() <= 16, "{} open", pool().open());
                f
            })
            .collect();
        assert!(pool().spilled() > 0);
        for (i, f) in dirty.iter().enumerate() {
            let mut back = [0u8; 7];
            f.read_exact_at(&mut back, 0).unwrap();
            assert_eq!(back, [i as u8; 7]);
            assert!(pool().open() <= 16);
        }
        let reader = std::fs::File::open(second.join("d47")).unwrap();
        assert!(crate::storage::lock::range_locked(&reader, 0, 7).unwrap());
        pool().set_max(usize::MAX);
    }
}
