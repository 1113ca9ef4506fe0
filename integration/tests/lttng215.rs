//! LTTng 2.15 end to end: a 2.15 lttng-sessiond at its defaults (CTF 2) streams to trelayd over
//! net://, babeltrace2 2.1 reads the trace after the session and live; babeltrace2 2.0 listing
//! the same relay sees its CTF 1.8 sessions only.

use anyhow::{ensure, Context, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;
use trelay_integration::live::LiveClient;
use trelay_integration::live_viewer::{wait_attached, LiveBabeltrace};
use trelay_integration::lttng::{self as lttng213, Workload};
use trelay_integration::lttng215::Sessiond215;
use trelay_integration::relay::Trelayd;
use trelay_integration::session::{create_streaming, enable_event};
use trelay_integration::{files_under, unique, wait_for};
use trelay_proto::TraceFormat;

/// The `metadata` files under `root`.
fn metadata_files(root: &Path) -> Vec<PathBuf> {
    files_under(root)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "metadata"))
        .map(|p| root.join(p))
        .collect()
}

/// Lines of babeltrace2's text output that are malloc events (sessions filter on the
/// workload's procname, so these are the workload's).
fn mallocs(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.contains("lttng_ust_libc:malloc:"))
        .collect()
}

/// A short Python program doing `n` large allocations (malloc events through the wrapper).
fn allocs(n: u32) -> String {
    format!("keep = [bytearray(100000 + i) for i in range({n})]")
}

#[test]
fn ctf2_session_at_defaults_is_recorded_and_read_by_babeltrace2_2_1() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut relay = Trelayd::start(&tmp.path().join("relay"), &[])?;
    let sd = Sessiond215::start(&tmp.path().join("s215"), &[])?;
    let app = sd.python(tmp.path(), &unique("c2d"))?;
    let name = unique("ctf2");
    let s = sd.create_net(&name, relay.ports.control, relay.ports.data, &[])?;
    s.enable_ust("lttng_ust_libc:malloc", Some(&app.filter()))?;
    s.start()?;
    let listed = s.list()?;
    ensure!(listed.contains("CTF 2"), "not a CTF 2 session: {listed}");
    app.run(&["-c", &allocs(200)])?;
    s.stop()?;
    s.destroy()?;
    let metas = metadata_files(&relay.out);
    ensure!(metas.len() == 1, "metadata files {metas:?}");
    let head = std::fs::read(&metas[0])?;
    ensure!(
        head.first() == Some(&0x1e),
        "the metadata is not a JSON text sequence: {:?}",
        &head[..head.len().min(16)]
    );
    let text = sd.bundle.read_trace(&relay.out)?;
    let events = mallocs(&text);
    ensure!(
        events.len() >= 200,
        "babeltrace2 2.1 read {} mallocs of {}: {}",
        events.len(),
        app.procname(),
        text.lines().take(3).collect::<Vec<_>>().join("\n")
    );
    ensure!(
        relay.log_text().contains("trace_format=CTF 2"),
        "trelayd did not log the session's format: {}",
        relay.log_tail()
    );
    relay.stop_ok()?;
    Ok(())
}

/// babeltrace2 `bin` listing the live sessions of `port`.
fn bt_list(bin: &Path, port: u16) -> Result<String> {
    let out = std::process::Command::new(bin)
        .args([
            "--input-format=lttng-live",
            &format!("net://127.0.0.1:{port}"),
        ])
        .output()
        .context("babeltrace2 not runnable")?;
    ensure!(
        out.status.success(),
        "{} listing failed: {}",
        bin.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn ctf2_and_ctf1_8_live_sessions_with_babeltrace2_2_1_and_2_0() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut relay = Trelayd::start(&tmp.path().join("relay"), &[])?;
    let sd = Sessiond215::start(&tmp.path().join("s215"), &[])?;
    let app = sd.python(tmp.path(), &unique("c2l"))?;
    let (c2, c18) = (unique("lc2"), unique("lc18"));
    let (ctl, data, live) = (relay.ports.control, relay.ports.data, relay.ports.live);
    let s2 = sd.create_net(&c2, ctl, data, &["--live=200000"])?;
    let s18 = sd.create_net(
        &c18,
        ctl,
        data,
        &["--live=200000", "--trace-format=ctf-1.8"],
    )?;
    for s in [&s2, &s18] {
        s.enable_ust("lttng_ust_libc:malloc", Some(&app.filter()))?;
        s.start()?;
    }

    // A viewer at live minor 15 lists both, each with its format.
    let mut v15 = LiveClient::viewer_at(live, 15)?;
    let mut listed = Vec::new();
    wait_for(
        Duration::from_secs(20),
        "both sessions listed at 2.15",
        || {
            listed = v15.list().unwrap_or_default();
            [&c2, &c18]
                .iter()
                .all(|n| listed.iter().any(|r| &r.session_name == *n))
        },
    )?;
    let rec = |n: &str| listed.iter().find(|r| r.session_name == n).cloned();
    let (r2, r18) = (rec(&c2).context("c2")?, rec(&c18).context("c18")?);
    ensure!(r2.trace_format == TraceFormat::Ctf2, "{r2:?}");
    ensure!(r18.trace_format == TraceFormat::Ctf1_8, "{r18:?}");

    // A viewer at 2.4 (babeltrace2 2.0's minor) sees only the CTF 1.8 one, and attaching to the
    // CTF 2 one by id is an unknown session; its connection goes on.
    let mut v4 = LiveClient::viewer(live)?;
    let names: Vec<String> = v4.list()?.into_iter().map(|r| r.session_name).collect();
    ensure!(names.contains(&c18) && !names.contains(&c2), "{names:?}");
    let st = v4.attach(r2.id, trelay_proto::lttng::live::Seek::Beginning)?;
    ensure!(
        st.0 == trelay_proto::lttng::live::AttachStatus::Unknown,
        "attach of a CTF 2 session at 2.4: {st:?}"
    );
    ensure!(v4.list()?.iter().any(|r| r.session_name == c18));

    // babeltrace2 2.0 lists the CTF 1.8 session only; 2.1 lists both.
    let old = bt_list(Path::new("/usr/bin/babeltrace2"), live)?;
    ensure!(
        old.contains(&c18) && !old.contains(&c2),
        "babeltrace2 2.0: {old}"
    );
    let new = bt_list(&sd.bundle.bin("babeltrace2"), live)?;
    ensure!(
        new.contains(&c18) && new.contains(&c2),
        "babeltrace2 2.1: {new}"
    );

    // babeltrace2 2.1 follows the CTF 2 session and the CTF 1.8 one, 2.0 the CTF 1.8 one.
    let host = r2.hostname.clone();
    let dir = tmp.path().join("bt");
    let bin21 = sd.bundle.bin("babeltrace2");
    let mut b21_2 = LiveBabeltrace::start_bin(&bin21, &dir, "b21c2", live, &host, &c2)?;
    let mut b21_18 = LiveBabeltrace::start_bin(&bin21, &dir, "b21c18", live, &host, &c18)?;
    let mut b20_18 = LiveBabeltrace::start_for(&dir, "b20c18", live, &host, &c18)?;
    wait_attached(&relay, &c2, 1, Duration::from_secs(20))?;
    wait_attached(&relay, &c18, 2, Duration::from_secs(20))?;
    app.run(&["-c", &allocs(300)])?;
    for s in [&s2, &s18] {
        s.stop()?;
    }
    s2.destroy()?;
    s18.destroy()?;
    for (b, what) in [
        (&mut b21_2, "2.1 on CTF 2"),
        (&mut b21_18, "2.1 on CTF 1.8"),
        (&mut b20_18, "2.0 on CTF 1.8"),
    ] {
        let text = b.wait(Duration::from_secs(60))?;
        let n = mallocs(&text).len();
        ensure!(n >= 300, "babeltrace2 {what} read {n} mallocs live");
    }
    relay.stop_ok()?;
    Ok(())
}

/// The session folder of `name` under the relay's output root (`HOST/NAME-DATE-TIME`).
fn session_dir(out: &Path, name: &str) -> Result<PathBuf> {
    for host in std::fs::read_dir(out)?.flatten() {
        if !host.path().is_dir() {
            continue;
        }
        for s in std::fs::read_dir(host.path())?.flatten() {
            if s.file_name()
                .to_string_lossy()
                .starts_with(&format!("{name}-"))
            {
                return Ok(s.path());
            }
        }
    }
    anyhow::bail!("no folder for session {name} under {}", out.display())
}

#[test]
fn a_2_13_sender_and_2_15_senders_of_both_formats_share_one_relay() -> Result<()> {
    let held = lttng213::sessiond()?;
    let tmp = tempfile::tempdir()?;
    let mut relay = Trelayd::start(&tmp.path().join("relay"), &[])?;
    let sd = Sessiond215::start_beside(&tmp.path().join("s215"), &[], &held)?;
    let (ctl, data) = (relay.ports.control, relay.ports.data);
    let (n13, n18, n2) = (unique("mx13"), unique("mx18"), unique("mx2"));

    // 2.13 (Debian) and 2.15 (bundle, CTF 1.8 and CTF 2) sessions, all started before any
    // records, so their connections are open on the relay at once.
    let w13 = Workload::python(tmp.path(), &unique("w13"))?;
    let _g13 = create_streaming(&n13, &relay.ports, &[])?;
    enable_event(&n13, None, "lttng_ust_libc:malloc", &w13.filter())?;
    lttng213::lttng(&["start", &n13])?;
    let w15 = sd.python(tmp.path(), &unique("w15"))?;
    let s18 = sd.create_net(&n18, ctl, data, &["--trace-format=ctf-1.8"])?;
    let s2 = sd.create_net(&n2, ctl, data, &[])?;
    for s in [&s18, &s2] {
        s.enable_ust("lttng_ust_libc:malloc", Some(&w15.filter()))?;
        s.start()?;
    }
    w13.run(&["-c", &allocs(150)])?;
    w15.run(&["-c", &allocs(250)])?;
    lttng213::lttng(&["stop", &n13])?;
    lttng213::lttng(&["destroy", &n13])?;
    for s in [&s18, &s2] {
        s.stop()?;
    }
    s18.destroy()?;
    s2.destroy()?;

    // The relay negotiated 13 with one, 15 with the other, and kept each session's format.
    let log = relay.log_text();
    for (name, format, minor) in [
        (&n13, "CTF 1.8", "2.13"),
        (&n18, "CTF 1.8", "2.15"),
        (&n2, "CTF 2", "2.15"),
    ] {
        ensure!(
            log.lines().any(|l| l.contains("session created")
                && l.contains(&format!("name={name} "))
                && l.contains(&format!("trace_format={format} minor={minor} "))),
            "{name}: no 'session created' line with {format} at {minor}"
        );
    }
    let bt21 = &sd.bundle;
    // CTF 1.8 metadata is TSDL: packetized (magic 0x75D11D57 in the tracer's byte order, what
    // the 2.13 consumer sends) or plain text (`/* CTF 1.8`, what the 2.15 consumer sends); CTF 2
    // metadata is a JSON text sequence (0x1E first).
    for (name, n, ctf2) in [(&n13, 150, false), (&n18, 250, false), (&n2, 250, true)] {
        let dir = session_dir(&relay.out, name)?;
        let metas = metadata_files(&dir);
        ensure!(metas.len() == 1, "{name}: {metas:?}");
        let head = std::fs::read(&metas[0])?;
        let tsdl = head.starts_with(&[0x57, 0x1d, 0xd1, 0x75])
            || head.starts_with(&[0x75, 0xd1, 0x1d, 0x57])
            || head.starts_with(b"/* CTF 1.8");
        ensure!(
            if ctf2 {
                head.first() == Some(&0x1e)
            } else {
                tsdl
            },
            "{name}: metadata starts {:?}",
            &head[..head.len().min(8)]
        );
        let got = mallocs(&bt21.read_trace(&dir)?).len();
        ensure!(got >= n, "{name}: babeltrace2 2.1 read {got} mallocs");
        if !ctf2 {
            let got = mallocs(&trelay_integration::babeltrace(&dir)?).len();
            ensure!(got >= n, "{name}: babeltrace2 2.0 read {got} mallocs");
        }
    }
    relay.stop_ok()?;
    Ok(())
}

#[test]
fn live_lists_match_lttng_relayd_2_15_at_both_minors() -> Result<()> {
    use trelay_integration::lttng215::LttngRelayd215;
    use trelay_proto::lttng::live::{AttachStatus, Seek};
    let tmp = tempfile::tempdir()?;
    let mut ours = Trelayd::start(&tmp.path().join("relay"), &[])?;
    let mut theirs = LttngRelayd215::start(
        &tmp.path().join("ref-out"),
        &tmp.path().join("lttng-relayd.log"),
        &[],
    )?;
    let sd = Sessiond215::start(&tmp.path().join("s215"), &[])?;
    let (c2, c18) = (unique("dl2"), unique("dl18"));
    // One session daemon names each session once: the sessions of relay `i` end with `i`.
    let mut sessions = Vec::new();
    for (i, (ctl, data)) in [
        (ours.ports.control, ours.ports.data),
        (theirs.ports.control, theirs.ports.data),
    ]
    .into_iter()
    .enumerate()
    {
        let a = sd.create_net(&format!("{c2}{i}"), ctl, data, &["--live=300000"])?;
        let b = sd.create_net(
            &format!("{c18}{i}"),
            ctl,
            data,
            &["--live=300000", "--trace-format=ctf-1.8"],
        )?;
        for s in [&a, &b] {
            s.enable_ust("lttng_ust_libc:malloc", Some("$ctx.procname == \"none\""))?;
            s.start()?;
        }
        sessions.push(a);
        sessions.push(b);
    }
    // (hostname, name without its relay digit, live timer, format) of the listed sessions, at
    // live minor `minor`.
    let view = |port: u16, minor: u32| -> Result<Vec<(String, String, u32, TraceFormat)>> {
        let mut c = LiveClient::viewer_at(port, minor)?;
        let mut v: Vec<_> = c
            .list()?
            .into_iter()
            .filter_map(|r| {
                let mut name = r.session_name;
                name.pop();
                (name == c2 || name == c18).then_some((
                    r.hostname,
                    name,
                    r.live_timer,
                    r.trace_format,
                ))
            })
            .collect();
        v.sort();
        Ok(v)
    };
    let mut got = Vec::new();
    wait_for(
        Duration::from_secs(20),
        "both sessions listed by both relays",
        || {
            got = [ours.ports.live, theirs.ports.live]
                .iter()
                .map(|p| view(*p, 15).unwrap_or_default())
                .collect();
            got.iter().all(|v| v.len() == 2)
        },
    )?;
    ensure!(
        got[0] == got[1],
        "at 2.15: trelayd {:?}, lttng-relayd {:?}",
        got[0],
        got[1]
    );
    ensure!(got[0].iter().any(|r| r.3 == TraceFormat::Ctf2));
    for minor in [4, 13, 14] {
        let (a, b) = (
            view(ours.ports.live, minor)?,
            view(theirs.ports.live, minor)?,
        );
        ensure!(a == b, "at 2.{minor}: trelayd {a:?}, lttng-relayd {b:?}");
        ensure!(a.len() == 1 && a[0].3 == TraceFormat::Ctf1_8, "{a:?}");
    }
    // Attaching to the CTF 2 session at 2.4: unknown session on both.
    for (i, port) in [ours.ports.live, theirs.ports.live].into_iter().enumerate() {
        let id = LiveClient::viewer_at(port, 15)?
            .find(&format!("{c2}{i}"))?
            .context("CTF 2 session")?
            .id;
        let mut old = LiveClient::viewer(port)?;
        let (st, _) = old.attach(id, Seek::Last)?;
        ensure!(st == AttachStatus::Unknown, "port {port}: {st:?}");
    }
    for s in sessions {
        s.destroy()?;
    }
    theirs.stop()?;
    ours.stop_ok()?;
    Ok(())
}

#[test]
fn create_session_2_15_as_lttng_relayd_2_15_reads_it() -> Result<()> {
    use trelay_integration::client::{
        create_session_2_15_payload, create_session_2_15_raw, Control,
    };
    use trelay_integration::lttng215::LttngRelayd215;
    const OK: u32 = 10;
    const FATAL: u32 = 25;
    let tmp = tempfile::tempdir()?;
    let mut ours = Trelayd::start(&tmp.path().join("relay"), &[])?;
    let mut theirs = LttngRelayd215::start(
        &tmp.path().join("ref-out"),
        &tmp.path().join("lttng-relayd.log"),
        &[],
    )?;
    // Our encoding of both formats, and a format out of range: the same status from both.
    for port in [ours.ports.control, theirs.ports.control] {
        for (p, want) in [
            (
                create_session_2_15_payload(&unique("e2"), "h", 0, TraceFormat::Ctf2),
                OK,
            ),
            (
                create_session_2_15_payload(&unique("e18"), "h", 0, TraceFormat::Ctf1_8),
                OK,
            ),
            (
                create_session_2_15_raw([4, 2, 1], 0, 7, b"bad\0h\0\0"),
                FATAL,
            ),
        ] {
            let mut c = Control::connect(port)?;
            c.handshake_at(15)?;
            let (_, rc, _) = c.create_session(&p)?;
            ensure!(rc == want, "port {port}: status {rc}, expected {want}");
        }
    }
    theirs.stop()?;
    ours.stop_ok()?;
    Ok(())
}
