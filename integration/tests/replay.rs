//! The fixture's sender bytes (a real LTTng 2.13 live session) replayed into trelayd: babeltrace2
//! must read exactly what it read from lttng-relayd's output, and the files must be identical.

use anyhow::{ensure, Context, Result};
use std::process::Command;
use trelay_integration::relay::Trelayd;
use trelay_integration::{babeltrace, files_under, shared_dir};

#[test]
fn fixture_replay_reads_like_lttng_relayd() -> Result<()> {
    let shared = shared_dir()?;
    let fixture = shared.join("fixtures/lttng-2.13-live-uid");
    let tmp = tempfile::tempdir()?;
    let mut relay = Trelayd::start(tmp.path(), &[])?;
    let out = Command::new("python3")
        .arg(shared.join("tools/replay.py"))
        .arg(fixture.join("capture.pcap"))
        .arg(relay.ports.control.to_string())
        .arg(relay.ports.data.to_string())
        .output()
        .context("python3 not runnable")?;
    ensure!(
        out.status.success(),
        "replay failed: {}{}\n--- trelayd log ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        relay.log_tail()
    );
    let code = relay.stop()?;
    ensure!(code == 0, "trelayd exited with {code}");

    let want = std::fs::read_to_string(fixture.join("babeltrace-postmortem.txt"))?;
    let got = babeltrace(&relay.out)?;
    ensure!(
        got == want,
        "babeltrace2 read {} lines, lttng-relayd's output gave {}",
        got.lines().count(),
        want.lines().count()
    );

    // Byte-identical tree: same files, same contents.
    let reference = fixture.join("relay-out");
    let ours = files_under(&relay.out);
    ensure!(
        ours == files_under(&reference),
        "file tree differs: {ours:?}"
    );
    for f in &ours {
        ensure!(
            std::fs::read(relay.out.join(f))? == std::fs::read(reference.join(f))?,
            "{} differs from lttng-relayd's",
            f.display()
        );
    }
    Ok(())
}
