//! One relay per output folder: an exclusive `flock` (fs2) on `<output>/.trelayd.lock`, held for
//! the relay's lifetime.
//!
//! Two relays writing into one folder would recreate each other's files and cut each other's
//! tails at recovery. The second one is refused at start with a clear error (the binary exits
//! non-zero). The lock goes away with the process, whatever way it ends; the file stays and holds
//! the pid of the last relay that took it (informational only).

use super::Fs;
use fs2::FileExt;
use std::fs::File;
use std::io::IoSlice;
use std::path::{Path, PathBuf};

/// Name of the lock file in the output folder.
pub const FILE: &str = ".trelayd.lock";

/// The held lock (released when dropped).
#[derive(Debug)]
pub struct OutputLock {
    _file: File,
    path: PathBuf,
}

impl OutputLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Why the output folder could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum OutputLockError {
    /// Another process holds the lock.
    #[error(
        "output folder {} is in use by another trelayd (lock {} is held{}); \
         give each relay its own --output",
        .dir.display(), .path.display(), .holder.as_deref().map(|p| format!(" by pid {p}")).unwrap_or_default()
    )]
    Busy {
        /// The output folder.
        dir: PathBuf,
        /// The lock file.
        path: PathBuf,
        /// The pid written in the file, if readable.
        holder: Option<String>,
    },
    /// The lock file could not be opened or locked.
    #[error("cannot lock output folder {}: {source}", .path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Takes the exclusive lock of `output` (which must exist), through the file system `fs`.
pub fn acquire(fs: &Fs, output: &Path) -> Result<OutputLock, OutputLockError> {
    let path = output.join(FILE);
    let io = |source| OutputLockError::Io {
        path: path.clone(),
        source,
    };
    // Never truncate before holding the lock: the file names the relay that holds it.
    let file = match fs.open(&path, true) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => fs.create(&path),
        r => r,
    }
    .map_err(io)?;
    if let Err(e) = file.try_lock_exclusive() {
        if e.kind() == std::io::ErrorKind::WouldBlock
            || e.raw_os_error() == fs2::lock_contended_error().raw_os_error()
        {
            let mut buf = [0u8; 32];
            let n = fs.read_at(&file, &path, &mut buf, 0).unwrap_or(0);
            let holder = std::str::from_utf8(&buf[..n])
                .ok()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty());
            return Err(OutputLockError::Busy {
                dir: output.to_path_buf(),
                path,
                holder,
            });
        }
        return Err(io(e));
    }
    let pid = format!("{}\n", std::process::id());
    fs.set_len(&file, &path, 0)
        .and_then(|()| fs.write_at(&file, &path, &[IoSlice::new(pid.as_bytes())], 0))
        .map_err(io)?;
    Ok(OutputLock { _file: file, path })
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
    fn a_second_relay_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let fs = super::super::RealFs::shared();
        let first = acquire(&fs, dir.path()).unwrap();
        let err = acquire(&fs, dir.path()).unwrap_err();
        assert!(matches!(err, OutputLockError::Busy { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("in use by another trelayd"), "{msg}");
        assert!(msg.contains(&std::process::id().to_string()), "{msg}");
        drop(first);
        acquire(&fs, dir.path()).unwrap();
    }
}
