//! Trace chunks and the chunk registry.
//!
//! A chunk is a directory of a session's output (relative to the session directory) that streams
//! write into between two rotations. Chunks are shared by every relay session created from one
//! sessiond session (one per consumer daemon), so the registry keys them by
//! (sessiond uuid, sessiond session id, chunk id) and hands the same object to each. The registry
//! holds weak references: a chunk lives while a session (as current or pending-closure chunk) or a
//! stream holds it, which is what TRACE_CHUNK_EXISTS reports. When the last holder lets go, the
//! chunk is queued for its close command ([`crate::storage::tree::Releases`]; `Drop` does no
//! I/O), which the next commit or housekeeping tick carries out: MOVE_TO_COMPLETED renames its
//! directory to `archives/START-END-ID`, DELETE removes what it holds, none leaves it in place.
//!
//! A chunk whose path is `""` is the session directory itself; it remembers the top-level
//! directories it created (`ust`, `kernel`) so a rename or delete moves only those.

use crate::storage::layout;
use crate::storage::pool::Root;
use crate::storage::tree::{self, Disposal, Release, Releases};
use crate::storage::{Fs, StorageError};
use dashmap::DashMap;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

pub use trelay_proto::lttng::relayd::CloseCommand;

/// Registry key of a chunk. Besides LTTng's (sessiond uuid, sessiond session id, chunk id), the
/// key holds the session directory: relay sessions of one sessiond session resolve to the same
/// directory, and a peer that reuses another session's uuid and id cannot reach its chunks.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChunkKey {
    /// The session directory (absolute).
    pub session_dir: PathBuf,
    /// The sessiond's uuid.
    pub sessiond_uuid: [u8; 16],
    /// The sessiond's own session id.
    pub sessiond_session_id: u64,
    /// The chunk id.
    pub chunk_id: u64,
}

#[derive(Debug)]
struct ChunkState {
    path: String,
    name: Option<String>,
    name_overridden: bool,
    close_ts: Option<u64>,
    close_cmd: Option<CloseCommand>,
    top_dirs: BTreeSet<String>,
    /// Directories holding stream files, marked open for crash recovery until the chunk is
    /// released (see [`crate::storage::recovery`]).
    marked: BTreeSet<String>,
    /// A session writing here failed: at release, its directories are cut back to what was
    /// committed (as crash recovery would) before the markers go.
    torn: bool,
}

/// One trace chunk.
#[derive(Debug)]
pub struct Chunk {
    key: ChunkKey,
    creation_ts: u64,
    session_dir: PathBuf,
    fs: Fs,
    releases: Arc<Releases>,
    /// The chunk's current directory (absolute), which its open files reopen through.
    root: Root,
    state: Mutex<ChunkState>,
}

/// Locks a std mutex, recovering the data if a holder panicked.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Chunk {
    /// The chunk id.
    pub fn id(&self) -> u64 {
        self.key.chunk_id
    }

    /// Registry key.
    pub fn key(&self) -> ChunkKey {
        self.key.clone()
    }

    /// Its directory relative to the session directory (`""` = the session directory).
    pub fn path(&self) -> String {
        lock(&self.state).path.clone()
    }

    /// Its name (`None` for chunk 0 before it is closed).
    pub fn name(&self) -> Option<String> {
        lock(&self.state).name.clone()
    }

    /// Whether its name came from the peer.
    pub fn name_overridden(&self) -> bool {
        lock(&self.state).name_overridden
    }

    /// The generated name (`START[-END]-ID`).
    fn generated_name(&self, end: Option<u64>) -> String {
        layout::chunk_name(self.creation_ts, end, self.key.chunk_id)
    }

    /// Sets the path of a chunk nobody wrote into yet.
    pub fn set_initial_path(&self, path: &str) {
        let mut st = lock(&self.state);
        st.path = path.to_owned();
        *lock(&self.root) = self.session_dir.join(path);
    }

    /// The file system the chunk lives on.
    pub fn fs(&self) -> &Fs {
        &self.fs
    }

    /// Opens (creating directories as needed) `rel_dir/file` inside the chunk, with `f` doing the
    /// open on the absolute path. The chunk stays locked meanwhile so no rename runs under it.
    pub fn with_dir<T>(
        &self,
        rel_dir: &str,
        f: impl FnOnce(&Path) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let mut st = lock(&self.state);
        self.open_dir(&mut st, rel_dir, f)
    }

    /// Like [`Chunk::with_dir`] for a directory that receives stream files: the first time, the
    /// directory gets the open-trace marker, removed when the chunk is released (see
    /// [`crate::storage::recovery`]).
    pub fn with_trace_dir<T>(
        &self,
        rel_dir: &str,
        f: impl FnOnce(&Path) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let mut st = lock(&self.state);
        let marked = st.marked.contains(rel_dir);
        let r = self.open_dir(&mut st, rel_dir, |dir| {
            if !marked {
                crate::storage::recovery::mark(&self.fs, dir, true)?;
            }
            f(dir)
        })?;
        if !marked {
            st.marked.insert(rel_dir.to_owned());
        }
        Ok(r)
    }

    fn open_dir<T>(
        &self,
        st: &mut ChunkState,
        rel_dir: &str,
        f: impl FnOnce(&Path) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let base = self.session_dir.join(&st.path);
        let dir = if rel_dir.is_empty() {
            base
        } else {
            base.join(rel_dir)
        };
        tree::create_dir_all(&self.fs, &dir)?;
        if let Some(top) = rel_dir.split('/').next().filter(|t| !t.is_empty()) {
            st.top_dirs.insert(top.to_owned());
        }
        f(&dir)
    }

    /// Moves the chunk's directory to `new_path` (relative to the session directory).
    pub fn rename(&self, new_path: &str) -> Result<(), StorageError> {
        let mut st = lock(&self.state);
        if st.path == new_path {
            return Ok(());
        }
        tree::move_dir(
            &self.fs,
            &self.session_dir,
            &st.path,
            new_path,
            &st.top_dirs,
        )?;
        st.path = new_path.to_owned();
        *lock(&self.root) = self.session_dir.join(new_path);
        Ok(())
    }

    /// Renames the chunk to its generated (or overridden) name.
    pub fn rename_to_name(&self) -> Result<(), StorageError> {
        let name = {
            let mut st = lock(&self.state);
            if st.name.is_none() {
                st.name = Some(self.generated_name(None));
            }
            st.name.clone().unwrap_or_default()
        };
        self.rename(&name)
    }

    /// Records the close time and command; the name becomes `START-END-ID` unless overridden.
    pub fn close(&self, close_ts: u64, cmd: Option<CloseCommand>) {
        let mut st = lock(&self.state);
        st.close_ts = Some(close_ts);
        st.close_cmd = cmd;
        if !st.name_overridden {
            st.name = Some(self.generated_name(Some(close_ts)));
        }
    }
}

impl Chunk {
    /// The chunk's current directory, shared with the files inside it.
    pub fn root(&self) -> Root {
        self.root.clone()
    }

    /// A session writing here failed: what it wrote past its last commit is cut at release.
    pub fn mark_torn(&self) {
        lock(&self.state).torn = true;
    }
}

impl Drop for Chunk {
    /// Every stream that wrote here closed or left, and what it wrote is committed: queue the
    /// chunk's close command (carried out by [`Releases::run`], not here).
    fn drop(&mut self) {
        let st = lock(&self.state);
        let disposal = match st.close_cmd {
            Some(CloseCommand::MoveToCompleted) => Disposal::Archive(
                st.name
                    .clone()
                    .unwrap_or_else(|| self.generated_name(st.close_ts)),
            ),
            Some(CloseCommand::Delete) => Disposal::Delete,
            Some(CloseCommand::NoOperation) | None => Disposal::Keep,
        };
        self.releases.push(Release {
            chunk_id: self.key.chunk_id,
            session_dir: self.session_dir.clone(),
            path: st.path.clone(),
            root: self.root.clone(),
            tops: st.top_dirs.clone(),
            marked: st.marked.clone(),
            torn: st.torn,
            disposal,
        });
    }
}

/// Chunks shared by the relay sessions of each sessiond session.
#[derive(Debug)]
pub struct ChunkRegistry {
    chunks: DashMap<ChunkKey, Weak<Chunk>>,
    fs: Fs,
    releases: Arc<Releases>,
}

impl ChunkRegistry {
    /// An empty registry of chunks living on `fs`.
    pub fn new(fs: Fs) -> ChunkRegistry {
        ChunkRegistry {
            chunks: DashMap::new(),
            fs,
            releases: Arc::new(Releases::default()),
        }
    }

    /// Chunks released and waiting for their close command.
    pub fn releases(&self) -> &Releases {
        &self.releases
    }

    /// The release queue, shared (for a blocking task that outlives a borrow of the registry).
    pub fn releases_handle(&self) -> Arc<Releases> {
        self.releases.clone()
    }

    /// Carries out the close commands of released chunks (a blocking step: call it on the commit
    /// thread or a blocking thread, holding no lock). Returns how many were released.
    pub fn run_releases(&self) -> usize {
        self.releases.run(&self.fs)
    }

    /// Returns the live chunk for `key`, or creates it (rooted in `session_dir`, `path` relative
    /// to it, optional override name). The boolean tells whether it was created.
    pub fn publish(
        &self,
        key: ChunkKey,
        creation_ts: u64,
        session_dir: &Path,
        override_name: Option<&str>,
        path: impl FnOnce() -> String,
    ) -> (Arc<Chunk>, bool) {
        let mut entry = self.chunks.entry(key.clone()).or_default();
        if let Some(c) = entry.upgrade() {
            return (c, false);
        }
        let (path, name) = match override_name {
            Some(n) => (n.to_owned(), Some(n.to_owned())),
            None => (path(), None),
        };
        let chunk = Arc::new(Chunk {
            key,
            creation_ts,
            root: Arc::new(Mutex::new(session_dir.join(&path))),
            session_dir: session_dir.to_path_buf(),
            fs: self.fs.clone(),
            releases: self.releases.clone(),
            state: Mutex::new(ChunkState {
                path,
                name,
                name_overridden: override_name.is_some(),
                close_ts: None,
                close_cmd: None,
                top_dirs: BTreeSet::new(),
                marked: BTreeSet::new(),
                torn: false,
            }),
        });
        *entry = Arc::downgrade(&chunk);
        (chunk, true)
    }

    /// The chunk for `key` if something still holds it.
    pub fn get(&self, key: &ChunkKey) -> Option<Arc<Chunk>> {
        let found = self.chunks.get(key).and_then(|w| w.upgrade());
        if found.is_none() {
            self.chunks.remove_if(key, |_, w| w.strong_count() == 0);
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Op;

    fn key(id: u64) -> ChunkKey {
        ChunkKey {
            session_dir: PathBuf::from("/unused"),
            sessiond_uuid: [1; 16],
            sessiond_session_id: 7,
            chunk_id: id,
        }
    }

    #[test]
    fn shared_while_held_then_archived() {
        let dir = tempfile::tempdir().unwrap();
        let reg = ChunkRegistry::new(crate::storage::RealFs::shared());
        let (c0, created) = reg.publish(key(0), 1000, dir.path(), None, String::new);
        assert!(created);
        let (again, created) = reg.publish(key(0), 1000, dir.path(), None, || "x".into());
        assert!(!created && Arc::ptr_eq(&c0, &again));
        drop(again);
        c0.with_dir("ust/uid/0", |d| {
            std::fs::write(d.join("f"), b"1").map_err(|e| StorageError::new(Op::Write, d, e))
        })
        .unwrap();
        c0.rename(".tmp_old_chunk").unwrap();
        assert!(dir.path().join(".tmp_old_chunk/ust/uid/0/f").exists());
        c0.close(2000, Some(CloseCommand::MoveToCompleted));
        let name = c0.name().unwrap();
        assert!(reg.get(&key(0)).is_some());
        drop(c0);
        assert!(reg.get(&key(0)).is_none());
        assert!(
            dir.path().join(".tmp_old_chunk").exists(),
            "dropping does no I/O"
        );
        assert_eq!(reg.run_releases(), 1);
        assert!(dir
            .path()
            .join("archives")
            .join(name)
            .join("ust/uid/0/f")
            .exists());
        assert!(!dir.path().join(".tmp_old_chunk").exists());
    }

    #[test]
    fn delete_at_session_root_removes_only_its_dirs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keep"), b"").unwrap();
        let reg = ChunkRegistry::new(crate::storage::RealFs::shared());
        let (c, _) = reg.publish(key(0), 1, dir.path(), None, String::new);
        c.with_dir("kernel", |d| {
            std::fs::write(d.join("channel0_0"), b"x")
                .map_err(|e| StorageError::new(Op::Write, d, e))
        })
        .unwrap();
        c.close(2, Some(CloseCommand::Delete));
        drop(c);
        assert!(dir.path().join("kernel").exists(), "dropping does no I/O");
        reg.run_releases();
        assert!(!dir.path().join("kernel").exists());
        assert!(dir.path().join("keep").exists());
    }

    #[test]
    fn new_chunk_back_to_root() {
        let dir = tempfile::tempdir().unwrap();
        let reg = ChunkRegistry::new(crate::storage::RealFs::shared());
        let (c, _) = reg.publish(key(1), 1, dir.path(), None, || ".tmp_new_chunk".into());
        c.with_dir("ust", |d| {
            std::fs::write(d.join("m"), b"x").map_err(|e| StorageError::new(Op::Write, d, e))
        })
        .unwrap();
        c.rename("").unwrap();
        assert!(dir.path().join("ust/m").exists());
        assert!(!dir.path().join(".tmp_new_chunk").exists());
    }
}
