//! Small JSON records the relay keeps beside the traces (session manifests, forwarding ledger):
//! replaced atomically, read back with a size cap, a broken one ignored with a warning.

use super::{Fs, Op, StorageError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::Path;

/// Largest record read back.
const MAX_RECORD: usize = 16 << 20;

/// Writes (replaces) `path` with `value`, creating its directory.
pub fn write<T: Serialize>(fs: &Fs, path: &Path, value: &T) -> Result<(), StorageError> {
    if let Some(dir) = path.parent() {
        fs.create_dir_all(dir)
            .map_err(|e| StorageError::new(Op::CreateDir, dir, e))?;
    }
    let text = serde_json::to_string(value).unwrap_or_default();
    super::output_lock::write_atomically(fs, path, &text)
}

/// Reads `path`, if it holds a valid record; `what` names it in warnings.
pub fn read<T: DeserializeOwned>(fs: &Fs, path: &Path, what: &str) -> Option<T> {
    let f = super::StorageFile::open(fs, path.to_path_buf(), false).ok()?;
    let len = usize::try_from(f.len().ok()?).ok()?;
    if len > MAX_RECORD {
        tracing::warn!(path = %path.display(), "{what} too large: ignored");
        return None;
    }
    let mut buf = vec![0u8; len];
    f.read_exact_at(&mut buf, 0).ok()?;
    match serde_json::from_slice(&buf) {
        Ok(m) => Some(m),
        Err(e) => {
            tracing::warn!(path = %path.display(), "unreadable {what}: {e}");
            None
        }
    }
}

/// Removes `path` (a missing file is fine).
pub fn remove(fs: &Fs, path: &Path, what: &str) {
    if let Err(e) = fs.remove_file(path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), "cannot remove the {what}: {e}");
        }
    }
}
