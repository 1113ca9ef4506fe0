//! babeltrace2 attached live to trelayd, with sessions streamed by the real lttng-sessiond: what
//! it prints live equals what it reads post-mortem from trelayd's output afterwards, and what it
//! prints attached live to lttng-relayd for the same workload. Serialized
//! with the other sessiond tests (`lttng::sessiond`); events are filtered on a unique procname.

use anyhow::{ensure, Context, Result};
use std::time::Duration;
use trelay_integration::live_viewer::{size_of, wait_attached, LiveBabeltrace};
use trelay_integration::lttng::{lttng, sessiond, SessionGuard, Workload};
use trelay_integration::relay::{free_ports, LttngRelayd, Ports, Trelayd};
use trelay_integration::scenario::WORKLOAD;
use trelay_integration::session::{create_streaming, enable_event, large_allocs};
use trelay_integration::{normalize, normalized_events, unique, wait_for};

const VIEWER_END: Duration = Duration::from_secs(90);
const ATTACH: Duration = Duration::from_secs(60);

/// Creates and starts a live session (200 ms timer) on `relay` recording `work`'s mallocs of at
/// least 100000 bytes in channel `chan`; with `per_pid`, per-process buffers and a second channel
/// `idle` whose streams never get an event.
fn live_session(relay: &Ports, name: &str, work: &Workload, per_pid: bool) -> Result<SessionGuard> {
    live_session_for(relay, name, work, per_pid, None)
}

/// [`live_session`], recording only processes of user `uid` when given (other tests' traced
/// processes then get no buffers in this session).
fn live_session_for(
    relay: &Ports,
    name: &str,
    work: &Workload,
    per_pid: bool,
    uid: Option<u32>,
) -> Result<SessionGuard> {
    let guard = create_streaming(name, relay, &["--live=200000"])?;
    let mut channels = vec![("chan", large_allocs(work))];
    if per_pid {
        channels.push(("idle", format!("{} && size == 3", work.filter())));
    }
    for (ch, filter) in &channels {
        let mut enable = vec!["enable-channel", "-u", "-s", name, ch, "--subbuf-size=1M"];
        if per_pid {
            enable.push("--buffers-pid");
        }
        lttng(&enable)?;
        enable_event(name, Some(ch), "lttng_ust_libc:malloc", filter)?;
    }
    if let Some(uid) = uid {
        lttng(&["untrack", "-u", "-s", name, "--all", "--vuid"])?;
        lttng(&["track", "-u", "-s", name, "--vuid", &uid.to_string()])?;
    }
    lttng(&["start", name])?;
    Ok(guard)
}

/// Runs the workload as user `uid` (traced, with the libc wrapper).
fn run_as(work: &Workload, uid: u32, args: &[&str]) -> Result<()> {
    let id = uid.to_string();
    let st = std::process::Command::new("setpriv")
        .args([
            "--reuid",
            &id,
            "--regid",
            &id,
            "--clear-groups",
            "--",
            "env",
        ])
        .arg("LD_PRELOAD=liblttng-ust-libc-wrapper.so.1")
        .arg(&work.path)
        .args(args)
        .env("HOME", "/")
        .current_dir("/")
        .stdout(std::process::Stdio::null())
        .status()
        .context("setpriv not runnable")?;
    ensure!(st.success(), "workload as uid {uid}: {st}");
    Ok(())
}

fn end_session(name: &str) -> Result<()> {
    let _ = lttng(&["stop", name]);
    lttng(&["destroy", name])?;
    Ok(())
}

#[test]
fn two_live_viewers_print_what_post_mortem_reading_prints() -> Result<()> {
    let _lock = sessiond()?;
    let tmp = tempfile::Builder::new().prefix("trelay-live-").tempdir()?;
    let mut relay = Trelayd::start(&tmp.path().join("relay"), &[])?;
    let tag = unique("lvb");
    let work = Workload::python(tmp.path(), &tag)?;
    let guard = live_session(&relay.ports, &tag, &work, false)?;
    let mut v1 = LiveBabeltrace::start(tmp.path(), "v1", relay.ports.live, &tag)?;
    let mut v2 = LiveBabeltrace::start(tmp.path(), "v2", relay.ports.live, &tag)?;
    wait_attached(&relay, &tag, 2, ATTACH)?;
    work.run(&["-c", WORKLOAD, "300"])?;
    // Both see the events while the session is still running.
    wait_for(
        Duration::from_secs(60),
        "live events before destroy",
        || v1.output().lines().count() >= 300 && v2.output().lines().count() >= 300,
    )
    .with_context(|| relay.log_tail())?;
    end_session(&tag)?;
    drop(guard);
    let o1 = v1.wait(VIEWER_END).with_context(|| relay.log_tail())?;
    let o2 = v2.wait(VIEWER_END).with_context(|| relay.log_tail())?;
    let code = relay.stop()?;
    ensure!(code == 0, "trelayd exited with {code}");
    let post = normalized_events(&relay.out)?;
    ensure!(post.len() >= 300, "only {} events recorded", post.len());
    let (n1, n2) = (normalize(&o1), normalize(&o2));
    ensure!(
        n1 == post,
        "viewer 1 printed {} events, post-mortem {}",
        n1.len(),
        post.len()
    );
    ensure!(
        n2 == post,
        "viewer 2 printed {} events, post-mortem {}",
        n2.len(),
        post.len()
    );
    ensure!(
        !relay.log_text().contains(" ERROR "),
        "{}",
        relay.log_tail()
    );
    Ok(())
}

#[test]
fn per_pid_short_lived_apps_and_an_idle_stream_keep_the_viewer_going() -> Result<()> {
    let _lock = sessiond()?;
    let tmp = tempfile::Builder::new().prefix("trelay-live-").tempdir()?;
    let mut relay = Trelayd::start(&tmp.path().join("relay"), &[])?;
    let tag = unique("lvp");
    let work = Workload::python(tmp.path(), &tag)?;
    // Apps run as a user of their own, the only one the session records: traced processes of
    // other tests never add streams to this session.
    let uid = 40_000 + std::process::id() % 20_000;
    for dir in [tmp.path(), &tmp.path().join("bin")] {
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    }
    let guard = live_session_for(&relay.ports, &tag, &work, true, Some(uid))?;
    let mut v = LiveBabeltrace::start(tmp.path(), "v", relay.ports.live, &tag)?;
    wait_attached(&relay, &tag, 1, ATTACH)?;
    // Each app registers, traces and exits; its streams appear after the viewer attached, its
    // `idle` streams never get a packet. The viewer must print each app's events before the next
    // app runs (no stream may stall it), not only at destroy.
    for app in 1..=3usize {
        run_as(&work, uid, &["-c", WORKLOAD, "50"])?;
        wait_for(
            Duration::from_secs(60),
            &format!("events of app {app} live"),
            || v.output().lines().count() >= 50 * app,
        )
        .with_context(|| {
            format!(
                "{} lines; viewer stderr: {}\n{}",
                v.output().lines().count(),
                std::fs::read_to_string(&v.err).unwrap_or_default(),
                relay.log_tail()
            )
        })?;
    }
    end_session(&tag)?;
    drop(guard);
    let out = v.wait(VIEWER_END).with_context(|| relay.log_tail())?;
    relay.stop()?;
    let post = normalized_events(&relay.out)?;
    ensure!(post.len() >= 150, "only {} events recorded", post.len());
    let live = normalize(&out);
    ensure!(
        live == post,
        "live {} events, post-mortem {}",
        live.len(),
        post.len()
    );
    Ok(())
}

#[test]
fn a_viewer_attaching_mid_session_starts_at_the_last_packet() -> Result<()> {
    let _lock = sessiond()?;
    let tmp = tempfile::Builder::new().prefix("trelay-live-").tempdir()?;
    let mut relay = Trelayd::start(&tmp.path().join("relay"), &[])?;
    let tag = unique("lvm");
    let work = Workload::python(tmp.path(), &tag)?;
    let guard = live_session(&relay.ports, &tag, &work, false)?;
    let before =
        "import time\ntime.sleep(0.4)\nkeep = [bytearray(200000 + i) for i in range(40)]\n";
    let after = "import time\ntime.sleep(0.4)\nkeep = [bytearray(300000 + i) for i in range(40)]\n";
    work.run(&["-c", before])?;
    // Let the live timer flush and commit those packets before the viewer attaches.
    std::thread::sleep(Duration::from_millis(1500));
    let mut v = LiveBabeltrace::start(tmp.path(), "v", relay.ports.live, &tag)?;
    wait_attached(&relay, &tag, 1, ATTACH)?;
    work.run(&["-c", after])?;
    wait_for(Duration::from_secs(60), "events after attach", || {
        v.output()
            .lines()
            .filter(|l| size_of(l).is_some_and(|s| s >= 300000))
            .count()
            >= 40
    })
    .with_context(|| relay.log_tail())?;
    end_session(&tag)?;
    drop(guard);
    let out = v.wait(VIEWER_END)?;
    relay.stop()?;
    let post = normalized_events(&relay.out)?;
    // The run before attach allocated 200001..=200040 bytes, the run after 300001..=300040.
    let before_attach = |l: &String| size_of(l).is_some_and(|s| (200_000..200_100).contains(&s));
    let after_attach = |l: &String| size_of(l).is_some_and(|s| (300_000..300_100).contains(&s));
    ensure!(
        post.iter().filter(|l| before_attach(l)).count() == 40,
        "the trace holds the first run"
    );
    let live = normalize(&out);
    ensure!(
        !live.iter().any(before_attach),
        "the viewer printed events committed before it attached"
    );
    let want: Vec<&String> = post.iter().filter(|l| after_attach(l)).collect();
    let got: Vec<&String> = live.iter().filter(|l| after_attach(l)).collect();
    ensure!(
        want.len() == 40 && got == want,
        "live {} vs post-mortem {}",
        got.len(),
        want.len()
    );
    Ok(())
}

/// Runs a few `bytearray(SIZE)` under the workload until both viewers printed one (a malloc of
/// SIZE + 1 bytes): each is then attached and past its seek position (babeltrace2 attaches at
/// the last packet).
fn warm_up(work: &Workload, size: u64, viewers: &[&LiveBabeltrace]) -> Result<()> {
    let code =
        format!("import time\ntime.sleep(0.2)\nkeep = [bytearray({size}) for i in range(5)]\n");
    let start = std::time::Instant::now();
    loop {
        work.run(&["-c", &code])?;
        let seen = |v: &&LiveBabeltrace| v.output().lines().any(|l| size_of(l) == Some(size + 1));
        if wait_for(Duration::from_secs(3), "warm-up events", || {
            viewers.iter().all(seen)
        })
        .is_ok()
        {
            return Ok(());
        }
        ensure!(
            start.elapsed() < ATTACH,
            "viewers never printed the warm-up events"
        );
    }
}

#[test]
fn live_through_trelayd_prints_what_live_through_lttng_relayd_prints() -> Result<()> {
    let _lock = sessiond()?;
    let tmp = tempfile::Builder::new().prefix("trelay-live-").tempdir()?;
    let mut relay = Trelayd::start(&tmp.path().join("relay"), &[])?;
    let mut reference = LttngRelayd::start(&tmp.path().join("reference"), free_ports()?, &[])?;
    let tag = unique("lvd");
    let work = Workload::python(tmp.path(), &tag)?;
    // One workload, recorded by two sessions at once: one on each relay.
    let (ours, theirs) = (format!("{tag}t"), format!("{tag}r"));
    let g1 = live_session(&relay.ports, &ours, &work, false)?;
    let g2 = live_session(&reference.ports, &theirs, &work, false)?;
    let mut vt = LiveBabeltrace::start(tmp.path(), "vt", relay.ports.live, &ours)?;
    let mut vr = LiveBabeltrace::start(tmp.path(), "vr", reference.ports.live, &theirs)?;
    warm_up(&work, 150_000, &[&vt, &vr]).with_context(|| relay.log_tail())?;
    let run = "import time\ntime.sleep(0.2)\nfor r in range(3):\n    \
keep = [bytearray(400000 + 1000 * r + i) for i in range(200)]\n    time.sleep(0.3)\n";
    work.run(&["-c", run])?;
    let main = |l: &String| size_of(l).is_some_and(|s| (400_000..403_000).contains(&s));
    // Both print the events while the sessions still run, not only at destroy.
    wait_for(
        Duration::from_secs(60),
        "live events on both relays",
        || {
            [&vt, &vr]
                .iter()
                .all(|v| normalize(&v.output()).iter().filter(|l| main(l)).count() >= 600)
        },
    )
    .with_context(|| relay.log_tail())?;
    for (name, guard) in [(&ours, g1), (&theirs, g2)] {
        end_session(name)?;
        drop(guard);
    }
    let ot = vt.wait(VIEWER_END).with_context(|| relay.log_tail())?;
    let or = vr.wait(VIEWER_END)?;
    relay.stop_ok()?;
    reference.stop()?;
    let through_us: Vec<String> = normalize(&ot).into_iter().filter(main).collect();
    let through_ref: Vec<String> = normalize(&or).into_iter().filter(main).collect();
    ensure!(
        through_ref.len() == 600,
        "lttng-relayd's viewer printed {} of the 600 events",
        through_ref.len()
    );
    ensure!(
        through_us == through_ref,
        "live through trelayd: {} events, through lttng-relayd: {}; first difference: {:?}",
        through_us.len(),
        through_ref.len(),
        through_us.iter().zip(&through_ref).find(|(a, b)| a != b)
    );
    // And what trelayd served live is what it stored.
    let post: Vec<String> = normalized_events(&relay.out)?
        .into_iter()
        .filter(main)
        .collect();
    ensure!(
        post == through_us,
        "post-mortem {} events, live {}",
        post.len(),
        through_us.len()
    );
    Ok(())
}
