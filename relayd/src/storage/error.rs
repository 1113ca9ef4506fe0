//! [`StorageError`]: what failed in the storage layer, on which file, and what kind of failure
//! it is, so callers decide by kind (wait for space, fail the session, refuse a file).

use super::fs::Op;
use std::io;
use std::path::{Path, PathBuf};

/// The kinds of storage failure callers act on differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageErrorKind {
    /// The file system is full (ENOSPC, EDQUOT): retry once space returns.
    NoSpace,
    /// The device or file system failed (EIO and every other error): not retried.
    Io,
    /// What is on the disk is not what the relay wrote (a short read, an unreadable header).
    Corruption,
}

/// A failed file operation.
#[derive(Debug, thiserror::Error)]
#[error("{op} {}: {source}{}", path.display(), needed_text(*needed))]
pub struct StorageError {
    /// What kind of failure.
    pub kind: StorageErrorKind,
    /// The operation.
    pub op: Op,
    /// The file or directory.
    pub path: PathBuf,
    /// Bytes the operation still had to write, when it was a write.
    pub needed: Option<u64>,
    /// The system's error.
    #[source]
    pub source: io::Error,
}

fn needed_text(needed: Option<u64>) -> String {
    match needed {
        Some(n) => format!(" ({n} bytes still to write)"),
        None => String::new(),
    }
}

impl StorageError {
    /// Classifies `source`, the error of `op` on `path`.
    pub fn new(op: Op, path: &Path, source: io::Error) -> StorageError {
        let kind = match source.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EDQUOT) => StorageErrorKind::NoSpace,
            _ if source.kind() == io::ErrorKind::UnexpectedEof && op == Op::Read => {
                StorageErrorKind::Corruption
            }
            _ => StorageErrorKind::Io,
        };
        StorageError {
            kind,
            op,
            path: path.to_path_buf(),
            needed: None,
            source,
        }
    }

    /// A corruption found on `path` while doing `op`.
    pub fn corruption(op: Op, path: &Path, what: &str) -> StorageError {
        StorageError {
            kind: StorageErrorKind::Corruption,
            op,
            path: path.to_path_buf(),
            needed: None,
            source: io::Error::new(io::ErrorKind::InvalidData, what.to_owned()),
        }
    }

    /// Records how many bytes the failed write still had to write.
    pub fn needing(mut self, bytes: u64) -> StorageError {
        self.needed = Some(bytes);
        self
    }

    /// Whether the file system is full (the operation can be retried once space returns).
    pub fn is_no_space(&self) -> bool {
        self.kind == StorageErrorKind::NoSpace
    }
}

/// Results of storage operations.
pub type Result<T> = std::result::Result<T, StorageError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_errno() {
        let p = Path::new("/x/y");
        let e = StorageError::new(Op::Write, p, io::Error::from_raw_os_error(libc::ENOSPC));
        assert!(e.is_no_space());
        let e = StorageError::new(Op::SyncData, p, io::Error::from_raw_os_error(libc::EIO));
        assert_eq!(e.kind, StorageErrorKind::Io);
        let e = StorageError::new(Op::Read, p, io::ErrorKind::UnexpectedEof.into());
        assert_eq!(e.kind, StorageErrorKind::Corruption);
        let text = StorageError::new(Op::Write, p, io::Error::from_raw_os_error(libc::ENOSPC))
            .needing(4096)
            .to_string();
        assert!(text.contains("/x/y") && text.contains("4096"), "{text}");
    }
}
