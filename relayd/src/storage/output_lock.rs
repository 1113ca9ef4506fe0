//! One relay per output folder: an exclusive `flock` (fs2) on `<output>/.trelayd.lock`, held for
//! the relay's lifetime.
//!
//! Two relays writing into one folder would recreate each other's files and cut each other's
//! tails at recovery. The second one is refused at start with a clear error (the binary exits
//! non-zero). The lock goes away with the process, whatever way it ends; the file stays and holds
//! the pid of the last relay that took it (informational only).

use fs2::FileExt;
use std::fs::File;
use std::io::Write;
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

/// Takes the exclusive lock of `output` (which must exist).
pub fn acquire(output: &Path) -> Result<OutputLock, OutputLockError> {
    let path = output.join(FILE);
    let io = |source| OutputLockError::Io {
        path: path.clone(),
        source,
    };
    let mut file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    if let Err(e) = file.try_lock_exclusive() {
        if e.kind() == std::io::ErrorKind::WouldBlock
            || e.raw_os_error() == fs2::lock_contended_error().raw_os_error()
        {
            let holder = std::fs::read_to_string(&path)
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
    file.set_len(0)
        .and_then(|()| file.write_all(format!("{}\n", std::process::id()).as_bytes()))
        .map_err(io)?;
    Ok(OutputLock { _file: file, path })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_relay_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = acquire(dir.path()).unwrap();
        let err = acquire(dir.path()).unwrap_err();
        assert!(matches!(err, OutputLockError::Busy { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("in use by another trelayd"), "{msg}");
        assert!(msg.contains(&std::process::id().to_string()), "{msg}");
        drop(first);
        acquire(dir.path()).unwrap();
    }
}
