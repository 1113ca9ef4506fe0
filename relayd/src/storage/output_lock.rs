//! One relay per output folder: an exclusive `flock` on the output folder itself (its directory
//! descriptor), held for the relay's lifetime.
//!
//! Two relays writing into one folder would recreate each other's files and cut each other's
//! tails at recovery. The second one is refused at start with a clear error (the binary exits
//! non-zero) naming the pid that holds the lock (read from `/proc/locks`). The lock is on the
//! directory's inode, so every path to the folder (symlinks, bind mounts, `..` spellings) meets
//! the same lock; it goes away with the process, whatever way it ends; and nothing is written
//! into the folder, which holds only what lttng-relayd would write there.
//!
//! Earlier versions locked a file `.trelayd.lock` in the folder: such a file is removed when no
//! relay holds it, and one still held (a relay of an earlier version running) refuses the start
//! like the directory lock.

use super::Fs;
use fs2::FileExt;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Name of the lock file earlier versions kept in the output folder.
pub const LEGACY_FILE: &str = ".trelayd.lock";

/// The held lock (released when dropped).
#[derive(Debug)]
pub struct OutputLock {
    _dir: File,
    path: PathBuf,
}

impl OutputLock {
    /// The locked folder.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Why the output folder could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum OutputLockError {
    /// Another process holds the lock.
    #[error(
        "output folder {} is in use by another trelayd ({}); give each relay its own --output",
        .dir.display(),
        .holder.map(|p| format!("pid {p} holds its lock")).unwrap_or_else(|| "its lock is held".into())
    )]
    Busy {
        /// The output folder.
        dir: PathBuf,
        /// The pid holding the lock, when `/proc/locks` says.
        holder: Option<u32>,
    },
    /// The folder could not be opened or locked.
    #[error("cannot lock output folder {}: {source}", .path.display())]
    Io {
        /// The folder (or the legacy lock file).
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

fn contended(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::WouldBlock
        || e.raw_os_error() == fs2::lock_contended_error().raw_os_error()
}

/// The pid holding a `flock` on the inode of `file`, from `/proc/locks`.
fn holder(file: &File) -> Option<u32> {
    let meta = file.metadata().ok()?;
    let dev = meta.dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let want = format!("{major:02x}:{minor:02x}:{}", meta.ino());
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    locks.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        // "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"
        let i = f.iter().position(|w| *w == "FLOCK")?;
        (f.get(i + 4) == Some(&want.as_str()))
            .then(|| f.get(i + 3)?.parse().ok())
            .flatten()
    })
}

/// Takes the exclusive lock of `output` (which must exist), through the file system `fs` (for
/// the legacy lock file).
pub fn acquire(fs: &Fs, output: &Path) -> Result<OutputLock, OutputLockError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| OutputLockError::Io { path, source }
    };
    let dir = File::open(output).map_err(io(output))?;
    if let Err(e) = dir.try_lock_exclusive() {
        if contended(&e) {
            return Err(OutputLockError::Busy {
                dir: output.to_path_buf(),
                holder: holder(&dir),
            });
        }
        return Err(io(output)(e));
    }
    let legacy = output.join(LEGACY_FILE);
    match fs.open(&legacy, false) {
        Ok(f) => match f.try_lock_exclusive() {
            Ok(()) => {
                if let Err(e) = fs.remove_file(&legacy) {
                    tracing::warn!("cannot remove the old lock file {}: {e}", legacy.display());
                }
            }
            Err(e) if contended(&e) => {
                let mut buf = [0u8; 16];
                let n = fs.read_at(&f, &legacy, &mut buf, 0).unwrap_or(0);
                let holder = std::str::from_utf8(&buf[..n])
                    .ok()
                    .and_then(|s| s.trim().parse().ok());
                return Err(OutputLockError::Busy {
                    dir: output.to_path_buf(),
                    holder,
                });
            }
            Err(e) => return Err(io(&legacy)(e)),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(&legacy)(e)),
    }
    Ok(OutputLock {
        _dir: dir,
        path: output.to_path_buf(),
    })
}

/// Writes `text` to `path` atomically (a temporary file renamed over it), through `fs`: the
/// bound ports for scripts that start the relay on port 0.
pub fn write_atomically(fs: &Fs, path: &Path, text: &str) -> Result<(), super::StorageError> {
    let tmp = path.with_extension("tmp");
    let f = super::StorageFile::create(fs, tmp.clone())?;
    f.write_all_at(text.as_bytes(), 0)?;
    drop(f);
    fs.rename(&tmp, path)
        .map_err(|e| super::StorageError::new(super::Op::Rename, path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_relay_is_refused_until_the_first_lets_go_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let fs = super::super::RealFs::shared();
        let first = acquire(&fs, dir.path()).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        // Another path to the same folder meets the same lock.
        let alias = dir.path().join("..").join(dir.path().file_name().unwrap());
        let err = acquire(&fs, &alias).unwrap_err();
        assert!(matches!(err, OutputLockError::Busy { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("in use by another trelayd"), "{msg}");
        assert!(
            msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        drop(first);
        acquire(&fs, dir.path()).unwrap();
    }

    #[test]
    fn a_legacy_lock_file_is_removed_when_free_and_refuses_when_held() {
        let dir = tempfile::tempdir().unwrap();
        let fs = super::super::RealFs::shared();
        let legacy = dir.path().join(LEGACY_FILE);
        std::fs::write(&legacy, "4242\n").unwrap();
        let held = File::open(&legacy).unwrap();
        held.try_lock_exclusive().unwrap();
        let err = acquire(&fs, dir.path()).unwrap_err();
        assert!(err.to_string().contains("pid 4242"), "{err}");
        drop(held);
        let lock = acquire(&fs, dir.path()).unwrap();
        assert!(!legacy.exists());
        drop(lock);
    }
}
