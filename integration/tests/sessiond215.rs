//! LTTng 2.15 session daemons (the prebuilt 2.15.1 bundle) recording one workload into the
//! bundle's lttng-relayd 2.15 and into trelayd at once, in CTF 2 (2.15's default) and CTF 1.8,
//! live and not; babeltrace2 2.1 must read the same events from both outputs (and print the
//! same live), and the two output trees must have the same files, the same index format and,
//! for CTF 2, metadata files that are JSON text sequences of the same records. The round-1
//! scenarios (rotate, clear, snapshot, tracefile size/count, per-PID, per-UID) once more in
//! CTF 2; one CTF 2 session snapshotted into both relays gives byte-identical files; a SIGKILL of
//! trelayd mid-session leaves CTF 2 metadata of whole records. Serialized with the other
//! session-daemon tests (`lttng::lock`).

use anyhow::{ensure, Context, Result};
use serde_json::Value;
use std::path::Path;
use trelay_integration::scenario::{run, Channel, Outcome, Scenario, Step};

const RS: u8 = 0x1E;

/// The records of a CTF 2 metadata file, with what differs between two sessions (UUIDs, the
/// trace's name and creation time) blanked.
fn ctf2_records(path: &Path) -> Result<Vec<Value>> {
    let bytes = std::fs::read(path)?;
    ensure!(
        bytes.first() == Some(&RS),
        "{} is not a JSON text sequence (first bytes {:?})",
        path.display(),
        &bytes[..bytes.len().min(8)]
    );
    bytes[1..]
        .split(|b| *b == RS)
        .map(|r| {
            let mut v: Value = serde_json::from_slice(r)
                .with_context(|| format!("{}: a record is not whole JSON", path.display()))?;
            blank(&mut v);
            Ok(v)
        })
        .collect()
}

fn blank(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if matches!(
                    k.as_str(),
                    "uuid"
                        | "uid"
                        | "trace_name"
                        | "trace_creation_datetime"
                        | "origin"
                        | "offset-from-origin"
                ) {
                    *x = Value::Null;
                } else {
                    blank(x);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(blank),
        _ => {}
    }
}

/// Files named `name` under `root`, relative, sorted.
fn named(root: &Path, name: &str) -> Vec<std::path::PathBuf> {
    trelay_integration::files_under(root)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == name))
        .collect()
}

/// Both outputs in the same format: every metadata file a JSON text sequence (`ctf2`) or TSDL
/// text, the same records on both sides; every index file of both sides with the same header
/// (index v1.1).
fn same_format(out: &Outcome, ctf2: bool) -> Result<()> {
    let (theirs, ours) = (
        named(&out.reference, "metadata"),
        named(&out.ours, "metadata"),
    );
    ensure!(
        !ours.is_empty() && theirs.len() == ours.len(),
        "metadata files: lttng-relayd {theirs:?}, trelayd {ours:?}"
    );
    for (a, b) in theirs.iter().zip(&ours) {
        let (a, b) = (out.reference.join(a), out.ours.join(b));
        if ctf2 {
            let (ra, rb) = (ctf2_records(&a)?, ctf2_records(&b)?);
            let differ = ra.iter().zip(&rb).find(|(x, y)| x != y);
            ensure!(
                ra.len() == rb.len() && differ.is_none(),
                "{} and {} hold different records ({} and {}); first differing: {differ:?}",
                a.display(),
                b.display(),
                ra.len(),
                rb.len()
            );
        } else {
            let text = std::fs::read(&b)?;
            ensure!(
                text.starts_with(b"/* CTF 1.8"),
                "{} is not CTF 1.8 text",
                b.display()
            );
        }
    }
    let header = |p: &Path| -> Result<Vec<u8>> {
        let b = std::fs::read(p)?;
        Ok(b[..b.len().min(16)].to_vec())
    };
    let idx: Vec<_> = trelay_integration::files_under(&out.ours)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "idx"))
        .collect();
    ensure!(!idx.is_empty(), "trelayd wrote no index");
    let want = header(
        &out.reference.join(
            trelay_integration::files_under(&out.reference)
                .into_iter()
                .find(|p| p.extension().is_some_and(|e| e == "idx"))
                .context("lttng-relayd wrote no index")?,
        ),
    )?;
    // Magic C1F1DCC1, major 1, minor 1, entry size 72.
    ensure!(
        want == [0xC1, 0xF1, 0xDC, 0xC1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 72],
        "{want:x?}"
    );
    for p in idx {
        ensure!(
            header(&out.ours.join(&p))? == want,
            "{} has another header",
            p.display()
        );
    }
    Ok(())
}

#[test]
fn ctf2_per_uid_non_live() -> Result<()> {
    let out = run(&Scenario::lttng215("c2uid", "ctf-2"))?;
    ensure!(out.events.len() >= 1200, "only {} events", out.events.len());
    same_format(&out, true)
}

#[test]
fn ctf2_live_followed_by_babeltrace21() -> Result<()> {
    let mut sc = Scenario::lttng215("c2live", "ctf-2");
    sc.live = Some(200_000);
    sc.live_viewers = true;
    sc.channels = vec![
        Channel::new("mallocs", "lttng_ust_libc:malloc"),
        Channel::new("callocs", "lttng_ust_libc:calloc"),
    ];
    sc.steps = vec![Step::Run(2, 200), Step::Sleep(400), Step::Run(1, 100)];
    let out = run(&sc)?;
    ensure!(out.live_events.len() >= 1000, "{}", out.live_events.len());
    same_format(&out, true)
}

#[test]
fn ctf18_from_215_live_and_per_pid() -> Result<()> {
    let mut sc = Scenario::lttng215("c1live", "ctf-1.8");
    sc.live = Some(200_000);
    sc.live_viewers = true;
    sc.per_pid = true;
    let out = run(&sc)?;
    same_format(&out, false)?;
    let out = run(&Scenario::lttng215("c1uid", "ctf-1.8"))?;
    same_format(&out, false)
}

#[test]
fn ctf2_rotate_non_live() -> Result<()> {
    let mut sc = Scenario::lttng215("c2rot", "ctf-2");
    sc.steps = vec![
        Step::Run(1, 200),
        Step::Rotate,
        Step::Run(1, 50),
        Step::Rotate,
        Step::Run(1, 100),
    ];
    let out = run(&sc)?;
    let archives = trelay_integration::scenario::dirs_named(&out.ours, "/archives/");
    ensure!(archives.len() == 1, "{archives:?}");
    let chunks = std::fs::read_dir(out.ours.join(&archives[0]))?.count();
    ensure!(chunks == 3, "expected 3 archived chunks, found {chunks}");
    same_format(&out, true)
}

#[test]
fn ctf2_clear_live() -> Result<()> {
    let mut sc = Scenario::lttng215("c2clr", "ctf-2");
    sc.live = Some(200_000);
    sc.steps = vec![
        Step::Run(1, 200),
        Step::Sleep(600),
        Step::Clear,
        Step::Run(1, 200),
    ];
    let out = run(&sc)?;
    same_format(&out, true)
}

#[test]
fn ctf2_snapshot_record() -> Result<()> {
    let mut sc = Scenario::lttng215("c2snap", "ctf-2");
    sc.snapshot = true;
    sc.steps = vec![
        Step::Run(1, 200),
        Step::Snapshot,
        Step::Run(1, 200),
        Step::Snapshot,
    ];
    let out = run(&sc)?;
    let snaps = named(&out.ours, "metadata");
    ensure!(snaps.len() == 2, "expected two snapshots, got {snaps:?}");
    for m in &snaps {
        ctf2_records(&out.ours.join(m))?;
    }
    Ok(())
}

#[test]
fn ctf2_tracefile_size_and_count_per_pid_live() -> Result<()> {
    let mut sc = Scenario::lttng215("c2tfs", "ctf-2");
    let mut ch = Channel::new("chan", "lttng_ust_libc:*");
    ch.options = vec![
        "--subbuf-size=8K".into(),
        "--num-subbuf=8".into(),
        "--tracefile-size=16K".into(),
        "--tracefile-count=1000".into(),
    ];
    sc.channels = vec![ch];
    sc.per_pid = true;
    sc.live = Some(200_000);
    sc.steps = vec![Step::Run(1, 1000), Step::Run(1, 10)];
    let out = run(&sc)?;
    let files = trelay_integration::files_under(&out.ours);
    let second = files.iter().any(|f| {
        let name = f.file_name().map(|n| n.to_string_lossy().into_owned());
        name.is_some_and(|n| n.starts_with("chan_") && n.ends_with("_1") && n.len() == 8)
    });
    ensure!(second, "expected rotated tracefiles, got {files:?}");
    let pids = trelay_integration::scenario::dirs_named(&out.ours, "ust/pid/");
    ensure!(pids.len() == 1, "{pids:?}");
    let apps = std::fs::read_dir(out.ours.join(&pids[0]))?.count();
    ensure!(apps == 2, "trelayd wrote {apps} per-pid traces");
    same_format(&out, true)
}

/// Whether any `.trelay-open` marker is left under `root`.
fn marker_left(root: &Path) -> bool {
    std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| e.file_name() == ".trelay-open" || (e.path().is_dir() && marker_left(&e.path())))
}

#[test]
fn ctf2_sigkill_then_restart_keeps_whole_records() -> Result<()> {
    use std::time::Duration;
    use trelay_integration::lttng::steady_allocs;
    use trelay_integration::lttng215::Sessiond215;
    use trelay_integration::relay::Trelayd;
    let tmp = tempfile::Builder::new().prefix("trelay-crash-").tempdir()?;
    let sd = Sessiond215::start(&tmp.path().join("sessiond"), &[])?;
    let out = tmp.path().join("out");
    let mut relay = Trelayd::start_with_output(&tmp.path().join("run1"), &out, &[])?;
    let tag = trelay_integration::unique("c2kill");
    let work = sd.python(tmp.path(), &tag)?;
    let name = format!("{tag}a");
    let url = format!(
        "--set-url=net://127.0.0.1:{}:{}",
        relay.ports.control, relay.ports.data
    );
    // Live: the consumer sends metadata as it goes (a non-live one may hold it until the end).
    sd.lttng(&[
        "create",
        &name,
        &url,
        "--live=200000",
        "--trace-format=ctf-2",
    ])?;
    sd.lttng(&[
        "enable-channel",
        "-u",
        "-s",
        &name,
        "c",
        "--subbuf-size=64K",
        "--num-subbuf=8",
    ])?;
    let filter = format!("{} && size >= 100000", work.filter());
    sd.lttng(&[
        "enable-event",
        "-u",
        "-s",
        &name,
        "-c",
        "c",
        "lttng_ust_libc:*",
        "--filter",
        &filter,
    ])?;
    sd.lttng(&["start", &name])?;
    let mut app = work.spawn(&["-c", &steady_allocs(8, 100)])?;
    // Kill it once packets were committed (index entries past the header).
    trelay_integration::wait_for(Duration::from_secs(60), "committed entries", || {
        trelay_integration::files_under(&out).iter().any(|f| {
            f.extension().is_some_and(|e| e == "idx")
                && std::fs::metadata(out.join(f)).is_ok_and(|m| m.len() > 16 + 72 * 4)
        })
    })
    .with_context(|| relay.log_tail())?;
    relay.kill9()?;
    let _ = app.wait();
    let _ = sd.lttng(&["destroy", &name]);
    ensure!(
        marker_left(&out),
        "the killed relay left no open-trace marker"
    );

    let mut relay = Trelayd::start_with_output(&tmp.path().join("run2"), &out, &[])?;
    trelay_integration::wait_for(Duration::from_secs(30), "recovery", || !marker_left(&out))
        .with_context(|| relay.log_tail())?;
    relay.stop_ok()?;
    let metadata = named(&out, "metadata");
    ensure!(metadata.len() == 1, "{metadata:?}");
    let records = ctf2_records(&out.join(&metadata[0]))?;
    ensure!(records.len() >= 3, "{} whole records", records.len());
    let events = sd.bundle.read_trace(&out)?;
    ensure!(
        events.lines().count() >= 4,
        "babeltrace2 2.1 read {} events after recovery",
        events.lines().count()
    );
    Ok(())
}

#[test]
fn ctf2_one_session_snapshotted_into_both_relays_is_byte_identical() -> Result<()> {
    use trelay_integration::lttng215::{LttngRelayd215, Sessiond215};
    use trelay_integration::relay::Trelayd;
    let tmp = tempfile::Builder::new().prefix("trelay-it-").tempdir()?;
    let sd = Sessiond215::start(&tmp.path().join("sessiond"), &[])?;
    let mut theirs =
        LttngRelayd215::start(&tmp.path().join("ref"), &tmp.path().join("ref.log"), &[])?;
    let mut ours = Trelayd::start(&tmp.path().join("trelayd"), &[])?;
    let tag = trelay_integration::unique("c2same");
    let work = sd.python(tmp.path(), &tag)?;
    let name = format!("{tag}s");
    // One CTF 2 snapshot session, stopped, then its buffers recorded once into each relay: the
    // same packets and the same metadata (same UUID), so the files must be equal byte for byte.
    sd.lttng(&["create", &name, "--snapshot", "--trace-format=ctf-2"])?;
    sd.lttng(&[
        "enable-channel",
        "-u",
        "-s",
        &name,
        "chan",
        "--subbuf-size=64K",
        "--num-subbuf=4",
    ])?;
    let filter = format!("{} && size >= 100000", work.filter());
    sd.lttng(&[
        "enable-event",
        "-u",
        "-s",
        &name,
        "-c",
        "chan",
        "lttng_ust_libc:*",
        "--filter",
        &filter,
    ])?;
    sd.lttng(&["start", &name])?;
    work.run(&["-c", trelay_integration::scenario::WORKLOAD, "200"])?;
    sd.lttng(&["stop", &name])?;
    for ports in [theirs.ports, ours.ports] {
        sd.lttng(&[
            "snapshot",
            "record",
            "-s",
            &name,
            &format!("--ctrl-url=tcp://127.0.0.1:{}", ports.control),
            &format!("--data-url=tcp://127.0.0.1:{}", ports.data),
        ])
        .with_context(|| ours.log_tail())?;
    }
    sd.lttng(&["destroy", &name])?;
    theirs.stop()?;
    ours.stop_ok()?;
    let (a, b) = (&theirs.out, &ours.out);
    let (fa, fb) = (
        trelay_integration::files_under(a),
        trelay_integration::files_under(b),
    );
    // Paths agree once the snapshot's number and time are masked.
    let mask = |p: &std::path::PathBuf| -> String {
        p.to_string_lossy()
            .chars()
            .map(|c| if c.is_ascii_digit() { 'N' } else { c })
            .collect()
    };
    ensure!(
        fa.iter().map(mask).collect::<Vec<_>>() == fb.iter().map(mask).collect::<Vec<_>>(),
        "file trees differ:\nlttng-relayd: {fa:#?}\ntrelayd: {fb:#?}"
    );
    // Snapshots have no index files (lttng-relayd writes none for them either).
    ensure!(
        fa.iter().any(|p| p.ends_with("metadata")) && fa.len() >= 2,
        "no metadata or data in {fa:?}"
    );
    let mut data_bytes = 0;
    for (x, y) in fa.iter().zip(&fb) {
        let (bx, by) = (std::fs::read(a.join(x))?, std::fs::read(b.join(y))?);
        if !x.ends_with("metadata") {
            data_bytes += by.len();
        }
        ensure!(
            bx == by,
            "{} ({} bytes) differs from lttng-relayd's {} ({} bytes)",
            y.display(),
            by.len(),
            x.display(),
            bx.len()
        );
    }
    ensure!(data_bytes > 0, "the snapshots hold no packet");
    let meta = fb
        .iter()
        .find(|p| p.ends_with("metadata"))
        .context("metadata")?;
    let records = ctf2_records(&b.join(meta))?;
    ensure!(records.len() >= 5, "{} metadata records", records.len());
    Ok(())
}
