//! Real lttng-sessiond scenarios, each recorded by lttng-relayd and trelayd at once and compared
//! with babeltrace2. Serialized with a machine-wide lock (see `lttng::sessiond`).

use anyhow::{ensure, Result};
use trelay_integration::scenario::{run, Channel, Scenario, Step};

#[test]
fn per_uid_non_live() -> Result<()> {
    let out = run(&Scenario::new("uid"))?;
    // 2 processes × (300 malloc + 300 calloc), plus the interpreter's own large allocations.
    ensure!(out.events.len() >= 1200, "only {} events", out.events.len());
    Ok(())
}

#[test]
fn per_pid_short_lived_apps_live() -> Result<()> {
    let mut sc = Scenario::new("pidl");
    sc.per_pid = true;
    sc.live = Some(200_000);
    sc.steps = vec![Step::Run(4, 50), Step::Sleep(500), Step::Run(2, 50)];
    let out = run(&sc)?;
    let ours = trelay_integration::scenario::dirs_named(&out.ours, "ust/pid/");
    let theirs = trelay_integration::scenario::dirs_named(&out.reference, "ust/pid/");
    ensure!(ours.len() == 1 && theirs.len() == 1, "{ours:?} {theirs:?}");
    let apps = |root: &std::path::Path| {
        std::fs::read_dir(root.join(&ours[0]))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    ensure!(
        apps(&out.ours) == 6,
        "trelayd wrote {} per-pid traces",
        apps(&out.ours)
    );
    Ok(())
}

#[test]
fn regenerate_metadata() -> Result<()> {
    let mut sc = Scenario::new("regen");
    sc.steps = vec![
        Step::Run(1, 100),
        Step::RegenerateMetadata,
        Step::Run(1, 100),
    ];
    // LTTng 2.13's UST consumer sends RESET_METADATA only when the metadata version changes
    // while it pushes metadata; the command itself is covered in tests/protocol.rs.
    run(&sc)?;
    Ok(())
}

#[test]
fn two_channels() -> Result<()> {
    let mut sc = Scenario::new("two");
    sc.channels = vec![
        Channel::new("mallocs", "lttng_ust_libc:malloc"),
        Channel::new("callocs", "lttng_ust_libc:calloc"),
    ];
    run(&sc)?;
    Ok(())
}

#[test]
fn tracefile_size_and_count() -> Result<()> {
    let mut sc = Scenario::new("tfs");
    let mut ch = Channel::new("chan", "lttng_ust_libc:*");
    ch.options = vec![
        "--subbuf-size=8K".into(),
        "--num-subbuf=8".into(),
        "--tracefile-size=16K".into(),
        "--tracefile-count=1000".into(),
    ];
    sc.channels = vec![ch];
    sc.steps = vec![Step::Run(2, 2000)];
    let out = run(&sc)?;
    let files = trelay_integration::files_under(&out.ours);
    // Some CPU's stream must have moved on to its second file (chan_<cpu>_1).
    let second = files.iter().any(|f| {
        let name = f.file_name().map(|n| n.to_string_lossy().into_owned());
        name.is_some_and(|n| n.starts_with("chan_") && n.ends_with("_1") && n.len() == 8)
    });
    ensure!(second, "expected rotated tracefiles, got {files:?}");
    Ok(())
}

#[test]
fn rotate_non_live() -> Result<()> {
    let mut sc = Scenario::new("rot");
    sc.steps = vec![
        Step::Run(2, 200),
        Step::Rotate,
        Step::Run(2, 50),
        Step::Rotate,
        Step::Run(1, 100),
    ];
    let out = run(&sc)?;
    let archives = trelay_integration::scenario::dirs_named(&out.ours, "/archives/");
    ensure!(archives.len() == 1, "{archives:?}");
    let chunks = std::fs::read_dir(out.ours.join(&archives[0]))?.count();
    ensure!(chunks == 3, "expected 3 archived chunks, found {chunks}");
    Ok(())
}

#[test]
fn clear_live() -> Result<()> {
    let mut sc = Scenario::new("clr");
    sc.live = Some(200_000);
    sc.steps = vec![
        Step::Run(2, 200),
        Step::Sleep(600),
        Step::Clear,
        Step::Run(1, 200),
    ];
    run(&sc)?;
    Ok(())
}

#[test]
fn snapshot_record() -> Result<()> {
    let mut sc = Scenario::new("snap");
    sc.snapshot = true;
    sc.steps = vec![
        Step::Run(2, 200),
        Step::Snapshot,
        Step::Run(1, 200),
        Step::Snapshot,
    ];
    run(&sc)?;
    Ok(())
}

#[test]
fn group_output_by_session_and_two_sessions() -> Result<()> {
    let mut sc = Scenario::new("grp");
    sc.relay_args = vec!["--group-output-by-session"];
    sc.sessions = 2;
    let out = run(&sc)?;
    let tops: Vec<String> = std::fs::read_dir(&out.ours)?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !trelay_integration::RELAY_PRIVATE.contains(&n.as_str()))
        .collect();
    ensure!(
        tops.len() == 2,
        "expected one folder per session, got {tops:?}"
    );
    Ok(())
}
