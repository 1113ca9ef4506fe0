//! The forwarding ledger: one record per session not yet fully acknowledged by the core,
//! `OUTPUT/.trelay-forward/<identity>.json`, written before the job's first connection and
//! removed once the core acknowledged the session's close. A relay restarted with records left
//! resumes their jobs (same identity, so the core resumes the same session).

use crate::session::manifest::hex;
use crate::storage::{json, Fs};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Directory of the ledger under the output root.
pub const DIR: &str = ".trelay-forward";

/// A session to forward.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Its identity at the core.
    pub id: [u8; 16],
    /// Session directory, relative to the output root.
    pub rel_dir: PathBuf,
    /// Session name.
    pub name: String,
    /// Host name it is filed under.
    pub hostname: String,
    /// Live timer (µs; 0 for a session that is not live).
    pub live_timer_us: u32,
}

fn path(output: &Path, id: &[u8; 16]) -> PathBuf {
    output.join(DIR).join(format!("{}.json", hex(id)))
}

/// Records `e`.
pub fn write(fs: &Fs, output: &Path, e: &Entry) -> Result<(), crate::storage::StorageError> {
    json::write(fs, &path(output, &e.id), e)
}

/// The session of `id` is forwarded: its record goes.
pub fn remove(fs: &Fs, output: &Path, id: &[u8; 16]) {
    json::remove(fs, &path(output, id), "forwarding record");
}

/// Every valid record, in file-name order. A record naming a directory that is not one relative
/// path below the output root is ignored.
pub fn read_all(fs: &Fs, output: &Path) -> Vec<Entry> {
    let mut names: Vec<String> = match fs.read_dir(&output.join(DIR)) {
        Ok(v) => v
            .into_iter()
            .filter(|e| !e.meta.is_dir && e.name.ends_with(".json"))
            .map(|e| e.name)
            .collect(),
        Err(_) => return Vec::new(),
    };
    names.sort();
    names
        .into_iter()
        .filter_map(|n| json::read::<Entry>(fs, &output.join(DIR).join(n), "forwarding record"))
        .filter(|e| {
            let ok = e.rel_dir.components().count() > 0
                && e.rel_dir
                    .components()
                    .all(|c| matches!(c, std::path::Component::Normal(_)));
            if !ok {
                tracing::warn!(dir = %e.rel_dir.display(), "forwarding record outside the output folder: ignored");
            }
            ok
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_bad_ones_are_ignored() {
        let tmp = tempfile::tempdir().unwrap();
        let fs = crate::storage::RealFs::shared();
        let e = Entry {
            id: [7; 16],
            rel_dir: "host/s-20261207-010101".into(),
            name: "s".into(),
            hostname: "host".into(),
            live_timer_us: 1000,
        };
        write(&fs, tmp.path(), &e).unwrap();
        let mut bad = e.clone();
        bad.id = [8; 16];
        bad.rel_dir = "../escape".into();
        write(&fs, tmp.path(), &bad).unwrap();
        std::fs::write(tmp.path().join(DIR).join("junk.json"), b"{").unwrap();
        assert_eq!(read_all(&fs, tmp.path()), vec![e.clone()]);
        remove(&fs, tmp.path(), &e.id);
        assert!(read_all(&fs, tmp.path()).is_empty());
    }
}
