//! Edge → core forwarding: an edge trelayd receiving sessions over the LTTng protocol ships them,
//! once committed, to a core trelayd over trelay://. The core being down at first, a cutting
//! proxy between the two, a core SIGKILLed and restarted and an edge restarted mid-way only
//! delay it: the core's copy reads like the edge's (and like lttng-relayd's), and the edge keeps
//! what the core has not acknowledged (retention does not take it; the backlog is reported).
//! A session that rotates arrives whole too, each chunk once.

mod consumer_support;

use anyhow::{ensure, Context, Result};
use consumer_support::{assert_same_output, relay_url, runtime, session_dir};
use std::path::Path;
use std::time::Duration;
use trelay_consumer::ship::{send, SendOptions};
use trelay_consumer::synth::{write_trace_dir, SynthTrace};
use trelay_integration::relay::{free_ports, metric_value as metric, scrape as metrics, Trelayd};
use trelay_integration::wait_for;

fn ledger_empty(out: &Path) -> bool {
    std::fs::read_dir(out.join(".trelay-forward"))
        .map(|d| d.count() == 0)
        .unwrap_or(true)
}

/// Restarts the edge over the scenario's output (in `dir`) forwarding to `core`, waits until
/// the core acknowledged everything, stops both and checks the core reads the edge's events.
fn finish_at_core(
    dir: &Path,
    outcome: &trelay_integration::scenario::Outcome,
    forward: &str,
    core: &mut Trelayd,
) -> Result<()> {
    let mut edge = Trelayd::start_with_output(dir, &outcome.ours, &["--forward", forward])?;
    wait_for(
        Duration::from_secs(60),
        "the forwarding ledger to empty",
        || ledger_empty(&outcome.ours),
    )
    .with_context(|| edge.log_tail())?;
    edge.stop_ok()?;
    core.stop_ok()?;
    let got = trelay_integration::normalized_events(&core.out)?;
    ensure!(
        got == outcome.events,
        "the core has {} events, the edge {}\n{}",
        got.len(),
        outcome.events.len(),
        core.log_tail()
    );
    Ok(())
}

#[test]
fn the_edge_keeps_and_reports_what_a_late_core_has_not_acknowledged() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let d = tmp.path();
    let core_port = free_ports()?.control;
    let cfg = d.join("edge.toml");
    // A quota every closed session exceeds, checked every second.
    std::fs::write(&cfg, "[retention]\nmax_bytes = 1\ninterval_s = 1\n")?;
    let forward = format!("trelay://127.0.0.1:{core_port}");
    let mut edge = Trelayd::start(
        &d.join("edge"),
        &[
            "--forward",
            &forward,
            "--config",
            &cfg.display().to_string(),
            "--metrics-addr",
            "127.0.0.1:0",
        ],
    )?;
    let mport = edge.metrics.context("no metrics port")?;
    let t = SynthTrace::new("edge-host", "fwd", 4096);
    let local = d.join("fwd");
    // More packets than the forwarder holds unacknowledged per stream (8,192).
    const PACKETS: u64 = 9_000;
    write_trace_dir(&t, &local.join("ust/uid/0/64-bit"), 1, PACKETS)?;
    let mut o = SendOptions::new(local.clone(), relay_url(edge.ports));
    o.progress = false;
    let r = runtime().block_on(send(&o))?;
    ensure!(r.packets == PACKETS, "{r:?}");
    let edge_copy = session_dir(&edge.out, "edge-host")?;

    // The core is down: the backlog shows (bounded: what the forwarder holds in memory stops at
    // 8,192 packets), and retention keeps the closed session. While the core is away the job
    // reads 1,024 packets per connection attempt, attempts backing off to one per 5 s: the
    // bound is reached after about 16 s, later on a loaded machine.
    wait_for(
        Duration::from_secs(60),
        "the backlog in the metrics",
        || {
            let m = metrics(mport);
            metric(&m, "trelay_forward_backlog_bytes") == Some((8192 * 4096) as f64)
                && metric(&m, "trelay_forward_sessions") == Some(1.0)
                && metric(&m, "trelay_forward_connected") == Some(0.0)
        },
    )
    .with_context(|| metrics(mport))?;
    wait_for(Duration::from_secs(10), "the backlog log line", || {
        edge.log_text().contains("forwarding backlog")
    })?;
    std::thread::sleep(Duration::from_secs(2));
    ensure!(
        edge_copy.exists(),
        "retention deleted a session the core does not have"
    );
    ensure!(!ledger_empty(&edge.out), "no forwarding record");

    // The core comes up: everything arrives, then retention may have the edge's copy.
    let mut core = Trelayd::start(
        &d.join("core"),
        &["-C", &format!("tcp://127.0.0.1:{core_port}")],
    )?;
    wait_for(Duration::from_secs(30), "the session forwarded", || {
        edge.log_text().contains("session forwarded")
    })
    .with_context(|| edge.log_tail())?;
    ensure!(ledger_empty(&edge.out), "the forwarding record stayed");
    let m = metrics(mport);
    ensure!(
        metric(&m, "trelay_forward_acked_bytes_total") == Some((PACKETS * 4096) as f64),
        "{m}"
    );
    core.stop_ok()?;
    assert_same_output(&local, &session_dir(&core.out, "edge-host")?)?;
    wait_for(
        Duration::from_secs(10),
        "retention of the forwarded session",
        || !edge_copy.exists(),
    )?;
    edge.stop_ok()?;
    Ok(())
}

#[test]
fn a_live_sessiond_session_reaches_the_core_whole_through_cuts_and_restarts() -> Result<()> {
    use trelay_integration::live::LiveClient;
    use trelay_integration::proxy::{cuts, Proxy};
    use trelay_integration::scenario::{self, Scenario, Step};
    let tmp = tempfile::tempdir()?;
    let d = tmp.path();
    let core_port = free_ports()?.control;
    let control = format!("tcp://127.0.0.1:{core_port}");
    let core_out = d.join("core-out");
    let mut core = Trelayd::start_with_output(&d.join("c1"), &core_out, &["-C", &control])?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let proxy = rt.block_on(Proxy::start(
        ([127, 0, 0, 1], core_port).into(),
        cuts(9, 6, 400_000),
    ))?;
    let forward: &'static str =
        Box::leak(format!("trelay://127.0.0.1:{}", proxy.addr.port()).into_boxed_str());
    let mut sc = Scenario::new("fwd");
    sc.live = Some(200_000);
    sc.trelayd_args = vec!["--forward", forward];
    sc.steps = vec![Step::Run(2, 300), Step::Sleep(1500), Step::Run(2, 300)];
    let run = std::thread::spawn(move || scenario::run(&sc));

    // Live at the core: once it lists the session, the core dies and comes back.
    let live_port = core.ports.live;
    wait_for(
        Duration::from_secs(90),
        "the session listed on the core's live port",
        || {
            LiveClient::viewer(live_port)
                .and_then(|mut c| c.list())
                .map(|l| l.iter().any(|s| s.session_name.contains("fwd")))
                .unwrap_or(false)
        },
    )
    .with_context(|| core.log_tail())?;
    core.kill9()?;
    std::thread::sleep(Duration::from_millis(300));
    let mut core = Trelayd::start_with_output(&d.join("c2"), &core_out, &["-C", &control])?;
    let outcome = run.join().expect("the scenario")?;

    // The edge stopped with the scenario; restarted, it finishes whatever the core still lacks.
    finish_at_core(&d.join("e2"), &outcome, forward, &mut core)?;
    ensure!(
        proxy.cut.load(std::sync::atomic::Ordering::SeqCst) > 0,
        "the proxy never cut"
    );
    Ok(())
}

#[test]
fn a_rotating_sessiond_session_reaches_the_core_whole() -> Result<()> {
    use trelay_integration::scenario::{self, Scenario, Step};
    let tmp = tempfile::tempdir()?;
    let d = tmp.path();
    let mut core = Trelayd::start(&d.join("core"), &[])?;
    let forward: &'static str =
        Box::leak(format!("trelay://127.0.0.1:{}", core.ports.control).into_boxed_str());
    let mut sc = Scenario::new("fwdrot");
    sc.trelayd_args = vec!["--forward", forward];
    // The edge forwards everything before it stops.
    sc.settle = Some(ledger_empty);
    // Pauses let the job see each chunk's files where they are written, before the rotation
    // moves them.
    sc.steps = vec![
        Step::Run(1, 200),
        Step::Sleep(2500),
        Step::Rotate,
        Step::Run(1, 200),
        Step::Sleep(2500),
        Step::Rotate,
        Step::Run(1, 200),
    ];
    let outcome = scenario::run(&sc)?;
    finish_at_core(&d.join("e2"), &outcome, forward, &mut core)?;
    Ok(())
}

#[test]
fn a_viewer_on_the_core_follows_a_forwarded_session_live() -> Result<()> {
    use trelay_integration::scenario::{self, Scenario, Step};
    use trelay_viewer::live::{list_sessions, mirror, LiveOptions};
    use trelay_viewer::url::LiveUrl;
    let tmp = tempfile::tempdir()?;
    let d = tmp.path();
    let mut core = Trelayd::start(&d.join("core"), &[])?;
    let forward: &'static str =
        Box::leak(format!("trelay://127.0.0.1:{}", core.ports.control).into_boxed_str());
    let mut sc = Scenario::new("fwdlv");
    sc.live = Some(200_000);
    sc.trelayd_args = vec!["--forward", forward];
    sc.settle = Some(ledger_empty);
    sc.steps = vec![Step::Run(1, 200), Step::Sleep(1500), Step::Run(2, 200)];
    let run = std::thread::spawn(move || scenario::run(&sc));

    // Attach to the core as soon as it lists the session, and mirror it while it is recorded.
    let relay: LiveUrl = format!("net://127.0.0.1:{}", core.ports.live)
        .parse()
        .map_err(anyhow::Error::msg)?;
    let mut listed = Vec::new();
    wait_for(Duration::from_secs(90), "the session on the core", || {
        listed = list_sessions(&relay).unwrap_or_default();
        !listed.is_empty()
    })?;
    let mut opts = LiveOptions::new(
        listed[0].url.parse().map_err(anyhow::Error::msg)?,
        d.join("mirror"),
    );
    opts.poll = Duration::from_millis(20);
    let stats = mirror(
        &opts,
        &std::sync::atomic::AtomicBool::new(false),
        |_| Ok(()),
    )?;
    let outcome = run.join().expect("the scenario")?;
    core.stop_ok()?;
    ensure!(stats.packets > 0, "{stats:?}");
    let mirrored = trelay_integration::normalized_events(&d.join("mirror"))?;
    ensure!(
        mirrored == outcome.events,
        "the live viewer on the core read {} events, the edge has {}",
        mirrored.len(),
        outcome.events.len()
    );
    Ok(())
}

#[test]
fn a_ctf2_session_reaches_the_core_as_ctf2() -> Result<()> {
    use trelay_consumer::native::send::{send as native_send, NativeSendOptions};
    use trelay_integration::bt21;
    use trelay_proto::ctf::format::TraceFormat;
    let tmp = tempfile::tempdir()?;
    let d = tmp.path();
    let mut core = Trelayd::start(&d.join("core"), &[])?;
    let forward = format!("trelay://127.0.0.1:{}", core.ports.control);
    let mut edge = Trelayd::start(&d.join("edge"), &["--forward", &forward])?;
    let t = SynthTrace::new("edge-host", "fwd2", 4096).with_format(TraceFormat::Ctf2);
    let local = d.join("fwd2");
    write_trace_dir(&t, &local.join("ust/uid/0/64-bit"), 2, 200)?;
    let url = trelay_consumer::url::RelayUrl::parse(&format!(
        "trelay://127.0.0.1:{}",
        edge.ports.control
    ))?;
    let mut o = NativeSendOptions::new(local.clone(), url);
    o.progress = false;
    let r = runtime().block_on(native_send(&o))?;
    ensure!(r.streams.iter().all(|s| s.acknowledged == 200), "{r:?}");
    wait_for(Duration::from_secs(60), "the session forwarded", || {
        edge.log_text().contains("session forwarded")
    })
    .with_context(|| edge.log_tail())?;
    edge.stop_ok()?;
    core.stop_ok()?;
    for (who, log) in [("edge", edge.log_text()), ("core", core.log_text())] {
        ensure!(
            log.contains("trace_format=ctf-2"),
            "the {who} did not open a CTF 2 session:\n{log}"
        );
    }
    let at_core = session_dir(&core.out, "edge-host")?;
    bt21::assert_ctf2(&at_core)?;
    let (want, got) = (bt21::babeltrace(&local)?, bt21::babeltrace(&at_core)?);
    ensure!(
        want.lines().count() > 1000 && want == got,
        "babeltrace2 2.1 reads the core's copy differently ({} / {} lines)",
        want.lines().count(),
        got.lines().count()
    );
    Ok(())
}
