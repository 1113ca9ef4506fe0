//! Directory operations on trace chunks: creating their directories, moving them (rotation,
//! archiving) and deleting them, and the queue of released chunks whose archive or delete waits
//! for an explicit step ([`Releases::run`]) outside every stream and session lock.
//!
//! A chunk at `""` is the session directory itself: only the top-level directories it created
//! (`ust`, `kernel`) move or go; a chunk moving to `""` spreads its top-level directories into the
//! session directory and removes its own (then empty) directory.

use super::error::{Result, StorageError};
use super::fs::{Fs, Op};
use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Creates `dir` and its parents.
pub fn create_dir_all(fs: &Fs, dir: &Path) -> Result<()> {
    fs.create_dir_all(dir)
        .map_err(|e| StorageError::new(Op::CreateDir, dir, e))
}

fn exists(fs: &Fs, p: &Path) -> bool {
    fs.stat(p).is_ok()
}

fn rename(fs: &Fs, from: &Path, to: &Path) -> Result<()> {
    fs.rename(from, to)
        .map_err(|e| StorageError::new(Op::Rename, from, e))
}

/// Moves chunk directory `from` to `to` (both relative to `session`); `tops` are the top-level
/// directories the chunk created.
pub fn move_dir(
    fs: &Fs,
    session: &Path,
    from: &str,
    to: &str,
    tops: &BTreeSet<String>,
) -> Result<()> {
    if from.is_empty() {
        let dst = session.join(to);
        create_dir_all(fs, &dst)?;
        return move_tops(fs, session, &dst, tops);
    }
    let src = session.join(from);
    if to.is_empty() {
        move_tops(fs, &src, session, tops)?;
        return match fs.remove_dir(&src) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(StorageError::new(Op::Remove, &src, e))
            }
            _ => Ok(()),
        };
    }
    if !exists(fs, &src) {
        return create_dir_all(fs, &session.join(to));
    }
    if let Some(parent) = session.join(to).parent() {
        create_dir_all(fs, parent)?;
    }
    rename(fs, &src, &session.join(to))
}

/// Moves the top-level directories `tops` of `from` into `to`, all or none: when one rename
/// fails, those already moved go back (so the chunk stays whole where it was).
fn move_tops(fs: &Fs, from: &Path, to: &Path, tops: &BTreeSet<String>) -> Result<()> {
    let mut moved: Vec<&String> = Vec::with_capacity(tops.len());
    for t in tops {
        let src = from.join(t);
        if !exists(fs, &src) {
            continue;
        }
        if let Err(e) = rename(fs, &src, &to.join(t)) {
            for m in moved.into_iter().rev() {
                if let Err(back) = rename(fs, &to.join(m), &from.join(m)) {
                    tracing::error!("cannot move {} back after a failed move: {back}", m);
                }
            }
            return Err(e);
        }
        moved.push(t);
    }
    Ok(())
}

/// Removes a directory tree (a missing one is fine).
pub fn remove_tree(fs: &Fs, p: &Path) -> Result<()> {
    match fs.remove_dir_all(p) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(StorageError::new(Op::Remove, p, e)),
        _ => Ok(()),
    }
}

/// Deletes chunk directory `path` (relative to `session`).
pub fn delete(fs: &Fs, session: &Path, path: &str, tops: &BTreeSet<String>) -> Result<()> {
    if path.is_empty() {
        for t in tops {
            remove_tree(fs, &session.join(t))?;
        }
        Ok(())
    } else {
        remove_tree(fs, &session.join(path))
    }
}

/// What happens to a released chunk's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposal {
    /// Stays where it is.
    Keep,
    /// Moves to `archives/NAME` of the session directory.
    Archive(String),
    /// Is deleted.
    Delete,
}

/// A chunk every holder let go of: its directory waits for its disposal.
#[derive(Debug, Clone)]
pub struct Release {
    /// The chunk id (for the log).
    pub chunk_id: u64,
    /// The session directory.
    pub session_dir: PathBuf,
    /// The chunk's directory relative to it.
    pub path: String,
    /// The chunk's current directory, as its files still open (viewers) reopen it.
    pub root: super::pool::Root,
    /// Top-level directories the chunk created.
    pub tops: BTreeSet<String>,
    /// Directories carrying the open-trace marker (relative to the chunk).
    pub marked: BTreeSet<String>,
    /// A session writing here failed: cut the marked directories back to their last commit.
    pub torn: bool,
    /// What to do.
    pub disposal: Disposal,
}

/// Released chunks waiting for their archive or delete.
#[derive(Debug, Default)]
pub struct Releases {
    queue: Mutex<Vec<Release>>,
    /// Chunks (session directory, chunk id) queued or being released right now.
    unfinished: Mutex<Vec<(PathBuf, u64)>>,
    serial: Mutex<()>,
}

impl Releases {
    /// Queues a released chunk (no I/O: safe anywhere, `Drop` included).
    pub fn push(&self, r: Release) {
        lock(&self.unfinished).push((r.session_dir.clone(), r.chunk_id));
        lock(&self.queue).push(r);
    }

    /// Whether any chunk is queued or being released.
    pub fn busy(&self) -> bool {
        !lock(&self.unfinished).is_empty()
    }

    /// Whether chunk `chunk_id` of the session in `session_dir` is queued or being released
    /// (TRACE_CHUNK_EXISTS answers yes until its archive or delete is done).
    pub fn unfinished(&self, session_dir: &Path, chunk_id: u64) -> bool {
        lock(&self.unfinished)
            .iter()
            .any(|(d, id)| *id == chunk_id && d == session_dir)
    }

    /// Whether releases wait.
    pub fn pending(&self) -> bool {
        !lock(&self.queue).is_empty()
    }

    /// Performs every queued release (call on a blocking thread, holding no other lock): the
    /// open-trace markers go, then the directory is archived or deleted. Failures are logged and
    /// the chunk stays where it is. Returns the releases done.
    pub fn run(&self, fs: &Fs) -> usize {
        let _serial = lock(&self.serial);
        let queue = std::mem::take(&mut *lock(&self.queue));
        let n = queue.len();
        for r in queue {
            let base = r.session_dir.join(&r.path);
            for dir in &r.marked {
                if r.torn {
                    // Bytes past the last commit of a failed session are never indexed: cut
                    // them as crash recovery would (this also removes the marker).
                    let mut report = super::recovery::Report::default();
                    let _ = super::recovery::recover_dir(fs, &base.join(dir), &mut report, true);
                    tracing::info!(
                        chunk = r.chunk_id,
                        dir = %base.join(dir).display(),
                        data_bytes_cut = report.data_bytes_cut,
                        index_entries_dropped = report.index_entries_dropped,
                        "failed session: cut back to its last commit"
                    );
                } else {
                    super::recovery::unmark(fs, &base.join(dir));
                }
            }
            let result = match &r.disposal {
                Disposal::Archive(name) => create_dir_all(fs, &r.session_dir.join("archives"))
                    .and_then(|()| {
                        let to = format!("archives/{name}");
                        move_dir(fs, &r.session_dir, &r.path, &to, &r.tops)?;
                        *lock(&r.root) = r.session_dir.join(to);
                        Ok(())
                    }),
                Disposal::Delete => delete(fs, &r.session_dir, &r.path, &r.tops),
                Disposal::Keep => Ok(()),
            };
            {
                let mut u = lock(&self.unfinished);
                if let Some(at) = u
                    .iter()
                    .position(|(d, id)| *id == r.chunk_id && *d == r.session_dir)
                {
                    u.swap_remove(at);
                }
            }
            match result {
                Ok(()) => {
                    tracing::debug!(chunk = r.chunk_id, disposal = ?r.disposal, "chunk released")
                }
                Err(e) => tracing::error!(
                    chunk = r.chunk_id,
                    disposal = ?r.disposal,
                    dir = %r.session_dir.display(),
                    "chunk close command failed: {e}"
                ),
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::fault::{FaultFs, Rule};
    use crate::storage::fs::RealFs;

    #[test]
    fn a_failed_move_leaves_the_chunk_whole_where_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let session = dir.path();
        for t in ["kernel", "ust"] {
            std::fs::create_dir_all(session.join(t)).unwrap();
            std::fs::write(session.join(t).join("f"), t).unwrap();
        }
        let tops: BTreeSet<String> = ["kernel".to_owned(), "ust".to_owned()].into();
        let (fs, faults) = FaultFs::wrap(RealFs::shared());
        // `kernel` moves, `ust` fails: `kernel` must come back.
        faults.add(Rule::new(Op::Rename, "/ust", libc::EIO).times(1));
        let e = move_dir(&fs, session, "", ".tmp_old_chunk", &tops).unwrap_err();
        assert_eq!(e.op, Op::Rename);
        for t in ["kernel", "ust"] {
            assert_eq!(
                std::fs::read_to_string(session.join(t).join("f")).unwrap(),
                t
            );
        }
        assert!(!session.join(".tmp_old_chunk/kernel").exists());
        // Once the device works again the move goes through.
        move_dir(&fs, session, "", ".tmp_old_chunk", &tops).unwrap();
        assert!(session.join(".tmp_old_chunk/ust/f").exists());
        assert!(!session.join("ust").exists());
    }
}
