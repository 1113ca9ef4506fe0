//! Crash: SIGKILL trelayd while a live session streams into it. On disk, every index entry must
//! point at a whole packet inside its data file (no entry past the data), babeltrace2 must read
//! the trace, and a restarted trelayd on the same output folder must cut the torn tails (every
//! data file ends exactly at its last indexed packet, the open-trace markers are gone), keep every
//! committed entry, and serve new sessions. A second relay on the same folder is refused.

use anyhow::{ensure, Context, Result};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use trelay_integration::lttng::{lttng, sessiond, steady_allocs, Workload};
use trelay_integration::relay::Trelayd;
use trelay_integration::session::small_buffer_session;
use trelay_integration::{files_under, wait_for};

/// Checks every index file against its data file; returns the number of entries.
fn check_indexes(root: &Path) -> Result<usize> {
    let mut entries = 0;
    for f in files_under(root) {
        let s = f.to_string_lossy().into_owned();
        let Some(stem) = s.strip_suffix(".idx") else {
            continue;
        };
        let idx = std::fs::read(root.join(&f))?;
        ensure!(
            idx.len() >= 16 && idx[0..4] == [0xc1, 0xf1, 0xdc, 0xc1],
            "{s}: bad header"
        );
        let entry_len = u32::from_be_bytes(idx[12..16].try_into()?) as usize;
        ensure!(entry_len == 72, "{s}: entry length {entry_len}");
        ensure!((idx.len() - 16) % entry_len == 0, "{s}: torn index entry");
        let data_path = root.join(stem.replace("/index/", "/"));
        let data = std::fs::read(&data_path).with_context(|| format!("data file of {s}"))?;
        let mut prev_end = 0u64;
        for e in idx[16..].chunks(entry_len) {
            let offset = u64::from_be_bytes(e[0..8].try_into()?);
            let size = u64::from_be_bytes(e[8..16].try_into()?) / 8;
            ensure!(
                offset == prev_end,
                "{s}: entry at {offset}, previous ended at {prev_end}"
            );
            ensure!(
                offset + size <= data.len() as u64,
                "{s}: entry [{offset}, +{size}) past the data ({})",
                data.len()
            );
            ensure!(
                data[offset as usize..offset as usize + 4] == [0xc1, 0x1f, 0xfc, 0xc1],
                "{s}: no packet magic at {offset}"
            );
            prev_end = offset + size;
            entries += 1;
        }
    }
    Ok(entries)
}

#[test]
fn sigkill_loses_nothing_committed_and_restart_serves() -> Result<()> {
    let _lock = sessiond()?;
    let tmp = tempfile::Builder::new().prefix("trelay-crash-").tempdir()?;
    let out = tmp.path().join("out");
    let mut relay = Trelayd::start_with_output(&tmp.path().join("run1"), &out, &[])?;
    let tag = trelay_integration::unique("crash");
    let work = Workload::python(tmp.path(), &tag)?;
    let guard = small_buffer_session(&format!("{tag}a"), &relay.ports, true, &work)?;
    let mut app = work.spawn(&["-c", &steady_allocs(8, 100)])?;
    // Let it commit a good number of packets, then kill it mid-stream.
    wait_for(Duration::from_secs(60), "committed index entries", || {
        check_indexes(&out).map(|n| n >= 20).unwrap_or(false)
    })
    .with_context(|| relay.log_tail())?;
    relay.kill9()?;
    let _ = app.wait();
    let _ = lttng(&["destroy", &guard.0]);
    drop(guard);

    let entries = check_indexes(&out)?;
    ensure!(entries >= 20, "only {entries} entries survived");
    let events = trelay_integration::babeltrace(&out)?;
    ensure!(
        events.lines().count() >= entries,
        "babeltrace2 read {} events",
        events.lines().count()
    );

    // A restarted relay cuts the torn tails, then serves a new session on the same folder.
    let mut relay = Trelayd::start_with_output(&tmp.path().join("run2"), &out, &[])?;
    let after = check_indexes(&out)?;
    ensure!(
        after == entries,
        "recovery changed {entries} entries into {after}"
    );
    check_tails(&out)?;
    ensure!(!marker_left(&out), "open-trace markers left after recovery");
    ensure!(
        relay.log_text().contains("crash recovery"),
        "recovery was not logged: {}",
        relay.log_tail()
    );
    let events_after = trelay_integration::babeltrace(&out)?;
    ensure!(
        events_after == events,
        "babeltrace2 reads {} events after recovery, {} before",
        events_after.lines().count(),
        events.lines().count()
    );
    // A second relay on the same output folder is refused (exit status non-zero, clear error).
    let second = Command::new(trelay_integration::relay::trelayd_bin())
        .arg("-o")
        .arg(&out)
        .args(["-C", "tcp://127.0.0.1:0", "-D", "tcp://127.0.0.1:0"])
        .args(["-L", "tcp://127.0.0.1:0"])
        .stdin(Stdio::null())
        .output()?;
    let err = String::from_utf8_lossy(&second.stderr);
    ensure!(
        !second.status.success(),
        "a second relay ran on the same folder"
    );
    ensure!(err.contains("in use by another trelayd"), "{err}");
    let name = format!("{tag}b");
    let guard = small_buffer_session(&name, &relay.ports, false, &work)?;
    work.run(&["-c", trelay_integration::scenario::WORKLOAD, "100"])?;
    lttng(&["stop", &name])?;
    lttng(&["destroy", &name])?;
    drop(guard);
    relay.stop_ok()?;
    let dir = std::fs::read_dir(out.join(hostname()?))?
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with(&name))
        .context("no folder for the new session")?;
    let text = trelay_integration::babeltrace(&dir.path())?;
    ensure!(
        text.lines().count() >= 100,
        "the new session holds {} events",
        text.lines().count()
    );
    check_indexes(&out)?;
    Ok(())
}

/// Every data file with an index ends exactly where its last indexed packet ends.
fn check_tails(root: &Path) -> Result<()> {
    for f in files_under(root) {
        let s = f.to_string_lossy().into_owned();
        let Some(stem) = s.strip_suffix(".idx") else {
            continue;
        };
        let idx = std::fs::read(root.join(&f))?;
        let end = idx[16..]
            .chunks(72)
            .map(|e| {
                let offset = u64::from_be_bytes(e[0..8].try_into().unwrap_or_default());
                offset + u64::from_be_bytes(e[8..16].try_into().unwrap_or_default()) / 8
            })
            .max()
            .unwrap_or(0);
        let data_len = std::fs::metadata(root.join(stem.replace("/index/", "/")))?.len();
        ensure!(
            data_len == end,
            "{s}: data file holds {data_len} bytes, its last indexed packet ends at {end}"
        );
    }
    Ok(())
}

fn marker_left(root: &Path) -> bool {
    fn walk(dir: &Path) -> bool {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.file_name() == ".trelay-open" || (e.path().is_dir() && walk(&e.path())))
    }
    walk(root)
}

fn hostname() -> Result<String> {
    Ok(std::fs::read_to_string("/proc/sys/kernel/hostname")?
        .trim()
        .to_owned())
}
