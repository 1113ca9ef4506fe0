//! What an archived unit holds: every file with its size and SHA-256, written as the last
//! object of the unit (`.trelay-archive.json` beside its files) and as the local marker
//! (`.trelay-archived` in the unit's directory) once every object was verified. The marker is
//! what makes a unit count as archived: a restart skips marked units and uploads unmarked ones
//! again from the start.

use crate::storage::{Fs, Op, StorageError, StorageFile};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The local marker of an archived unit.
pub const MARKER: &str = ".trelay-archived";
/// The manifest object of an archived unit (last component of its key).
pub const MANIFEST: &str = ".trelay-archive.json";

/// One archived file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Path relative to the unit, `/`-separated, as in its key (see [`super::key::key_path`]).
    pub path: String,
    /// Bytes.
    pub size: u64,
    /// SHA-256, lowercase hex.
    pub sha256: String,
}

/// Every file of an archived unit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The files, in upload order.
    pub files: Vec<Entry>,
}

impl Manifest {
    /// Total bytes.
    pub fn bytes(&self) -> u64 {
        self.files
            .iter()
            .fold(0u64, |t, f| t.saturating_add(f.size))
    }

    /// The JSON text.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Whether the unit in `dir` is archived (its marker is there).
pub fn is_archived(fs: &Fs, dir: &Path) -> bool {
    fs.stat(&dir.join(MARKER)).is_ok()
}

/// Writes the marker of the unit in `dir`, durably (file and directory synced).
pub fn mark(fs: &Fs, dir: &Path, manifest: &Manifest) -> Result<(), StorageError> {
    let path = dir.join(MARKER);
    let f = StorageFile::create(fs, path)?;
    f.write_all_at(&manifest.to_json(), 0)?;
    f.sync_data()?;
    fs.sync_dir(dir)
        .map_err(|e| StorageError::new(Op::SyncDir, dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let fs = crate::storage::RealFs::shared();
        assert!(!is_archived(&fs, dir.path()));
        let m = Manifest {
            files: vec![Entry {
                path: "ust/metadata".into(),
                size: 3,
                sha256: hex(&[0xab, 0x01]),
            }],
        };
        mark(&fs, dir.path(), &m).unwrap();
        assert!(is_archived(&fs, dir.path()));
        let back: Manifest =
            serde_json::from_slice(&std::fs::read(dir.path().join(MARKER)).unwrap()).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.files[0].sha256, "ab01");
        assert_eq!(back.bytes(), 3);
    }
}
