//! trelay:// end to end: `trelay-consumer send --url trelay://…` into trelayd, through a proxy
//! that cuts the connection at random byte offsets, into a relay that starts after the sender,
//! and beside a stock-protocol sender on the same relay; babeltrace2 reads the relay's copy
//! exactly like the original every time, in one session directory.

mod consumer_support;

use anyhow::{ensure, Result};
use consumer_support::{assert_same_output, runtime};
use std::path::{Path, PathBuf};
use std::time::Duration;
use trelay_consumer::native::send::{send, NativeReport, NativeSendOptions};
use trelay_consumer::synth::{write_trace_dir, SynthTrace};
use trelay_consumer::url::RelayUrl;
use trelay_integration::proxy::{cuts, Proxy};
use trelay_integration::relay::Trelayd;
use trelay_proto::trelay::message::AckLevel;

/// A synthetic trace of `streams` streams × `packets` packets of 4 KiB under `root`.
fn trace(root: &Path, name: &str, streams: u32, packets: u64) -> PathBuf {
    let t = SynthTrace::new("native-host", name, 4096);
    let dir = root.join(name);
    write_trace_dir(&t, &dir.join("ust/uid/0/64-bit"), streams, packets).unwrap();
    dir
}

fn url(port: u16) -> RelayUrl {
    RelayUrl::parse(&format!("trelay://127.0.0.1:{port}")).unwrap()
}

fn opts(dir: &Path, port: u16, ack: AckLevel) -> NativeSendOptions {
    let mut o = NativeSendOptions::new(dir.to_path_buf(), url(port));
    o.ack = ack;
    o.progress = false;
    o.retry_for = Duration::from_secs(60);
    o.batch_bytes = 64 << 10;
    o
}

/// The relay's copy reads like the original, and holds each packet once.
fn check_copy(relay: &Trelayd, local: &Path, r: &NativeReport, packets: u64) -> Result<()> {
    let copy = relay.out.join(&r.relay_path);
    assert_same_output(local, &copy)?;
    let report = trelay_viewer::check::check(&copy)?;
    ensure!(report.problems.is_empty(), "{:#?}", report.problems);
    ensure!(
        report.entries == packets,
        "{} index entries for {packets} packets",
        report.entries
    );
    let sessions = std::fs::read_dir(relay.out.join("native-host"))?.count();
    ensure!(sessions == 1, "{sessions} session directories");
    Ok(())
}

#[test]
fn a_trace_sent_over_trelay_reads_back_identically_at_both_ack_levels() -> Result<()> {
    for ack in [AckLevel::Committed, AckLevel::Received] {
        let tmp = tempfile::tempdir()?;
        let local = trace(tmp.path(), "plain", 3, 40);
        let mut relay = Trelayd::start(tmp.path(), &[])?;
        let r = runtime().block_on(send(&opts(&local, relay.ports.control, ack)))?;
        ensure!(r.reconnects == 0);
        ensure!(r.streams.iter().all(|s| s.acknowledged == 40), "{r:?}");
        relay.stop_ok()?;
        check_copy(&relay, &local, &r, 120)?;
    }
    Ok(())
}

#[test]
fn cuts_at_random_offsets_lose_nothing_and_write_nothing_twice() -> Result<()> {
    for seed in [1u64, 7, 42] {
        let tmp = tempfile::tempdir()?;
        let local = trace(tmp.path(), "cut", 3, 60);
        let mut relay = Trelayd::start(tmp.path(), &[])?;
        let rt = runtime();
        let r = rt.block_on(async {
            let target = ([127, 0, 0, 1], relay.ports.control).into();
            // 60 × 3 packets of 4 KiB: ~740 KB on the wire, cut 6 times within it.
            let proxy = Proxy::start(target, cuts(seed, 6, 700_000)).await?;
            let r = send(&opts(&local, proxy.addr.port(), AckLevel::Committed)).await?;
            let made = proxy.cut.load(std::sync::atomic::Ordering::SeqCst);
            ensure!(made >= 3, "seed {seed}: only {made} cuts happened");
            ensure!(r.reconnects as usize >= made, "seed {seed}: {r:?}");
            anyhow::Ok(r)
        })?;
        relay.stop_ok()?;
        check_copy(&relay, &local, &r, 180)?;
    }
    Ok(())
}

#[test]
fn a_relay_that_starts_after_the_sender_gets_the_whole_trace() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let local = trace(tmp.path(), "late", 2, 30);
    let port = trelay_integration::relay::free_ports()?.control;
    let o = opts(&local, port, AckLevel::Committed);
    let sender = std::thread::spawn(move || runtime().block_on(send(&o)));
    std::thread::sleep(Duration::from_millis(1500));
    let out = tmp.path().join("out");
    let control = format!("tcp://127.0.0.1:{port}");
    let mut relay = Trelayd::start_with_output(tmp.path(), &out, &["-C", &control])?;
    let r = sender.join().expect("the sender thread")?;
    ensure!(
        r.reconnects > 0,
        "the relay was there before the sender: {r:?}"
    );
    relay.stop_ok()?;
    check_copy(&relay, &local, &r, 60)?;
    Ok(())
}

#[test]
fn stock_and_trelay_senders_share_one_relay() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let native = trace(tmp.path(), "nat", 2, 50);
    let stock = trace(tmp.path(), "stock", 2, 50);
    let mut relay = Trelayd::start(tmp.path(), &[])?;
    let rt = runtime();
    let (n, s) = rt.block_on(async {
        let mut so = trelay_consumer::ship::SendOptions::new(
            stock.clone(),
            consumer_support::relay_url(relay.ports),
        );
        so.progress = false;
        let no = opts(&native, relay.ports.control, AckLevel::Committed);
        tokio::join!(send(&no), trelay_consumer::ship::send(&so))
    });
    let (n, s) = (n?, s?);
    relay.stop_ok()?;
    assert_same_output(&native, &relay.out.join(&n.relay_path))?;
    assert_same_output(&stock, &relay.out.join(&s.relay_path))?;
    Ok(())
}

#[test]
fn a_relay_killed_mid_send_and_restarted_resumes_into_the_same_session() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let local = trace(tmp.path(), "kill", 3, 1500);
    let port = trelay_integration::relay::free_ports()?.control;
    let control = format!("tcp://127.0.0.1:{port}");
    let out = tmp.path().join("out");
    let mut relay = Trelayd::start_with_output(&tmp.path().join("r1"), &out, &["-C", &control])?;
    // The sender goes through a proxy that paces it at 4 MB/s (18 MB in all), so the kill
    // lands in the middle of the send.
    let mut o = opts(&local, port, AckLevel::Committed);
    o.batch_bytes = 16 << 10;
    let sender = std::thread::spawn(move || {
        runtime().block_on(async move {
            let target = ([127, 0, 0, 1], port).into();
            let proxy = Proxy::start_paced(target, Vec::new(), Some(4_000_000)).await?;
            o.url = url(proxy.addr.port());
            anyhow::Ok(send(&o).await?)
        })
    });
    // Once some packets are committed, kill the relay where it stands.
    let idx = |out: &Path| {
        trelay_integration::files_under(out)
            .iter()
            .filter(|f| f.to_string_lossy().ends_with(".idx"))
            .map(|f| std::fs::metadata(out.join(f)).map(|m| m.len()).unwrap_or(0))
            .sum::<u64>()
    };
    trelay_integration::wait_for(Duration::from_secs(20), "packets committed", || {
        idx(&out) > 16 * 3 + 64 * 100
    })?;
    relay.kill9()?;
    let before = idx(&out);
    std::thread::sleep(Duration::from_millis(500));
    let mut relay = Trelayd::start_with_output(&tmp.path().join("r2"), &out, &["-C", &control])?;
    let r = sender.join().expect("the sender thread")?;
    ensure!(r.reconnects > 0, "the sender never lost the relay: {r:?}");
    relay.stop_ok()?;
    ensure!(idx(&out) > before, "nothing was sent after the restart");
    ensure!(
        relay.log_text().contains("reopened after a restart"),
        "{}",
        relay.log_tail()
    );
    check_copy(&relay, &local, &r, 4500)?;
    Ok(())
}

/// Copies the finished trace `full` into `local` a few packets at a time (data before index),
/// as a tracer writing it would, then returns.

#[test]
fn follow_ships_a_growing_trace_through_cuts_and_a_relay_restart() -> Result<()> {
    use trelay_consumer::native::follow::{follow, NativeFollowOptions};
    let tmp = tempfile::tempdir()?;
    let full = trace(tmp.path(), "grow", 2, 200);
    let local = tmp.path().join("local");
    let port = trelay_integration::relay::free_ports()?.control;
    let control = format!("tcp://127.0.0.1:{port}");
    let out = tmp.path().join("out");
    let mut relay = Trelayd::start_with_output(&tmp.path().join("r1"), &out, &["-C", &control])?;
    std::fs::create_dir_all(&local)?;
    let writer = {
        let (full, local) = (full.clone(), local.clone());
        std::thread::spawn(move || trelay_integration::fleet::grow(&full, &local, 2, 200, 20))
    };
    let follower = {
        let local = local.clone();
        std::thread::spawn(move || {
            runtime().block_on(async move {
                let target = ([127, 0, 0, 1], port).into();
                let proxy = Proxy::start(target, cuts(5, 4, 1_500_000)).await?;
                let mut o = NativeFollowOptions::new(local, url(proxy.addr.port()));
                o.watch_session = false;
                o.idle_timeout = Some(Duration::from_secs(3));
                o.progress = false;
                o.retry_for = Duration::from_secs(60);
                o.live_timer_us = 200_000;
                let r = follow(&o, std::future::pending::<()>()).await?;
                anyhow::Ok((r, proxy.cut.load(std::sync::atomic::Ordering::SeqCst)))
            })
        })
    };
    // Half-way through, the relay dies and comes back.
    std::thread::sleep(Duration::from_millis(1500));
    relay.kill9()?;
    std::thread::sleep(Duration::from_millis(300));
    let mut relay = Trelayd::start_with_output(&tmp.path().join("r2"), &out, &["-C", &control])?;
    writer.join().expect("the writer");
    let (r, cut) = follower.join().expect("the follower")?;
    // Every cut costs a reconnect; the restart costs one more unless it fell while the follower
    // was already reconnecting after a cut (then one reconnect covers both).
    ensure!(r.reconnects as usize >= cut, "{r:?} with {cut} cuts");
    relay.stop_ok()?;
    let copy = relay.out.join(&r.relay_path);
    assert_same_output(&full, &copy)?;
    let report = trelay_viewer::check::check(&copy)?;
    ensure!(report.problems.is_empty(), "{:#?}", report.problems);
    ensure!(report.entries == 400, "{} entries", report.entries);
    Ok(())
}

#[test]
fn large_frames_are_spliced_and_survive_cuts_in_their_middle() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let local = trace(tmp.path(), "splice", 2, 600);
    let mut relay = Trelayd::start(tmp.path(), &[])?;
    let rt = runtime();
    let r = rt.block_on(async {
        let target = ([127, 0, 0, 1], relay.ports.control).into();
        // ~4.9 MB in 1 MiB frames, cut 5 times.
        let proxy = Proxy::start(target, cuts(11, 5, 4_500_000)).await?;
        let mut o = opts(&local, proxy.addr.port(), AckLevel::Committed);
        o.batch_bytes = 1 << 20;
        let r = send(&o).await?;
        ensure!(proxy.cut.load(std::sync::atomic::Ordering::SeqCst) >= 3);
        anyhow::Ok(r)
    })?;
    // And once without cuts, straight to the relay.
    let again = trace(tmp.path(), "splice2", 2, 600);
    let mut o = opts(&again, relay.ports.control, AckLevel::Received);
    o.batch_bytes = 1 << 20;
    let r2 = rt.block_on(send(&o))?;
    relay.stop_ok()?;
    check_copy_of(&relay, &local, &r, 1200)?;
    check_copy_of(&relay, &again, &r2, 1200)?;
    Ok(())
}

#[test]
fn large_packets_are_spliced_not_copied() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let t = SynthTrace::new("native-host", "big", 256 << 10);
    let local = tmp.path().join("big");
    write_trace_dir(&t, &local.join("ust/uid/0/64-bit"), 2, 40)?;
    let mut relay = Trelayd::start(tmp.path(), &["--metrics-addr", "127.0.0.1:0"])?;
    let mut o = opts(&local, relay.ports.control, AckLevel::Committed);
    o.batch_bytes = 1 << 20;
    let r = runtime().block_on(send(&o))?;
    // Nearly every payload byte went socket → pipe → file; only what one small read took along
    // with the frames around it was copied.
    let spliced = relay.metric("trelay_spliced_bytes_total");
    let wanted = 0.9 * r.bytes_sent as f64;
    ensure!(
        spliced >= wanted,
        "{spliced} of {} bytes spliced",
        r.bytes_sent
    );
    relay.stop_ok()?;
    check_copy_of(&relay, &local, &r, 80)?;
    Ok(())
}

/// Like `check_copy`, with several sessions under the host.
fn check_copy_of(relay: &Trelayd, local: &Path, r: &NativeReport, packets: u64) -> Result<()> {
    let copy = relay.out.join(&r.relay_path);
    assert_same_output(local, &copy)?;
    let report = trelay_viewer::check::check(&copy)?;
    ensure!(report.problems.is_empty(), "{:#?}", report.problems);
    ensure!(
        report.entries == packets,
        "{} index entries for {packets} packets",
        report.entries
    );
    Ok(())
}

/// The CTF 2 trace the real LTTng 2.15 tools recorded (the vendored fixture).
fn ctf2_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/shared/fixtures/lttng-2.15-ctf2-local-uid")
}

#[test]
fn a_real_ctf2_trace_sent_over_trelay_reads_like_lttng_wrote_it() -> Result<()> {
    use trelay_integration::bt21;
    let tmp = tempfile::tempdir()?;
    let local = tmp.path().join("local");
    consumer_support::copy_tree(&ctf2_fixture().join("trace"), &local)?;
    let mut relay = Trelayd::start(tmp.path(), &[])?;
    let r = runtime().block_on(send(&opts(
        &local,
        relay.ports.control,
        AckLevel::Committed,
    )))?;
    relay.stop_ok()?;
    ensure!(
        relay.log_text().contains("trace_format=ctf-2"),
        "the relay did not open a CTF 2 session:\n{}",
        relay.log_tail()
    );
    let copy = relay.out.join(&r.relay_path);
    bt21::assert_ctf2(&copy)?;
    let md = "ust/uid/0/64-bit/metadata";
    ensure!(
        std::fs::read(copy.join(md))? == std::fs::read(local.join(md))?,
        "the relay's metadata differs from the sender's"
    );
    let want = std::fs::read_to_string(ctf2_fixture().join("babeltrace-postmortem.txt"))?;
    let got = bt21::babeltrace(&copy)?;
    ensure!(
        got == want,
        "babeltrace2 2.1 reads the relay's copy differently:\n{got}"
    );
    let report = trelay_viewer::check::check(&copy)?;
    ensure!(report.problems.is_empty(), "{:#?}", report.problems);
    Ok(())
}

#[test]
fn a_synthetic_ctf2_trace_goes_over_trelay_and_a_ctf18_one_beside_it() -> Result<()> {
    use trelay_integration::bt21;
    use trelay_proto::ctf::format::TraceFormat;
    let tmp = tempfile::tempdir()?;
    let mut relay = Trelayd::start(tmp.path(), &[])?;
    let mut copies = Vec::new();
    for format in TraceFormat::ALL {
        let t = SynthTrace::new("native-host", format.cli_name(), 4096).with_format(format);
        let local = tmp.path().join(format.cli_name());
        write_trace_dir(&t, &local.join("ust/uid/0/64-bit"), 2, 30)?;
        let r = runtime().block_on(send(&opts(
            &local,
            relay.ports.control,
            AckLevel::Committed,
        )))?;
        copies.push((format, local, relay.out.join(&r.relay_path)));
    }
    relay.stop_ok()?;
    for (format, local, copy) in copies {
        if format == TraceFormat::Ctf2 {
            bt21::assert_ctf2(&copy)?;
        }
        let (a, b) = (bt21::babeltrace(&local)?, bt21::babeltrace(&copy)?);
        ensure!(
            a.lines().count() > 100 && a == b,
            "{format}: the copy reads differently"
        );
    }
    Ok(())
}

#[test]
fn a_ctf2_session_followed_over_trelay_is_listed_and_mirrored_live() -> Result<()> {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    use trelay_consumer::native::follow::{follow, NativeFollowOptions};
    use trelay_integration::{bt21, wait_for};
    use trelay_proto::ctf::format::TraceFormat;
    use trelay_viewer::live::{list_sessions, mirror, LiveOptions};
    let tmp = tempfile::tempdir()?;
    let t = SynthTrace::new("native-host", "live2", 4096).with_format(TraceFormat::Ctf2);
    let local = tmp.path().join("live2");
    write_trace_dir(&t, &local.join("ust/uid/0/64-bit"), 2, 20)?;
    let mut relay = Trelayd::start(tmp.path(), &[])?;
    let mut fo = NativeFollowOptions::new(local.clone(), url(relay.ports.control));
    fo.live_timer_us = 100_000;
    fo.watch_session = false;
    fo.idle_timeout = Some(Duration::from_secs(4));
    fo.progress = false;
    let follower =
        std::thread::spawn(move || runtime().block_on(follow(&fo, std::future::pending::<()>())));
    let live: trelay_viewer::url::LiveUrl = format!("net://127.0.0.1:{}", relay.ports.live)
        .parse()
        .map_err(anyhow::Error::msg)?;
    let mut listed = Vec::new();
    wait_for(Duration::from_secs(30), "the session listed", || {
        listed = list_sessions(&live).unwrap_or_default();
        listed.iter().any(|s| s.name == "live2")
    })?;
    let s = listed.iter().find(|s| s.name == "live2").unwrap();
    ensure!(s.trace_format == TraceFormat::Ctf2, "{s:?}");
    let mut lo = LiveOptions::new(
        s.url.parse().map_err(anyhow::Error::msg)?,
        tmp.path().join("mirror"),
    );
    lo.poll = Duration::from_millis(20);
    let stop = Arc::new(AtomicBool::new(false));
    let stats = mirror(&lo, &stop, |_| Ok(()))?;
    ensure!(stats.sessions >= 1, "{stats:?}");
    let r = follower
        .join()
        .map_err(|_| anyhow::anyhow!("follow panicked"))??;
    ensure!(r.packets == 40, "{r:?}");
    relay.stop_ok()?;
    let mirrored = tmp.path().join("mirror");
    bt21::assert_ctf2(&mirrored)?;
    let (want, got) = (bt21::babeltrace(&local)?, bt21::babeltrace(&mirrored)?);
    ensure!(
        want.lines().count() > 100 && want == got,
        "the live mirror reads differently ({} / {} lines)",
        want.lines().count(),
        got.lines().count()
    );
    Ok(())
}
