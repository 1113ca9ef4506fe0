//! `trelay-viewer` live client against real sessions: a real lttng-sessiond/consumerd streams a
//! live session to a relay (the reference lttng-relayd, then trelayd); the viewer lists it,
//! mirrors it from the live port while it is recorded, and the mirror reads in babeltrace2 like
//! the relay's own trace (and is readable while it grows). `check` passes both fresh traces, and
//! `index` sees the same packets in both.

use anyhow::{bail, ensure, Context, Result};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use trelay_integration::lttng::{lttng, sessiond, steady_allocs, Workload};
use trelay_integration::relay::{free_ports, LttngRelayd, Ports, Trelayd};
use trelay_integration::session::{
    add_vpid_procname, create_streaming, enable_event, large_allocs,
};
use trelay_integration::{babeltrace, unique, wait_for};
use trelay_viewer::live::{list_sessions, mirror, LiveOptions};
use trelay_viewer::url::LiveUrl;

fn hostname() -> String {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The trace directories (holding `metadata`) under `root`.
fn trace_dirs(root: &Path) -> Vec<PathBuf> {
    trelay_integration::files_under(root)
        .into_iter()
        .filter(|f| f.file_name().is_some_and(|n| n == "metadata"))
        .filter_map(|f| root.join(f).parent().map(Path::to_path_buf))
        .collect()
}

fn sorted_lines(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text.lines().map(str::to_owned).collect();
    v.sort();
    v
}

fn run(ports: Ports, relay_out: &Path, tmp: &Path, tag: &str) -> Result<()> {
    let work = Workload::python(tmp, tag)?;
    let script = tmp.join("work.py");
    std::fs::write(&script, steady_allocs(3, 50))?;
    let name = tag.to_owned();
    let _guard = create_streaming(&name, &ports, &["--live=100000"])?;
    enable_event(&name, None, "lttng_ust_libc:malloc", &large_allocs(&work))?;
    add_vpid_procname(&name, None)?;
    lttng(&["start", &name])?;

    // `sessions` lists it.
    let relay_url: LiveUrl = format!("net://127.0.0.1:{}", ports.live)
        .parse()
        .map_err(anyhow::Error::msg)?;
    let host = hostname();
    let mut listed = Vec::new();
    wait_for(
        Duration::from_secs(60),
        "the session in LIST_SESSIONS",
        || {
            listed = list_sessions(&relay_url).unwrap_or_default();
            listed.iter().any(|s| s.name == name)
        },
    )?;
    let s = listed.iter().find(|s| s.name == name).context("listed")?;
    ensure!(s.hostname == host && s.live_timer_us == 100_000, "{s:?}");
    ensure!(
        s.url == format!("net://127.0.0.1:{}/host/{host}/{name}", ports.live),
        "{}",
        s.url
    );

    let mut opts = LiveOptions::new(
        s.url.parse().map_err(anyhow::Error::msg)?,
        tmp.join("first"),
    );
    opts.poll = Duration::from_millis(20);

    // A stop request (Ctrl-C) detaches: the relay counts the viewer while it is attached, not
    // after, and lets the next viewer attach (one viewer per session).
    let clients = |n: u32| {
        list_sessions(&relay_url)
            .unwrap_or_default()
            .iter()
            .any(|s| s.name == name && s.clients == n)
    };
    let first_stop = Arc::new(AtomicBool::new(false));
    let (stop1, opts1) = (first_stop.clone(), opts.clone());
    let first = std::thread::spawn(move || mirror(&opts1, &stop1, |_| Ok(())));
    wait_for(
        Duration::from_secs(60),
        "the first viewer to be attached",
        || clients(1),
    )?;
    first_stop.store(true, Ordering::Relaxed);
    let first_stats = first
        .join()
        .map_err(|_| anyhow::anyhow!("mirror panicked"))??;
    ensure!(
        first_stats.detached && first_stats.sessions >= 1,
        "{first_stats:?}"
    );
    wait_for(Duration::from_secs(30), "the viewer to be detached", || {
        clients(0)
    })?;

    // Follow the relay's output on disk while it is written (the OFD lock protocol with
    // trelayd; whole index entries with lttng-relayd).
    let tail_stop = Arc::new(AtomicBool::new(false));
    let tailed = Arc::new(Mutex::new(Vec::new()));
    let (tail_stop2, tailed2, tail_root) =
        (tail_stop.clone(), tailed.clone(), relay_out.to_path_buf());
    let tail = std::thread::spawn(move || {
        let o = trelay_viewer::tail::TailOptions {
            poll: Duration::from_millis(20),
            ..Default::default()
        };
        trelay_viewer::tail::tail(&tail_root, &o, &tail_stop2, |l| {
            tailed2.lock().unwrap().push(l.clone());
            Ok(())
        })
    });

    // Mirror it while the workload runs.
    let mirror_dir = tmp.join("mirror");
    opts.output = mirror_dir.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let lines = Arc::new(Mutex::new(Vec::new()));
    let (stop2, lines2, opts2) = (stop.clone(), lines.clone(), opts.clone());
    let handle = std::thread::spawn(move || {
        mirror(&opts2, &stop2, |l| {
            lines2.lock().unwrap().push(l.clone());
            Ok(())
        })
    });
    work.run(&[script.to_str().unwrap()])?;
    // The mirror is readable while it grows.
    wait_for(Duration::from_secs(60), "a mirrored packet", || {
        !lines.lock().unwrap().is_empty()
    })?;
    let during = trace_dirs(&mirror_dir);
    ensure!(during.len() == 1, "mirror traces: {during:?}");
    babeltrace(&during[0]).context("babeltrace2 on the growing mirror")?;

    lttng(&["stop", &name])?;
    lttng(&["destroy", &name])?;
    let start = Instant::now();
    while !handle.is_finished() {
        if start.elapsed() > Duration::from_secs(120) {
            stop.store(true, Ordering::Relaxed);
            bail!("the live mirror did not end after the session was destroyed");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let stats = handle
        .join()
        .map_err(|_| anyhow::anyhow!("mirror panicked"))??;
    ensure!(!stats.detached && stats.sessions >= 1, "{stats:?}");

    let ref_dirs = trace_dirs(relay_out);
    ensure!(ref_dirs.len() == 1, "relay traces: {ref_dirs:?}");
    let mine = trace_dirs(&mirror_dir);
    let reference = babeltrace(&ref_dirs[0])?;
    let mirrored = babeltrace(&mine[0])?;
    ensure!(
        reference.lines().count() > 100,
        "only {} events",
        reference.lines().count()
    );
    ensure!(
        sorted_lines(&reference) == sorted_lines(&mirrored),
        "mirror differs: {} events vs {} in the relay's trace",
        mirrored.lines().count(),
        reference.lines().count()
    );
    let printed = lines.lock().unwrap().len() as u64;
    ensure!(
        printed == stats.packets,
        "{printed} lines for {} packets",
        stats.packets
    );

    // `tail` printed every packet of the relay's trace, each once, as the index has it.
    let q = trelay_viewer::query::IndexQuery {
        all_packets: true,
        ..Default::default()
    };
    let on_disk = trelay_viewer::query::query(relay_out, &q)?;
    let want: Vec<_> = on_disk.traces[0]
        .packets
        .iter()
        .map(|p| (p.stream.clone(), p.offset, p.seq))
        .collect();
    let got_all = wait_for(
        Duration::from_secs(60),
        "tail to print every packet",
        || tailed.lock().unwrap().len() >= want.len(),
    );
    tail_stop.store(true, Ordering::Relaxed);
    let tail_stats = tail
        .join()
        .map_err(|_| anyhow::anyhow!("tail panicked"))??;
    got_all?;
    let mut got: Vec<_> = tailed
        .lock()
        .unwrap()
        .iter()
        .map(|p| (p.stream.clone(), p.offset, p.seq))
        .collect();
    got.sort();
    let mut want_sorted = want.clone();
    want_sorted.sort();
    ensure!(
        got == want_sorted,
        "tail saw {got:?}\nindex has {want_sorted:?}"
    );
    ensure!(tail_stats.packets == want.len() as u64);

    // `check` passes both fresh traces; `index` sees the same packets.
    for root in [relay_out, mirror_dir.as_path()] {
        let r = trelay_viewer::check::check(root)?;
        ensure!(
            r.problems.is_empty(),
            "{}: {:?}",
            root.display(),
            r.problems
        );
        ensure!(r.entries > 0, "{}: no entries checked", root.display());
    }
    let q = trelay_viewer::query::IndexQuery {
        all_packets: true,
        ..Default::default()
    };
    let a = trelay_viewer::query::query(&ref_dirs[0], &q)?;
    let b = trelay_viewer::query::query(&mine[0], &q)?;
    let key = |r: &trelay_viewer::query::IndexReport| {
        let mut v: Vec<_> = r.traces[0]
            .packets
            .iter()
            .map(|p| (p.stream.clone(), p.seq, p.begin, p.end, p.size))
            .collect();
        v.sort();
        v
    };
    ensure!(
        key(&a) == key(&b),
        "packets differ:\n{:?}\n{:?}",
        key(&a),
        key(&b)
    );
    ensure!(key(&b).len() as u64 == stats.packets);
    Ok(())
}

#[test]
fn live_mirror_of_an_lttng_relayd_session() -> Result<()> {
    let _lock = sessiond()?;
    let tmp = tempfile::Builder::new().prefix("trelay-vl-").tempdir()?;
    let out = tmp.path().join("ref");
    let mut relay = LttngRelayd::start(&out, free_ports()?, &[])?;
    let res = run(relay.ports, &out, tmp.path(), &unique("vl"));
    relay.stop()?;
    res
}

#[test]
fn live_mirror_of_a_trelayd_session() -> Result<()> {
    let _lock = sessiond()?;
    let tmp = tempfile::Builder::new().prefix("trelay-vt-").tempdir()?;
    let mut relay = Trelayd::start(&tmp.path().join("trelayd"), &[])?;
    let out = relay.out.clone();
    let res = run(relay.ports, &out, tmp.path(), &unique("vt"));
    let _ = relay.stop();
    res.with_context(|| relay.log_tail())
}
