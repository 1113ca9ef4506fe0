//! Finding what may be archived: the closed units of the output folder, found the way retention
//! finds what it may delete ([`crate::storage::retention`]).
//!
//! - a **chunk**: a directory under a session's `archives/` (it is moved there only once
//!   released: complete and committed) holding no open-trace marker;
//! - a **session**: a session directory (two levels below the output root) holding no open-trace
//!   marker anywhere and no session of the running relay holds; its own files are those outside
//!   `archives/` (the chunk it was writing last when it never rotated, for one).
//!
//! A session's chunks come before it in the list; the session itself is archived only after all
//! of them ([`Unit::waits`]). trelay's own bookkeeping files (`.trelay-*`) are never uploaded.

use super::key::components;
use super::manifest::is_archived;
use crate::storage::recovery::marked_dirs;
use crate::storage::Fs;
use std::path::{Path, PathBuf};

/// Directories deeper than this under a unit are not uploaded.
const MAX_DEPTH: usize = 32;

/// Kinds of unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitKind {
    /// A closed chunk under `archives/`.
    Chunk,
    /// A closed session's own files.
    Session,
}

/// Something to archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// Its directory.
    pub dir: PathBuf,
    /// Its directory relative to the output root, one component each.
    pub rel: Vec<String>,
    /// What it is.
    pub kind: UnitKind,
    /// Its marker is there.
    pub archived: bool,
    /// A session whose chunks are not all archived yet.
    pub waits: bool,
}

/// One file of a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitFile {
    /// Its path.
    pub path: PathBuf,
    /// Its path relative to the unit, one component each.
    pub rel: Vec<String>,
}

fn subdirs(fs: &Fs, dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs
        .read_dir(dir)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.meta.is_dir && !e.name.starts_with('.'))
        .map(|e| e.name)
        .collect();
    v.sort();
    v
}

/// The closed units under the output root `root`; `held(dir)` tells whether a session
/// directory belongs to a session the relay still holds.
pub fn units(fs: &Fs, root: &Path, held: &dyn Fn(&Path) -> bool) -> Vec<Unit> {
    let mut out = Vec::new();
    for top in subdirs(fs, root) {
        for name in subdirs(fs, &root.join(&top)) {
            let dir = root.join(&top).join(&name);
            let Ok(rel) = components(Path::new(&top).join(&name).as_path()) else {
                continue;
            };
            let mut all_chunks_archived = true;
            for c in subdirs(fs, &dir.join("archives")) {
                let cdir = dir.join("archives").join(&c);
                if !marked_dirs(fs, &cdir).is_empty() {
                    all_chunks_archived = false;
                    continue;
                }
                let mut crel = rel.clone();
                crel.extend(["archives".to_owned(), c]);
                let archived = is_archived(fs, &cdir);
                all_chunks_archived &= archived;
                out.push(Unit {
                    dir: cdir,
                    rel: crel,
                    kind: UnitKind::Chunk,
                    archived,
                    waits: false,
                });
            }
            if held(&dir) || !marked_dirs(fs, &dir).is_empty() {
                continue;
            }
            out.push(Unit {
                archived: is_archived(fs, &dir),
                dir,
                rel,
                kind: UnitKind::Session,
                waits: !all_chunks_archived,
            });
        }
    }
    out
}

/// The files of `unit` to upload, sorted (a session's `archives/` and `.trelay-*` files left
/// out; names that are not plain components are skipped).
pub fn files(fs: &Fs, unit: &Unit) -> std::io::Result<Vec<UnitFile>> {
    let mut found = Vec::new();
    // The unit's own directory must be listable: a vanished unit is an error, not "empty".
    fs.read_dir(&unit.dir)?;
    let mut stack: Vec<(PathBuf, Vec<String>)> = vec![(unit.dir.clone(), Vec::new())];
    while let Some((dir, rel)) = stack.pop() {
        for e in fs.read_dir(&dir)? {
            if e.name.starts_with(".trelay-")
                || (unit.kind == UnitKind::Session && rel.is_empty() && e.name == "archives")
                || super::key::check_component(&e.name).is_err()
            {
                continue;
            }
            let mut r = rel.clone();
            r.push(e.name.clone());
            if e.meta.is_dir {
                if r.len() <= MAX_DEPTH {
                    stack.push((dir.join(&e.name), r));
                }
            } else {
                found.push(UnitFile {
                    path: dir.join(&e.name),
                    rel: r,
                });
            }
        }
    }
    found.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::RealFs;

    #[test]
    fn closed_chunks_then_their_closed_session() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let s = root.join("host/s-1");
        for d in ["archives/c1/ust/uid", "archives/c2/ust", "ust/open"] {
            std::fs::create_dir_all(s.join(d)).unwrap();
        }
        std::fs::write(s.join("archives/c1/ust/uid/chan_0"), b"x").unwrap();
        std::fs::write(s.join("archives/c2/ust/.trelay-open"), b"").unwrap();
        std::fs::write(s.join("ust/open/metadata"), b"m").unwrap();
        std::fs::write(s.join("ust/open/.trelay-open"), b"").unwrap();
        let fs = RealFs::shared();
        let u = units(&fs, root, &|_| false);
        // c2 is still being written; the session too (markers): only c1.
        assert_eq!(u.len(), 1);
        assert_eq!(u[0].rel, ["host", "s-1", "archives", "c1"]);
        assert_eq!(u[0].kind, UnitKind::Chunk);
        let f = files(&fs, &u[0]).unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].rel, ["ust", "uid", "chan_0"]);
        // Everything closed: the session waits for its chunks.
        std::fs::remove_file(s.join("archives/c2/ust/.trelay-open")).unwrap();
        std::fs::remove_file(s.join("ust/open/.trelay-open")).unwrap();
        let u = units(&fs, root, &|_| false);
        assert_eq!(u.len(), 3);
        let session = u.last().unwrap();
        assert_eq!(session.kind, UnitKind::Session);
        assert!(session.waits && !session.archived);
        let f = files(&fs, session).unwrap();
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].rel, ["ust", "open", "metadata"]);
        // A held session is not listed; its closed chunks are.
        assert_eq!(units(&fs, root, &|d| d == s).len(), 2);
    }
}
