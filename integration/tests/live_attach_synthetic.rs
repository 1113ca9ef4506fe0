//! babeltrace2 attaching in the middle of a live session that `trelay-consumer follow` ships
//! from a growing synthetic trace (beacons for idle streams, the trace written as it goes): it
//! reads on from there without an error and ends with the session.

use anyhow::{ensure, Context, Result};
use std::process::{Command, Stdio};
use std::time::Duration;
use trelay_consumer::ship::{follow, FollowOptions};
use trelay_consumer::synth::{write_trace_dir, SynthTrace};
use trelay_consumer::url::RelayUrl;
use trelay_integration::fleet::grow;
use trelay_integration::live::wait_listed;
use trelay_integration::relay::Trelayd;

#[test]
fn babeltrace2_attaching_mid_session_reads_on_cleanly() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let d = tmp.path();
    let mut relay = Trelayd::start(&d.join("relay"), &[])?;
    let t = SynthTrace::new("synth-host", "attach", 4096);
    let full = d.join("full");
    let events = write_trace_dir(&t, &full.join("ust/uid/0/64-bit"), 2, 200)?;
    let local = d.join("local");
    std::fs::create_dir_all(&local)?;
    let writer = {
        let (full, local) = (full.clone(), local.clone());
        std::thread::spawn(move || grow(&full, &local, 2, 200, 25))
    };
    let url = RelayUrl {
        host: "127.0.0.1".into(),
        control_port: relay.ports.control,
        data_port: relay.ports.data,
        native: false,
    };
    let mut o = FollowOptions::new(local, url);
    o.session = Some("attach".into());
    o.live_timer_us = 100_000;
    o.idle_timeout = Some(Duration::from_secs(2));
    o.watch_session = false;
    o.progress = false;
    o.poll = Duration::from_millis(50);
    let sender = std::thread::spawn(move || -> Result<_> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(rt.block_on(follow(&o, std::future::pending()))?)
    });
    wait_listed(relay.ports.live, "attach", Duration::from_secs(20))?;
    std::thread::sleep(Duration::from_millis(1200));
    let out = Command::new("babeltrace2")
        .args([
            "-i",
            "lttng-live",
            &format!(
                "net://127.0.0.1:{}/host/synth-host/attach",
                relay.ports.live
            ),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .context("babeltrace2")?;
    writer.join().expect("the writer");
    sender.join().expect("the sender")?;
    relay.stop_ok()?;
    let printed = String::from_utf8_lossy(&out.stdout).lines().count() as u64;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.success() && !err.contains("ERROR") && printed > 0 && printed <= events,
        "babeltrace2 {} printed {printed} of {events} events:\n{err}",
        out.status
    );
    Ok(())
}
