//! `trelay-consumer send`: a trace recorded by the real LTTng tools, shipped to lttng-relayd and
//! to trelayd, reads back in babeltrace2 exactly like the original, and the relays' index files
//! and metadata are byte-identical to the tracer's.

mod consumer_support;

use anyhow::{ensure, Context, Result};
use consumer_support::*;
use std::path::Path;
use trelay_consumer::ship::{send, SendOptions};
use trelay_integration::lttng::sessiond;
use trelay_integration::relay::{free_ports, start_both, LttngRelayd, Ports, Trelayd};
use trelay_integration::unique;

/// Sends `local` to the relay at `ports` writing under `out`; checks babeltrace2 and the bytes.
fn ship_and_compare(
    local: &Path,
    ports: Ports,
    out: &Path,
    live: u32,
    expect_scanned: bool,
    compare_index: bool,
) -> Result<()> {
    let mut o = SendOptions::new(local.to_owned(), relay_url(ports));
    o.progress = false;
    o.live_timer_us = live;
    let report = runtime().block_on(send(&o))?;
    ensure!(report.packets > 0, "nothing sent: {report:?}");
    ensure!(report.trailing_bytes == 0, "{report:?}");
    ensure!(
        (report.streams_without_index > 0) == expect_scanned,
        "index use unexpected: {report:?}"
    );
    let copy = out.join(&report.relay_path);
    let lines = assert_same_output(local, &copy)
        .with_context(|| format!("relay output {}", copy.display()))?;
    ensure!(lines > 100, "only {lines} events");
    let local_files = files(local);
    for f in &local_files {
        let name = f.to_string_lossy();
        let ours = copy.join(f);
        ensure!(ours.exists(), "{name} missing from the relay's output");
        if (compare_index && name.ends_with(".idx")) || name.ends_with("metadata") {
            ensure!(
                same_bytes(&local.join(f), &ours),
                "{name} differs from the original"
            );
        } else {
            let len = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
            ensure!(len(&local.join(f)) == len(&ours), "{name}: size differs");
        }
    }
    Ok(())
}

#[test]
fn recorded_per_uid_trace_reads_back_identically_from_both_relays() -> Result<()> {
    let tmp = tempfile::Builder::new().prefix("trelay-cs-").tempdir()?;
    let tag = unique("csu");
    let local = {
        let _lock = sessiond()?;
        record(tmp.path(), &tag, false, 2, 300)?
    };
    let (mut reference, mut ours) = start_both(tmp.path(), &[], &[])?;
    ship_and_compare(&local, reference.ports, &reference.out, 0, false, true)
        .context("to lttng-relayd")?;
    ship_and_compare(&local, ours.ports, &ours.out, 0, false, true)
        .with_context(|| format!("to trelayd\n{}", ours.log_tail()))?;
    reference.stop()?;
    ours.stop_ok()?;
    Ok(())
}

#[test]
fn per_pid_trace_without_index_files_is_indexed_from_packet_headers() -> Result<()> {
    let tmp = tempfile::Builder::new().prefix("trelay-cs-").tempdir()?;
    let tag = unique("csp");
    let recorded = {
        let _lock = sessiond()?;
        record(tmp.path(), &tag, true, 3, 100)?
    };
    ensure!(
        files(&recorded)
            .iter()
            .any(|f| f.to_string_lossy().contains("ust/pid/")),
        "no per-pid trace recorded"
    );
    // A copy without its index files: the consumer must rebuild every entry from the packets,
    // and the relays' index files must still equal the tracer's.
    let stripped = tmp.path().join("stripped");
    copy_tree(&recorded, &stripped)?;
    for f in files(&stripped) {
        if f.to_string_lossy().ends_with(".idx") {
            std::fs::remove_file(stripped.join(f))?;
        }
    }
    let mut ours = Trelayd::start(&tmp.path().join("trelayd"), &[])?;
    let mut o = SendOptions::new(stripped.clone(), relay_url(ours.ports));
    o.progress = false;
    o.live_timer_us = 100_000;
    let report = runtime().block_on(send(&o))?;
    ensure!(
        report.streams_without_index == report.streams && report.streams >= 3,
        "{report:?}"
    );
    let copy = ours.out.join(&report.relay_path);
    assert_same_output(&recorded, &copy)?;
    for f in files(&recorded) {
        if f.to_string_lossy().ends_with(".idx") {
            ensure!(
                same_bytes(&recorded.join(&f), &copy.join(&f)),
                "{} differs",
                f.display()
            );
        }
    }
    let mut reference = LttngRelayd::start(&tmp.path().join("ref"), free_ports()?, &[])?;
    ship_and_compare(
        &stripped,
        reference.ports,
        &reference.out,
        100_000,
        true,
        true,
    )
    .context("to lttng-relayd")?;
    reference.stop()?;
    ours.stop_ok()?;
    Ok(())
}
