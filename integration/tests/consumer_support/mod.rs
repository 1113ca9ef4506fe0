//! Shared by the consumer tests: recording a real local LTTng trace, running the consumer
//! library, and comparing babeltrace2 outputs.

#![allow(dead_code)]

use anyhow::{ensure, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use trelay_consumer::url::RelayUrl;
use trelay_integration::lttng::{lttng, SessionGuard, Workload};
use trelay_integration::relay::Ports;
use trelay_integration::scenario::WORKLOAD;
use trelay_integration::session::{add_vpid_procname, enable_event, large_allocs};

/// The consumer's URL of the relay listening on loopback `ports`.
pub fn relay_url(ports: Ports) -> RelayUrl {
    RelayUrl {
        host: "127.0.0.1".into(),
        control_port: ports.control,
        data_port: ports.data,
        native: false,
    }
}

/// A runtime for driving the async consumer library from a test.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Creates a local session writing to `out`, one UST channel (per-PID buffers if `per_pid`)
/// with the libc events of `work` only. Returns the guard that destroys it.
pub fn create_local(
    name: &str,
    out: &Path,
    work: &Workload,
    per_pid: bool,
    channel_opts: &[&str],
) -> Result<SessionGuard> {
    let out_s = out.to_string_lossy().into_owned();
    lttng(&["create", name, "--output", &out_s])?;
    let guard = SessionGuard(name.to_owned());
    let mut enable = vec!["enable-channel", "-u", "-s", name, "chan"];
    if per_pid {
        enable.push("--buffers-pid");
    }
    enable.extend_from_slice(channel_opts);
    lttng(&enable)?;
    enable_event(name, Some("chan"), "lttng_ust_libc:*", &large_allocs(work))?;
    add_vpid_procname(name, Some("chan"))?;
    Ok(guard)
}

/// Runs the Python workload `procs` times with `allocs` allocations each.
pub fn run_workload(work: &Workload, procs: usize, allocs: usize) -> Result<()> {
    for _ in 0..procs {
        work.run(&["-c", WORKLOAD, &allocs.to_string()])?;
    }
    Ok(())
}

/// Records a finished local trace in `out` (started, workload, stopped, destroyed).
pub fn record(
    tmp: &Path,
    tag: &str,
    per_pid: bool,
    procs: usize,
    allocs: usize,
) -> Result<PathBuf> {
    let work = Workload::python(tmp, tag)?;
    let out = tmp.join("local");
    let guard = create_local(tag, &out, &work, per_pid, &[])?;
    lttng(&["start", tag])?;
    run_workload(&work, procs, allocs)?;
    lttng(&["stop", tag])?;
    lttng(&["destroy", tag])?;
    drop(guard);
    Ok(out)
}

/// babeltrace2's full output for `path` (UTC).
pub fn bt(path: &Path) -> Result<String> {
    trelay_integration::babeltrace(path)
}

/// The single session directory a relay wrote under `root` for `hostname`.
pub fn session_dir(root: &Path, hostname: &str) -> Result<PathBuf> {
    let host = root.join(hostname);
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&host)
        .with_context(|| format!("no {}", host.display()))?
        .flatten()
        .map(|e| e.path())
        .collect();
    ensure!(
        dirs.len() == 1,
        "expected one session under {}: {dirs:?}",
        host.display()
    );
    Ok(dirs.remove(0))
}

/// Asserts that babeltrace2 prints exactly the same thing for both paths (and something).
pub fn assert_same_output(original: &Path, copy: &Path) -> Result<usize> {
    let a = bt(original)?;
    let b = bt(copy)?;
    ensure!(!a.is_empty(), "the original trace has no event");
    if a != b {
        let (la, lb): (Vec<_>, Vec<_>) = (a.lines().collect(), b.lines().collect());
        let first = la.iter().zip(&lb).position(|(x, y)| x != y);
        anyhow::bail!(
            "babeltrace2 differs: {} vs {} lines; first difference at line {first:?}: {:?} / {:?}",
            la.len(),
            lb.len(),
            first.and_then(|i| la.get(i)),
            first.and_then(|i| lb.get(i))
        );
    }
    Ok(a.lines().count())
}

/// Every regular file under `dir`, relative, sorted (index files and data included).
pub fn files(dir: &Path) -> Vec<PathBuf> {
    trelay_integration::files_under(dir)
}

/// Whether two files have identical bytes.
pub fn same_bytes(a: &Path, b: &Path) -> bool {
    matches!((std::fs::read(a), std::fs::read(b)), (Ok(x), Ok(y)) if x == y)
}

/// Copies a directory tree.
pub fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    let st = Command::new("cp").arg("-a").arg(from).arg(to).status()?;
    ensure!(st.success(), "cp -a failed");
    Ok(())
}
