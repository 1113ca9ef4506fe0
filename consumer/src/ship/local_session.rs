//! Watching the local LTTng session that writes a followed trace.
//!
//! The session is found by its output path in `lttng --mi xml list` (the session daemon the
//! `lttng` command reaches, root's or the user's). The follower treats the session as ended when
//! it is no longer listed: `lttng destroy` returns only after the consumer daemon wrote the last
//! packets (it waits for data availability), so the files are complete by then.

use std::path::{Path, PathBuf};
use std::process::Stdio;

/// The `<path>` of every session `lttng --mi xml list` reports, or `None` when the command
/// cannot run or fails.
pub async fn listed_paths() -> Option<Vec<PathBuf>> {
    let out = tokio::process::Command::new("lttng")
        .args(["--mi", "xml", "list"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .await
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Some(
        text.split("<path>")
            .skip(1)
            .filter_map(|s| {
                s.split_once("</path>")
                    .map(|(p, _)| PathBuf::from(unescape(p)))
            })
            .collect(),
    )
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// Whether a listed session writes to `dir` (compared after resolving both paths).
pub fn writes_to(paths: &[PathBuf], dir: &Path) -> bool {
    let want = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
    paths
        .iter()
        .any(|p| p.canonicalize().unwrap_or_else(|_| p.clone()) == want)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_paths() {
        let d = tempfile::tempdir().unwrap();
        let listed = vec![PathBuf::from("/nonexistent/x"), d.path().to_owned()];
        assert!(writes_to(&listed, d.path()));
        assert!(!writes_to(&listed[..1], d.path()));
        assert_eq!(unescape("a&amp;b&lt;"), "a&b<");
    }
}
