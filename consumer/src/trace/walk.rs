//! Finding the traces and streams of a local trace directory.
//!
//! `lttng create --output DIR` lays a session out as one *trace directory* per domain and buffer
//! owner: `ust/uid/<uid>/<bits>-bit/`, `ust/pid/<name>-<pid>-<date>/`, `kernel/`. Each holds a
//! `metadata` file, one data file per stream (`<channel>_<cpu>`, plus `_<n>` when the channel has
//! a tracefile size limit) and `index/<stream file>.idx`. A trace directory is any directory
//! holding a regular file named `metadata`; its path relative to the walked root is the path a
//! consumer announces to the relay. Every other regular file in it (not hidden) is a stream.
//!
//! Each data file is announced as its own relay stream named after the file, so the relay
//! writes files with exactly the original names (a size-limited channel's `chan_0_0`, `chan_0_1`
//! become streams `chan_0_0` and `chan_0_1` with no size limit). Symbolic links are not followed.

use std::fs;
use std::path::{Path, PathBuf};

use super::TraceError;

/// Longest relay path accepted by LTTng 2.13 relays (NAME_MAX, NUL excluded).
pub const MAX_RELAY_PATH: usize = 254;
/// Longest stream name accepted by LTTng 2.13 relays (NUL excluded).
pub const MAX_STREAM_NAME: usize = 263;
/// How deep the walk descends below the root.
const MAX_DEPTH: usize = 16;

/// One data stream file of a trace directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamFile {
    /// File name, which is also the relay stream name.
    pub name: String,
    /// Path of the data file.
    pub data: PathBuf,
    /// Path of its index file (which may not exist).
    pub index: PathBuf,
}

/// One trace directory: metadata and data streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceDir {
    /// The directory.
    pub dir: PathBuf,
    /// Its path relative to the walked root, `/`-separated (what ADD_STREAM carries).
    pub relay_path: String,
    /// The metadata file.
    pub metadata: PathBuf,
    /// The data streams, sorted by name.
    pub streams: Vec<StreamFile>,
}

/// Whether `name` is usable as one path component on the relay.
pub fn valid_component(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\0'])
}

/// Finds every trace directory under `root` (`root` itself included), sorted by relay path.
/// When `root` itself is a trace directory its relay path is its own name.
pub fn walk(root: &Path) -> Result<Vec<TraceDir>, TraceError> {
    let meta = fs::metadata(root).map_err(|e| TraceError::io(root, e))?;
    if !meta.is_dir() {
        return Err(TraceError::NotADirectory(root.to_owned()));
    }
    let mut out = Vec::new();
    let mut todo = vec![(root.to_path_buf(), Vec::<String>::new())];
    while let Some((dir, rel)) = todo.pop() {
        let mut entries = Vec::new();
        for entry in fs::read_dir(&dir).map_err(|e| TraceError::io(&dir, e))? {
            let entry = entry.map_err(|e| TraceError::io(&dir, e))?;
            let kind = entry
                .file_type()
                .map_err(|e| TraceError::io(entry.path(), e))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            entries.push((name, kind));
        }
        let is_trace = entries.iter().any(|(n, k)| n == "metadata" && k.is_file());
        if is_trace {
            out.push(trace_dir(root, &dir, &rel, &entries)?);
        }
        if rel.len() >= MAX_DEPTH {
            continue;
        }
        for (name, kind) in &entries {
            if kind.is_dir() && !(is_trace && name == "index") {
                let mut sub = rel.clone();
                sub.push(name.clone());
                todo.push((dir.join(name), sub));
            }
        }
    }
    out.sort_by(|a, b| a.relay_path.cmp(&b.relay_path));
    Ok(out)
}

fn trace_dir(
    root: &Path,
    dir: &Path,
    rel: &[String],
    entries: &[(String, fs::FileType)],
) -> Result<TraceDir, TraceError> {
    let relay_path = if rel.is_empty() {
        root.canonicalize()
            .ok()
            .and_then(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_owned))
            .unwrap_or_else(|| "trace".to_owned())
    } else {
        rel.join("/")
    };
    if relay_path.len() > MAX_RELAY_PATH || !relay_path.split('/').all(valid_component) {
        return Err(TraceError::BadName(relay_path));
    }
    let mut streams = Vec::new();
    for (name, kind) in entries {
        if !kind.is_file() || name == "metadata" {
            continue;
        }
        if name.len() > MAX_STREAM_NAME || !valid_component(name) {
            return Err(TraceError::BadName(format!("{relay_path}/{name}")));
        }
        streams.push(StreamFile {
            name: name.clone(),
            data: dir.join(name),
            index: dir.join("index").join(format!("{name}.idx")),
        });
    }
    streams.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(TraceDir {
        dir: dir.to_owned(),
        relay_path,
        metadata: dir.join("metadata"),
        streams,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(p: &Path) {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, b"x").unwrap();
    }

    #[test]
    fn finds_uid_pid_and_kernel_traces() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        for f in [
            "ust/uid/0/64-bit/metadata",
            "ust/uid/0/64-bit/channel0_0",
            "ust/uid/0/64-bit/channel0_1",
            "ust/uid/0/64-bit/index/channel0_0.idx",
            "ust/pid/ls-12-20260101-000000/metadata",
            "ust/pid/ls-12-20260101-000000/chan_0_0",
            "ust/pid/ls-12-20260101-000000/chan_0_1",
            "ust/pid/ls-12-20260101-000000/.hidden",
            "kernel/metadata",
            "kernel/channel0_0",
            "notatrace/file",
        ] {
            touch(&r.join(f));
        }
        let traces = walk(r).unwrap();
        let paths: Vec<_> = traces.iter().map(|t| t.relay_path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "kernel",
                "ust/pid/ls-12-20260101-000000",
                "ust/uid/0/64-bit"
            ]
        );
        let uid = &traces[2];
        let names: Vec<_> = uid.streams.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["channel0_0", "channel0_1"]);
        assert_eq!(
            uid.streams[0].index,
            r.join("ust/uid/0/64-bit/index/channel0_0.idx")
        );
        let pid_names: Vec<_> = traces[1].streams.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(pid_names, ["chan_0_0", "chan_0_1"]);
    }

    #[test]
    fn root_trace_uses_its_own_name() {
        let d = tempfile::tempdir().unwrap();
        let t = d.path().join("64-bit");
        touch(&t.join("metadata"));
        touch(&t.join("c_0"));
        let traces = walk(&t).unwrap();
        assert_eq!(traces.len(), 1);
        assert_eq!(traces[0].relay_path, "64-bit");
    }

    #[test]
    fn missing_root_is_an_error() {
        assert!(walk(Path::new("/nonexistent/trelay")).is_err());
    }

    #[test]
    fn component_validation() {
        assert!(valid_component("channel0_0"));
        for bad in ["", ".", "..", ".x", "a/b", "a\0"] {
            assert!(!valid_component(bad), "{bad:?}");
        }
    }
}
