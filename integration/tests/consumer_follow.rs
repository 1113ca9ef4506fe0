//! `trelay-consumer follow`: a local LTTng session's trace shipped while it is recorded, as a
//! live session, to lttng-relayd (with a babeltrace2 live viewer attached) and to trelayd; the
//! follower ends by itself when the local session is destroyed, and everything reads back like
//! the local trace.

mod consumer_support;

use anyhow::{bail, ensure, Context, Result};
use consumer_support::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use trelay_consumer::ship::{follow, FollowOptions, ShipReport};
use trelay_integration::lttng::{lttng, sessiond, Workload};
use trelay_integration::relay::{start_both, Ports};
use trelay_integration::{unique, wait_for};

fn start_follow(dir: &std::path::Path, p: Ports) -> std::thread::JoinHandle<Result<ShipReport>> {
    let mut o = FollowOptions::new(dir.to_owned(), relay_url(p));
    o.progress = false;
    o.live_timer_us = 200_000;
    o.poll = Duration::from_millis(50);
    std::thread::spawn(move || {
        runtime()
            .block_on(follow(&o, std::future::pending::<()>()))
            .map_err(anyhow::Error::from)
    })
}

fn event_lines(path: &std::path::Path) -> usize {
    bt(path).map(|t| t.lines().count()).unwrap_or(0)
}

#[test]
fn follows_a_live_local_session_until_it_is_destroyed() -> Result<()> {
    let _lock = sessiond()?;
    let tmp = tempfile::Builder::new().prefix("trelay-cf-").tempdir()?;
    let tag = unique("cf");
    let work = Workload::python(tmp.path(), &tag)?;
    let local = tmp.path().join("local");
    let _guard = create_local(&tag, &local, &work, false, &[])?;
    let (mut reference, mut ours) = start_both(tmp.path(), &[], &[])?;

    // The application registers (trace directory, stream files and metadata appear) but its
    // events stay in the tracer's buffers until `lttng stop`: the followers announce the
    // streams, and a live viewer attaches before any packet exists, so it must see them all.
    lttng(&["start", &tag])?;
    run_workload(&work, 1, 150)?;
    wait_for(Duration::from_secs(30), "the local trace directory", || {
        trelay_consumer::trace::walk(&local)
            .map(|t| !t.is_empty())
            .unwrap_or(false)
    })?;
    let to_ref = start_follow(&local, reference.ports);
    let to_ours = start_follow(&local, ours.ports);
    let hostname = trelay_consumer::ship::send::names_for(
        &trelay_consumer::trace::walk(&local)?,
        &local,
        None,
        None,
    )
    .1;
    wait_for(
        Duration::from_secs(60),
        "the followed session on lttng-relayd",
        || {
            std::fs::read_dir(reference.out.join(&hostname))
                .map(|d| d.count() > 0)
                .unwrap_or(false)
        },
    )?;
    let viewer_url = format!(
        "net://127.0.0.1:{}/host/{hostname}/{tag}",
        reference.ports.live
    );
    let viewer_out = tmp.path().join("live.txt");
    let viewer_err = tmp.path().join("live.err");
    let viewer = Command::new("babeltrace2")
        .args([
            "-i",
            "lttng-live",
            &viewer_url,
            "--params",
            "session-not-found-action=\"end\"",
        ])
        .env("TZ", "UTC")
        .stdout(Stdio::from(std::fs::File::create(&viewer_out)?))
        .stderr(Stdio::from(std::fs::File::create(&viewer_err)?))
        .spawn()
        .context("babeltrace2 live viewer")?;
    std::thread::sleep(Duration::from_secs(2));
    lttng(&["stop", &tag])?;

    // The first burst reaches the relays while the local session still exists.
    let first = event_lines(&local);
    ensure!(first > 100, "first burst recorded only {first} events");
    let ref_dir = || session_dir(&reference.out, &hostname).unwrap_or_default();
    wait_for(
        Duration::from_secs(60),
        "the first burst on lttng-relayd",
        || event_lines(&ref_dir()) == first,
    )?;
    ensure!(
        !to_ref.is_finished() && !to_ours.is_finished(),
        "a follower ended early"
    );

    // Second burst, then the end of the local session ends the followers.
    lttng(&["start", &tag])?;
    run_workload(&work, 2, 150)?;
    lttng(&["stop", &tag])?;
    lttng(&["destroy", &tag])?;
    let deadline = Instant::now() + Duration::from_secs(90);
    while !(to_ref.is_finished() && to_ours.is_finished()) {
        if Instant::now() > deadline {
            bail!("followers did not end after the session was destroyed");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let r1 = to_ref
        .join()
        .map_err(|_| anyhow::anyhow!("follower panicked"))??;
    let r2 = to_ours
        .join()
        .map_err(|_| anyhow::anyhow!("follower panicked"))??;
    ensure!(r1.packets == r2.packets && r1.packets > 0, "{r1:?} {r2:?}");

    let total = assert_same_output(&local, &ref_dir()).context("lttng-relayd's copy")?;
    ensure!(
        total > first,
        "second burst missing: {total} events vs {first}"
    );
    let ours_dir = session_dir(&ours.out, &hostname)?;
    assert_same_output(&local, &ours_dir)
        .with_context(|| format!("trelayd's copy\n{}", ours.log_tail()))?;

    // The live viewer saw the same events and ended with the session.
    wait_exit(viewer, &viewer_err, Duration::from_secs(60))?;
    let out = std::fs::read_to_string(&viewer_out)?;
    let live: Vec<&str> = out.lines().collect();
    let want = bt(&local)?;
    ensure!(
        live == want.lines().collect::<Vec<_>>(),
        "live viewer printed {} lines, the local trace has {}",
        live.len(),
        want.lines().count()
    );
    reference.stop()?;
    ours.stop_ok()?;
    Ok(())
}

fn wait_exit(
    mut child: std::process::Child,
    stderr: &std::path::Path,
    timeout: Duration,
) -> Result<()> {
    let start = Instant::now();
    let err = || {
        std::fs::read_to_string(stderr)
            .unwrap_or_default()
            .chars()
            .take(2000)
            .collect::<String>()
    };
    loop {
        if let Some(st) = child.try_wait()? {
            ensure!(st.success(), "live viewer failed ({st}): {}", err());
            return Ok(());
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            bail!("live viewer did not end; stderr: {}", err());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A local CTF 2 session of a real LTTng 2.15 session daemon, followed while it records: over
/// net:// (protocol 2.15) to lttng-relayd 2.15 and to trelayd, and over trelay:// to trelayd;
/// babeltrace2 2.1 reads the three copies like the local trace.
#[test]
fn follows_a_growing_ctf2_session_of_lttng_215_over_net_and_trelay() -> Result<()> {
    use trelay_consumer::native::follow::{follow as native_follow, NativeFollowOptions};
    use trelay_integration::bt21;
    use trelay_integration::lttng215::{LttngRelayd215, Sessiond215};
    use trelay_integration::relay::Trelayd;
    let tmp = tempfile::Builder::new().prefix("trelay-cf2-").tempdir()?;
    let mut sd = Sessiond215::start(&tmp.path().join("sd"), &[])?;
    let tag = unique("cf2");
    let work = sd.python(tmp.path(), &tag)?;
    let local = tmp.path().join("local");
    sd.lttng(&["create", &tag, "--output", local.to_str().context("path")?])?;
    sd.lttng(&[
        "enable-event",
        "-u",
        "-s",
        &tag,
        "lttng_ust_libc:malloc",
        "--filter",
        &work.filter(),
    ])?;
    sd.lttng(&["start", &tag])?;
    work.run(&["-c", trelay_integration::scenario::WORKLOAD, "100"])?;
    wait_for(Duration::from_secs(30), "the local CTF 2 metadata", || {
        bt21::assert_ctf2(&local).is_ok()
    })?;
    let mut theirs = LttngRelayd215::start(
        &tmp.path().join("lttng-relayd"),
        &tmp.path().join("lttng-relayd.log"),
        &[],
    )?;
    let mut ours = Trelayd::start(&tmp.path().join("trelayd"), &[])?;
    let follow_net = |p: Ports| {
        let mut o = FollowOptions::new(local.clone(), relay_url(p));
        o.progress = false;
        o.live_timer_us = 200_000;
        o.poll = Duration::from_millis(50);
        // The local session belongs to the 2.15 daemon, which `lttng list` (2.13) cannot see:
        // the follow ends once the trace stops growing.
        o.watch_session = false;
        o.idle_timeout = Some(Duration::from_secs(5));
        std::thread::spawn(move || {
            runtime()
                .block_on(follow(&o, std::future::pending::<()>()))
                .map_err(anyhow::Error::from)
                .map(|r| r.packets)
        })
    };
    let to_theirs = follow_net(theirs.ports);
    let to_ours = follow_net(ours.ports);
    let mut no = NativeFollowOptions::new(
        local.clone(),
        trelay_consumer::url::RelayUrl::parse(&format!(
            "trelay://127.0.0.1:{}",
            ours.ports.control
        ))?,
    );
    no.progress = false;
    no.watch_session = false;
    no.poll = Duration::from_millis(50);
    no.idle_timeout = Some(Duration::from_secs(5));
    no.session = Some(format!("{tag}-native"));
    let to_ours_native = std::thread::spawn(move || {
        runtime()
            .block_on(native_follow(&no, std::future::pending::<()>()))
            .map_err(anyhow::Error::from)
            .map(|r| r.packets)
    });
    // The trace grows while it is followed.
    for _ in 0..3 {
        work.run(&["-c", trelay_integration::scenario::WORKLOAD, "100"])?;
    }
    sd.lttng(&["stop", &tag])?;
    sd.lttng(&["destroy", &tag])?;
    let mut sent = Vec::new();
    for h in [to_theirs, to_ours, to_ours_native] {
        sent.push(h.join().map_err(|_| anyhow::anyhow!("follow panicked"))??);
    }
    ensure!(sent.iter().all(|&p| p > 0), "packets sent: {sent:?}");
    theirs.stop()?;
    ours.stop_ok()?;
    sd.stop()?;
    let want = bt21::babeltrace(&local)?;
    ensure!(
        want.lines().count() >= 400,
        "{} events",
        want.lines().count()
    );
    let mut copies = Vec::new();
    for out in [&theirs.out, &ours.out] {
        for host in std::fs::read_dir(out)?.flatten() {
            if host.path().is_dir() {
                for s in std::fs::read_dir(host.path())?.flatten() {
                    copies.push(s.path());
                }
            }
        }
    }
    ensure!(copies.len() == 3, "session copies: {copies:?}");
    for c in copies {
        bt21::assert_ctf2(&c)?;
        let got = bt21::babeltrace(&c)?;
        ensure!(
            got == want,
            "{} reads differently: {} / {} events",
            c.display(),
            got.lines().count(),
            want.lines().count()
        );
    }
    Ok(())
}
