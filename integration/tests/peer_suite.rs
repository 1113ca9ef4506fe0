//! What lttng-tools' own regression suite checks of a relay (`tests/regression/tools/...` of
//! lttng-tools 2.13.9, run against trelayd by `../shared/peer-suite/run.sh`), each reduced to a
//! quick end-to-end test with the real LTTng tools: tracefile wrap-around after a clear, the
//! session folder a clear of an empty session leaves, the output folder holding nothing but
//! traces, the working directory options, and the health socket.

use anyhow::{ensure, Context, Result};
use std::path::{Path, PathBuf};
use trelay_integration::lttng::{lttng, sessiond, Workload};
use trelay_integration::relay::start_both;
use trelay_integration::session::{add_vpid_procname, create_streaming, enable_event};

/// The data files and index files of every stream under `root`: for each data file with bytes,
/// (path, bytes, index entries).
fn streams(root: &Path) -> Vec<(PathBuf, u64, u64)> {
    let mut out = Vec::new();
    for f in trelay_integration::files_under(root) {
        let p = root.join(&f);
        let name = f.to_string_lossy();
        if name.contains("/index/") || name.ends_with("metadata") || !name.contains("/ust/") {
            continue;
        }
        let Some(file) = p.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            continue;
        };
        let idx = p
            .parent()
            .map(|d| d.join("index").join(format!("{file}.idx")))
            .unwrap_or_default();
        let bytes = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        // CTF index: a 16-byte header whose last big-endian u32 is the entry size.
        let entries = std::fs::read(&idx)
            .ok()
            .filter(|b| b.len() >= 16)
            .map_or(0, |b| {
                let len = u64::from(u32::from_be_bytes([b[12], b[13], b[14], b[15]]));
                (b.len() as u64 - 16) / len.max(1)
            });
        if bytes > 0 {
            out.push((f, bytes, entries));
        }
    }
    out
}

/// `lttng-tools` clear/test_ust "clear with tracefile rotation, overwrite files": a channel of
/// one-page sub-buffers, tracefiles of one page, two of them per stream; the streams wrap around
/// many times. Once `lttng stop` returned, every data file must have its packets indexed
/// (lttng-relayd's are) and the trace must read: END_DATA_PENDING is answered only once what was
/// received is committed.
#[test]
fn tracefile_wrap_keeps_every_packet_indexed() -> Result<()> {
    let _lock = sessiond()?;
    let tmp = tempfile::Builder::new().prefix("trelay-it-").tempdir()?;
    let (mut reference, mut ours) = start_both(tmp.path(), &[], &[])?;
    let tag = trelay_integration::unique("wrap");
    let work = Workload::python(tmp.path(), &tag)?;
    let page = "--subbuf-size=4096";
    let mut guards = Vec::new();
    for (side, ports) in [("r", reference.ports), ("t", ours.ports)] {
        let name = format!("{tag}{side}");
        guards.push(create_streaming(&name, &ports, &[])?);
        lttng(&[
            "enable-channel",
            "-u",
            "-s",
            &name,
            "rotchan",
            page,
            "--num-subbuf=4",
            "--tracefile-size=4096",
            "--tracefile-count=2",
        ])?;
        enable_event(
            &name,
            Some("rotchan"),
            "lttng_ust_libc:malloc",
            &work.filter(),
        )?;
        add_vpid_procname(&name, Some("rotchan"))?;
        lttng(&["start", &name])?;
    }
    let program = "keep = [bytearray(1000 + i % 7) for i in range(30000)]\n";
    work.run(&["-c", program])?;
    for side in ["r", "t"] {
        let name = format!("{tag}{side}");
        lttng(&["clear", &name])?;
    }
    work.run(&["-c", program])?;
    for side in ["r", "t"] {
        lttng(&["stop", &format!("{tag}{side}")])?;
    }
    // As the suite does: read the trace as soon as `lttng stop` returned, the session still
    // there. What the relay acknowledged as received (END_DATA_PENDING) must be indexed by then.
    for (who, root) in [("lttng-relayd", &reference.out), ("trelayd", &ours.out)] {
        let files = streams(root);
        ensure!(!files.is_empty(), "{who} wrote no data file");
        for (f, bytes, entries) in &files {
            ensure!(
                *entries > 0,
                "{who}: {} holds {bytes} bytes of packets but its index has no entry",
                f.display()
            );
        }
        let events = trelay_integration::babeltrace(root).with_context(|| who.to_owned())?;
        ensure!(
            events.lines().count() > 0,
            "{who}: babeltrace2 read no event"
        );
    }
    for side in ["r", "t"] {
        lttng(&["destroy", &format!("{tag}{side}")])?;
    }
    drop(guards);
    reference.stop()?;
    ours.stop_ok()?;
    Ok(())
}

/// Every directory under `root` (relative), sorted, with the session names made equal and
/// digits folded, and every file (including trelayd's own, which must not be there).
fn tree(root: &Path, tag: &str) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if let Ok(rel) = p.strip_prefix(base) {
                let kind = if p.is_dir() { "/" } else { "" };
                out.push(format!("{}{kind}", rel.display()));
            }
            if p.is_dir() {
                walk(base, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    let mut shaped: Vec<String> = out
        .into_iter()
        .map(|s| {
            let s = s
                .replace(&format!("{tag}r"), "S")
                .replace(&format!("{tag}t"), "S");
            let mut o = String::new();
            let mut digits = false;
            for c in s.chars() {
                if c.is_ascii_digit() {
                    if !digits {
                        o.push('N');
                    }
                    digits = true;
                } else {
                    digits = false;
                    o.push(c);
                }
            }
            o
        })
        .collect();
    shaped.sort();
    shaped
}

/// `lttng-tools` clear/test_ust "streaming clear no event" (per-UID buffers, no application ran):
/// lttng-relayd leaves the session folder, empty, and so must trelayd; and
/// relayd-grouping/test_ust "output directory empty": once the traces are removed the output
/// folder holds nothing (trelayd's lock is not a file there).
#[test]
fn clear_without_events_leaves_the_empty_session_folder() -> Result<()> {
    let _lock = sessiond()?;
    let tmp = tempfile::Builder::new().prefix("trelay-it-").tempdir()?;
    let (mut reference, mut ours) = start_both(tmp.path(), &[], &[])?;
    let tag = trelay_integration::unique("noev");
    for (active, twice) in [(true, false), (false, true)] {
        let mut guards = Vec::new();
        for (side, ports) in [("r", reference.ports), ("t", ours.ports)] {
            let name = format!("{tag}{side}");
            guards.push(create_streaming(&name, &ports, &[])?);
            lttng(&["enable-channel", "-u", "-s", &name, "chan", "--buffers-uid"])?;
            lttng(&["enable-event", "-u", "-s", &name, "-c", "chan", "tp:tptest"])?;
            lttng(&["start", &name])?;
            if !active {
                lttng(&["stop", &name])?;
            }
            lttng(&["clear", &name])?;
            if twice {
                lttng(&["clear", &name])?;
            }
            if !active {
                lttng(&["start", &name])?;
            }
            lttng(&["stop", &name])?;
        }
        let want = tree(&reference.out, &tag);
        let got = tree(&ours.out, &tag);
        ensure!(
            want.iter().any(|d| d.ends_with("/S-N-N/")),
            "lttng-relayd left no session folder: {want:?}"
        );
        ensure!(want == got, "lttng-relayd: {want:#?}\ntrelayd: {got:#?}");
        for side in ["r", "t"] {
            lttng(&["destroy", &format!("{tag}{side}")])?;
        }
        drop(guards);
        // As the suite does between cases: remove what was recorded; the folder is then empty.
        for root in [&reference.out, &ours.out] {
            for e in std::fs::read_dir(root)? {
                std::fs::remove_dir_all(e?.path())?;
            }
        }
        let left: Vec<_> = std::fs::read_dir(&ours.out)?
            .flatten()
            .map(|e| e.path())
            .collect();
        ensure!(left.is_empty(), "trelayd's output folder holds {left:?}");
    }
    reference.stop()?;
    ours.stop_ok()?;
    Ok(())
}

/// `lttng-tools` clear/test_ust "clear-rotate" and "rotate-clear" (per-UID and per-PID buffers):
/// events recorded before a rotation and after it, read as soon as `lttng stop` returned, are all
/// there — the same count as lttng-relayd's.
#[test]
fn events_around_clear_and_rotate_are_all_read_right_after_stop() -> Result<()> {
    use trelay_integration::scenario::WORKLOAD;
    let _lock = sessiond()?;
    let tmp = tempfile::Builder::new().prefix("trelay-it-").tempdir()?;
    let (mut reference, mut ours) = start_both(tmp.path(), &[], &[])?;
    for buffers in ["--buffers-uid", "--buffers-pid"] {
        let tag = trelay_integration::unique("clrot");
        let work = Workload::python(tmp.path(), &tag)?;
        let mut guards = Vec::new();
        let names: Vec<String> = ["r", "t"].iter().map(|s| format!("{tag}{s}")).collect();
        for (name, ports) in names.iter().zip([reference.ports, ours.ports]) {
            guards.push(create_streaming(name, &ports, &[])?);
            lttng(&["enable-channel", "-u", "-s", name, "chan", buffers])?;
            enable_event(
                name,
                Some("chan"),
                "lttng_ust_libc:malloc",
                &trelay_integration::session::large_allocs(&work),
            )?;
            add_vpid_procname(name, Some("chan"))?;
            lttng(&["start", name])?;
        }
        let each = |cmd: &str| -> Result<()> {
            for n in &names {
                lttng(&[cmd, n])?;
            }
            Ok(())
        };
        work.run(&["-c", WORKLOAD, "3"])?;
        each("clear")?;
        work.run(&["-c", WORKLOAD, "4"])?;
        each("rotate")?;
        work.run(&["-c", WORKLOAD, "5"])?;
        each("rotate")?;
        each("clear")?;
        work.run(&["-c", WORKLOAD, "6"])?;
        each("stop")?;
        let count = |root: &Path| -> Result<usize> {
            Ok(trelay_integration::babeltrace(root)?
                .lines()
                .filter(|l| l.contains(&work.procname))
                .count())
        };
        let want = count(&reference.out)?;
        let got = count(&ours.out)?;
        ensure!(
            want >= 12,
            "{buffers}: lttng-relayd read only {want} events"
        );
        ensure!(
            want == got,
            "{buffers}: lttng-relayd read {want} events right after stop, trelayd {got}"
        );
        each("destroy")?;
        drop(guards);
    }
    reference.stop()?;
    ours.stop_ok()?;
    Ok(())
}
