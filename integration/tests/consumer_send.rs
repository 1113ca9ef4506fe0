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

/// The CTF 2 trace the real LTTng 2.15 tools recorded (the vendored fixture).
fn ctf2_fixture() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/shared/fixtures/lttng-2.15-ctf2-local-uid")
}

#[test]
fn a_real_ctf2_trace_sent_over_net_at_minor_15_reads_the_same_from_lttng_relayd_215_and_trelayd(
) -> Result<()> {
    use trelay_integration::bt21;
    use trelay_integration::lttng215::LttngRelayd215;
    let tmp = tempfile::tempdir()?;
    let local = tmp.path().join("local");
    copy_tree(&ctf2_fixture().join("trace"), &local)?;
    let mut theirs = LttngRelayd215::start(
        &tmp.path().join("lttng-relayd"),
        &tmp.path().join("lttng-relayd.log"),
        &[],
    )?;
    let mut ours = Trelayd::start(&tmp.path().join("trelayd"), &[])?;
    for ports in [theirs.ports, ours.ports] {
        let mut o = SendOptions::new(local.clone(), relay_url(ports));
        o.progress = false;
        let r = runtime().block_on(send(&o))?;
        ensure!(r.packets == 2, "{r:?}");
    }
    theirs.stop()?;
    ours.stop_ok()?;
    let want = std::fs::read_to_string(ctf2_fixture().join("babeltrace-postmortem.txt"))?;
    for out in [&theirs.out, &ours.out] {
        let copy = session_dir(out, "vm")?;
        bt21::assert_ctf2(&copy)?;
        let got = bt21::babeltrace(&copy)?;
        ensure!(
            got == want,
            "babeltrace2 2.1 reads {} differently:\n{got}",
            copy.display()
        );
    }
    Ok(())
}

#[test]
fn a_ctf2_trace_is_refused_by_a_relay_below_protocol_2_15() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let local = tmp.path().join("local");
    copy_tree(&ctf2_fixture().join("trace"), &local)?;
    // Debian's lttng-relayd speaks 2.13.
    let ports = free_ports()?;
    let mut relay = LttngRelayd::start(&tmp.path().join("out"), ports, &[])?;
    let mut o = SendOptions::new(local, relay_url(ports));
    o.progress = false;
    let err = runtime()
        .block_on(send(&o))
        .err()
        .context("a 2.13 relay took a CTF 2 session")?;
    ensure!(
        format!("{err:#}").contains("CTF 2 sessions need a relay of protocol 2.15"),
        "{err:#}"
    );
    relay.stop()?;
    Ok(())
}
