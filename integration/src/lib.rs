//! Helpers shared by the end-to-end tests: the shared fixtures and tools, starting trelayd (and
//! lttng-relayd) as subprocesses on free ports, running babeltrace2, and driving the real LTTng
//! tools against one shared `lttng-sessiond`.

pub mod bt21;
pub mod client;
pub mod fleet;
pub mod live;
pub mod live_feed;
pub mod live_viewer;
pub mod lttng;
pub mod lttng215;
pub mod peers;
pub mod proxy;
pub mod relay;
pub mod s3;
pub mod scenario;
pub mod session;

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The shared fixtures and tools: `$TRELAY_SHARED` when set, else the copy vendored in the
/// repository's `testdata/shared`. Fails if it is missing.
pub fn shared_dir() -> Result<PathBuf> {
    let p = std::env::var_os("TRELAY_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/shared"));
    let p = p
        .canonicalize()
        .with_context(|| format!("shared folder missing at {}", p.display()))?;
    if !p.join("fixtures").is_dir() || !p.join("tools").is_dir() {
        bail!("{} has no fixtures/ or tools/", p.display());
    }
    Ok(p)
}

/// Runs babeltrace2 on `path` (in UTC) and returns its standard output.
pub fn babeltrace(path: &Path) -> Result<String> {
    let out = Command::new("babeltrace2")
        .arg(path)
        .env("TZ", "UTC")
        .output()
        .context("babeltrace2 not runnable")?;
    if !out.status.success() {
        bail!(
            "babeltrace2 {} failed: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// babeltrace2's lines for `path` with the time columns and the trace's host stripped, sorted:
/// comparable between two relays that received the same events.
pub fn normalized_events(path: &Path) -> Result<Vec<String>> {
    Ok(normalize(&babeltrace(path)?))
}

/// babeltrace2 text lines with the time and delta columns stripped, sorted (live and
/// post-mortem runs print the same events with different deltas).
pub fn normalize(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text
        .lines()
        .map(|l| {
            let l = strip_prefix_group(l, '[', ']');
            let l = strip_prefix_group(l, '(', ')');
            l.to_owned()
        })
        .collect();
    lines.sort();
    lines
}

fn strip_prefix_group(l: &str, open: char, close: char) -> &str {
    match l.strip_prefix(open).and_then(|r| r.split_once(close)) {
        Some((_, rest)) => rest.trim_start(),
        None => l,
    }
}

/// Polls `cond` every 50 ms until it holds or `timeout` passes.
pub fn wait_for(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) -> Result<()> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if cond() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("timed out after {timeout:?} waiting for {what}")
}

/// A unique name for sessions and folders of this test run.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}{}x{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// trelayd's own bookkeeping files in an output tree (the open-trace markers, the resumable
/// session manifests, the forwarding ledger), which lttng-relayd does not write.
pub const RELAY_PRIVATE: [&str; 3] = [".trelay-open", ".trelay-sessions", ".trelay-forward"];

/// Every regular file under `dir`, relative, sorted, without [`RELAY_PRIVATE`] files.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if RELAY_PRIVATE.iter().any(|n| e.file_name() == *n) {
                continue;
            }
            if p.is_dir() {
                walk(base, &p, out);
            } else if let Ok(rel) = p.strip_prefix(base) {
                out.push(rel.to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}
