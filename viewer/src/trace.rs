//! Finding CTF traces on disk, as LTTng's relay lays them out (§6 of the wire reference):
//!
//! ```text
//! <trace dir>/metadata
//! <trace dir>/<stream>            data file (CTF packets, back to back)
//! <trace dir>/index/<stream>.idx  its index (16-byte header, one entry per packet)
//! ```
//!
//! A trace directory is any directory under the root holding a `metadata` file or an `index/`
//! folder. Stream files are its other regular files whose name does not start with a dot.

use std::path::{Path, PathBuf};

use crate::tsdl::{Metadata, MetadataError};

/// Folders deeper than this below the root are not searched.
const MAX_DEPTH: usize = 32;

/// One stream file and its index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamFiles {
    /// The stream's file name (e.g. `channel0_0`).
    pub name: String,
    /// The data file (may not exist when only the index does).
    pub data: PathBuf,
    /// The index file (may not exist).
    pub index: PathBuf,
    /// Data file path relative to the root, `/`-separated (the stream's label).
    pub label: String,
}

/// A trace directory.
#[derive(Debug, Clone)]
pub struct TraceDir {
    /// Its path.
    pub dir: PathBuf,
    /// Its path relative to the root (`.` for the root itself).
    pub label: String,
    /// Its streams, sorted by name.
    pub streams: Vec<StreamFiles>,
}

impl TraceDir {
    /// The metadata file's path.
    pub fn metadata_path(&self) -> PathBuf {
        self.dir.join("metadata")
    }

    /// Reads the metadata file.
    pub fn metadata(&self) -> Result<Metadata, TraceError> {
        let p = self.metadata_path();
        let bytes = std::fs::read(&p).map_err(|e| TraceError::Io(p.clone(), e))?;
        Metadata::from_file_bytes(&bytes).map_err(|e| TraceError::Metadata(p, e))
    }
}

/// Errors reading a trace.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// A file or folder could not be read.
    #[error("{}: {}", .0.display(), .1)]
    Io(PathBuf, std::io::Error),
    /// The metadata could not be read.
    #[error("{}: {}", .0.display(), .1)]
    Metadata(PathBuf, MetadataError),
    /// No trace under the root.
    #[error("{}: no CTF trace (no folder with a metadata file or an index folder)", .0.display())]
    NoTrace(PathBuf),
}

/// `path` relative to `root`, `/`-separated; `.` for the root.
pub fn label(root: &Path, path: &Path) -> String {
    match path.strip_prefix(root) {
        Ok(rel) if rel.as_os_str().is_empty() => ".".to_owned(),
        Ok(rel) => rel.to_string_lossy().into_owned(),
        Err(_) => path.to_string_lossy().into_owned(),
    }
}

/// Every trace directory under `root` (`root` included), sorted by path.
pub fn discover(root: &Path) -> Result<Vec<TraceDir>, TraceError> {
    let meta = std::fs::metadata(root).map_err(|e| TraceError::Io(root.to_owned(), e))?;
    if !meta.is_dir() {
        return Err(TraceError::Io(
            root.to_owned(),
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a folder"),
        ));
    }
    let mut out = Vec::new();
    walk(root, root, 0, &mut out)?;
    out.sort_by(|a, b| a.dir.cmp(&b.dir));
    Ok(out)
}

/// Like [`discover`], but an error when there is no trace at all.
pub fn discover_some(root: &Path) -> Result<Vec<TraceDir>, TraceError> {
    let t = discover(root)?;
    if t.is_empty() {
        return Err(TraceError::NoTrace(root.to_owned()));
    }
    Ok(t)
}

fn walk(root: &Path, dir: &Path, depth: usize, out: &mut Vec<TraceDir>) -> Result<(), TraceError> {
    if depth > MAX_DEPTH {
        return Ok(());
    }
    let rd = std::fs::read_dir(dir).map_err(|e| TraceError::Io(dir.to_owned(), e))?;
    let mut files = Vec::new();
    let mut subdirs = Vec::new();
    for e in rd {
        let e = e.map_err(|e| TraceError::Io(dir.to_owned(), e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            subdirs.push(name);
        } else if ft.is_file() {
            files.push(name);
        }
    }
    let has_index = subdirs.iter().any(|d| d == "index");
    let has_metadata = files.iter().any(|f| f == "metadata");
    if has_index || has_metadata {
        out.push(TraceDir {
            dir: dir.to_owned(),
            label: label(root, dir),
            streams: streams_of(root, dir, &files, has_index),
        });
    }
    subdirs.sort();
    for d in subdirs {
        if d == "index" && has_index {
            continue;
        }
        walk(root, &dir.join(d), depth + 1, out)?;
    }
    Ok(())
}

fn streams_of(root: &Path, dir: &Path, files: &[String], has_index: bool) -> Vec<StreamFiles> {
    let mut names: Vec<String> = files
        .iter()
        .filter(|f| *f != "metadata" && !f.starts_with('.'))
        .cloned()
        .collect();
    if has_index {
        if let Ok(rd) = std::fs::read_dir(dir.join("index")) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if let Some(stem) = n.strip_suffix(".idx") {
                    if !stem.is_empty()
                        && !stem.starts_with('.')
                        && !names.iter().any(|x| x == stem)
                    {
                        names.push(stem.to_owned());
                    }
                }
            }
        }
    }
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let data = dir.join(&name);
            StreamFiles {
                index: dir.join("index").join(format!("{name}.idx")),
                label: label(root, &data),
                data,
                name,
            }
        })
        .collect()
}

/// Whether `text` matches the shell-style `pattern` (`*` any run, `?` one character, `[...]` not
/// supported: taken literally).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || Some(&c) == t.get(ti) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .is_none_or(|rest| rest.iter().all(|&c| c == '*'))
}

/// Whether a stream is selected by `glob`: matched against its file name and its path label.
pub fn stream_selected(stream: &StreamFiles, glob: Option<&str>) -> bool {
    glob.is_none_or(|g| glob_match(g, &stream.name) || glob_match(g, &stream.label))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("channel0_*", "channel0_1"));
        assert!(glob_match("*_1", "channel0_1"));
        assert!(glob_match("c?annel*1", "channel0_1"));
        assert!(glob_match("*", ""));
        assert!(!glob_match("channel1_*", "channel0_1"));
        assert!(!glob_match("a", "ab"));
        assert!(glob_match("*a*b*", "xxaxxbxx"));
        assert!(!glob_match("*a*b", "xxaxxbxx"));
    }

    #[test]
    fn finds_traces_and_streams() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("h/s/ust/uid/0/64-bit");
        std::fs::create_dir_all(d.join("index")).unwrap();
        for f in ["metadata", "channel0_0", "channel0_1", ".hidden"] {
            std::fs::write(d.join(f), b"").unwrap();
        }
        std::fs::write(d.join("index/channel0_0.idx"), b"").unwrap();
        std::fs::write(d.join("index/orphan.idx"), b"").unwrap();
        let traces = discover(t.path()).unwrap();
        assert_eq!(traces.len(), 1);
        assert_eq!(traces[0].label, "h/s/ust/uid/0/64-bit");
        let names: Vec<_> = traces[0].streams.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["channel0_0", "channel0_1", "orphan"]);
        assert_eq!(
            traces[0].streams[0].label,
            "h/s/ust/uid/0/64-bit/channel0_0"
        );
        assert!(discover_some(&t.path().join("h/s/ust/uid/0/64-bit/index")).is_err());
        let root = discover(&d).unwrap();
        assert_eq!(root[0].label, ".");
    }
}
