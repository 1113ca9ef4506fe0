//! Retention after a restart never deletes what may still be resumed or is being forwarded: a
//! trelay:// session cut mid-send by a SIGKILL is resumed by its sender into relays restarted
//! with `[retention]` quotas it exceeds, and a session forwarded to a core that is down stays
//! through retention runs before and after a SIGKILL.

mod consumer_support;

use anyhow::{ensure, Context, Result};
use consumer_support::{assert_same_output, relay_url, runtime, session_dir};
use std::path::Path;
use std::time::Duration;
use trelay_consumer::native::send::{send, NativeSendOptions};
use trelay_consumer::ship::{send as ship, SendOptions};
use trelay_consumer::synth::{write_trace_dir, SynthTrace};
use trelay_consumer::url::RelayUrl;
use trelay_integration::proxy::Proxy;
use trelay_integration::relay::{free_ports, Trelayd};
use trelay_integration::wait_for;
use trelay_proto::trelay::message::AckLevel;

/// A quota and an age every session exceeds, checked every second.
const RETENTION: &str = "[retention]\nmax_bytes = 1\nmax_age_s = 1\ninterval_s = 1\n";

/// Total bytes of the index files under `out`.
fn idx(out: &Path) -> u64 {
    trelay_integration::files_under(out)
        .iter()
        .filter(|f| f.to_string_lossy().ends_with(".idx"))
        .map(|f| std::fs::metadata(out.join(f)).map(|m| m.len()).unwrap_or(0))
        .sum()
}

/// Waits until a retention run of `relay` went through the output folder.
fn retention_ran(relay: &Trelayd) -> Result<()> {
    wait_for(Duration::from_secs(20), "a retention run", || {
        let log = relay.log_text();
        log.contains("retention: quota not met") || log.contains("retention: deleted")
    })
    .with_context(|| relay.log_tail())
}

#[test]
fn a_resumable_trelay_session_survives_retention_after_a_sigkill() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let t = SynthTrace::new("native-host", "keep", 4096);
    let local = tmp.path().join("keep");
    write_trace_dir(&t, &local.join("ust/uid/0/64-bit"), 3, 1500)?;
    let cfg = tmp.path().join("retention.toml");
    std::fs::write(&cfg, RETENTION)?;
    let cfg = cfg.display().to_string();
    let port = free_ports()?.control;
    let control = format!("tcp://127.0.0.1:{port}");
    let out = tmp.path().join("out");
    let mut relay = Trelayd::start_with_output(&tmp.path().join("r1"), &out, &["-C", &control])?;
    // Paced through a proxy (4 MB/s, 18 MB in all) so that the kill lands mid-send.
    let mut o = NativeSendOptions::new(
        local.clone(),
        RelayUrl::parse(&format!("trelay://127.0.0.1:{port}"))?,
    );
    o.ack = AckLevel::Committed;
    o.progress = false;
    o.retry_for = Duration::from_secs(90);
    o.batch_bytes = 16 << 10;
    let sender = std::thread::spawn(move || {
        runtime().block_on(async move {
            let target = ([127, 0, 0, 1], port).into();
            let proxy = Proxy::start_paced(target, Vec::new(), Some(4_000_000)).await?;
            o.url = RelayUrl::parse(&format!("trelay://127.0.0.1:{}", proxy.addr.port()))?;
            anyhow::Ok(send(&o).await?)
        })
    });
    wait_for(Duration::from_secs(20), "packets committed", || {
        idx(&out) > 16 * 3 + 64 * 100
    })?;
    relay.kill9()?;
    // A first restart, on another port (the sender cannot reach it), runs retention over the
    // session left open: it must stay.
    let mut away = Trelayd::start_with_output(&tmp.path().join("r2"), &out, &["--config", &cfg])?;
    retention_ran(&away)?;
    ensure!(idx(&out) > 0, "retention deleted the resumable session");
    away.stop_ok()?;
    // A second restart where the sender finds it, with the same quotas: it resumes.
    let mut relay = Trelayd::start_with_output(
        &tmp.path().join("r3"),
        &out,
        &["-C", &control, "--config", &cfg],
    )?;
    let r = sender
        .join()
        .expect("the sender thread")
        .with_context(|| relay.log_tail())?;
    ensure!(r.reconnects > 0, "the sender never lost the relay: {r:?}");
    relay.stop_ok()?;
    ensure!(relay.log_text().contains("reopened after a restart"));
    assert_same_output(&local, &out.join(&r.relay_path))?;
    let report = trelay_viewer::check::check(&out.join(&r.relay_path))?;
    ensure!(report.problems.is_empty(), "{:#?}", report.problems);
    ensure!(report.entries == 4500, "{} index entries", report.entries);
    Ok(())
}

#[test]
fn a_session_forwarded_to_a_core_that_is_down_survives_retention_and_a_sigkill() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let cfg = tmp.path().join("retention.toml");
    std::fs::write(&cfg, RETENTION)?;
    let cfg = cfg.display().to_string();
    let core = format!("trelay://127.0.0.1:{}", free_ports()?.control);
    let out = tmp.path().join("out");
    let args = ["--forward", core.as_str(), "--config", cfg.as_str()];
    let mut edge = Trelayd::start_with_output(&tmp.path().join("e1"), &out, &args)?;
    // A session sent over the LTTng protocol, complete and closed.
    let t = SynthTrace::new("edge-host", "fw", 4096);
    let local = tmp.path().join("fw");
    write_trace_dir(&t, &local.join("ust/uid/0/64-bit"), 1, 40)?;
    let mut o = SendOptions::new(local, relay_url(edge.ports));
    o.progress = false;
    let r = runtime().block_on(ship(&o))?;
    ensure!(r.packets == 40, "{r:?}");
    let session = session_dir(&out, "edge-host")?;
    let committed = idx(&session);
    ensure!(committed > 0);
    // Its forwarding has begun (the job is recorded) and cannot finish: the core is down.
    wait_for(Duration::from_secs(20), "the forwarding record", || {
        std::fs::read_dir(out.join(".trelay-forward")).is_ok_and(|d| d.count() == 1)
    })?;
    retention_ran(&edge)?;
    ensure!(
        session.exists(),
        "retention deleted a session being forwarded ({})\n{}",
        session.display(),
        edge.log_text()
    );
    edge.kill9()?;
    let mut edge = Trelayd::start_with_output(&tmp.path().join("e2"), &out, &args)?;
    retention_ran(&edge)?;
    ensure!(
        idx(&session) == committed,
        "retention deleted a session being forwarded, after the restart"
    );
    edge.stop_ok()?;
    Ok(())
}
