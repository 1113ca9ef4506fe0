//! Following one session across three relays: three hosts each ship a live session named
//! "checkout" to their own trelayd (synthetic traces whose clocks are one second apart, so
//! their packets interleave in time). The multi-relay `tail` prints every packet of the three
//! relays exactly once, in timestamp order, tagged with its relay, while a fourth relay that is
//! down is retried, given up and reported without holding the others back. The multi-relay
//! `live` mirror holds each relay's trace under its own folder, and babeltrace2 reads the mirror
//! with the same events as the three relays' outputs read together. A connection cut in the
//! middle (a proxy) is followed again with nothing printed twice.

use anyhow::{bail, ensure, Context, Result};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use trelay_integration::fleet::{host_trace, ship_live, HostTrace};
use trelay_integration::normalize;
use trelay_integration::relay::{free_ports, Trelayd};
use trelay_viewer::live::multi::progress::State;
use trelay_viewer::live::multi::tail::{tail_all, MergeOptions, TailLine};
use trelay_viewer::live::multi::{mirror_all, MultiOptions, MultiReport, RelaySpec};
use trelay_viewer::live::{LiveOptions, SessionMatch};

const SESSION: &str = "checkout";
const NAMES: [&str; 3] = ["edge-a", "edge-b", "edge-c"];

struct Fleet {
    relays: Vec<Trelayd>,
    traces: Vec<HostTrace>,
    _tmp: tempfile::TempDir,
}

fn fleet(tag: &str) -> Result<Fleet> {
    let tmp = tempfile::Builder::new().prefix(tag).tempdir()?;
    let base = 1_800_000_000u64;
    let mut relays = Vec::new();
    let mut traces = Vec::new();
    for (i, name) in NAMES.iter().enumerate() {
        relays.push(Trelayd::start(
            &tmp.path().join(format!("relay-{name}")),
            &[],
        )?);
        let host = format!("host-{name}");
        traces.push(host_trace(
            &tmp.path().join("local"),
            &host,
            SESSION,
            base + i as u64,
            2,
            12 + 3 * i as u64,
        )?);
    }
    Ok(Fleet {
        relays,
        traces,
        _tmp: tmp,
    })
}

fn options(f: &Fleet, output: &Path, down: Option<u16>) -> Result<MultiOptions> {
    let mut relays: Vec<RelaySpec> = NAMES
        .iter()
        .zip(&f.relays)
        .map(|(n, r)| format!("{n}=net://127.0.0.1:{}", r.ports.live).parse())
        .collect::<Result<_, String>>()
        .map_err(anyhow::Error::msg)?;
    if let Some(port) = down {
        relays.push(
            format!("down=net://127.0.0.1:{port}")
                .parse()
                .map_err(anyhow::Error::msg)?,
        );
    }
    let mut base = LiveOptions::new(relays[0].url.clone(), output.to_path_buf());
    base.select = Some(SessionMatch::glob(SESSION, Some("host-*")).map_err(anyhow::Error::msg)?);
    base.wait = Duration::from_secs(60);
    base.poll = Duration::from_millis(20);
    Ok(MultiOptions {
        relays,
        base,
        give_up: Duration::from_secs(3),
        progress: Duration::from_secs(1),
    })
}

/// Ships the three sessions while `run` follows them; returns what `run` returned.
fn with_sessions<T: Send>(
    f: &Fleet,
    run: impl FnOnce(&AtomicBool) -> Result<T, String> + Send,
) -> Result<T> {
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let follower = s.spawn(|| run(&stop));
        let senders: Vec<_> = f
            .traces
            .iter()
            .zip(&f.relays)
            .map(|(t, r)| ship_live(t, SESSION, r.ports, Duration::from_secs(3)))
            .collect();
        for h in senders {
            h.join()
                .map_err(|_| anyhow::anyhow!("sender panicked"))?
                .context("ship a live session")?;
        }
        let start = Instant::now();
        while !follower.is_finished() {
            if start.elapsed() > Duration::from_secs(90) {
                stop.store(true, Ordering::Relaxed);
                let _ = follower.join();
                bail!("the follower did not end after every session ended");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        follower
            .join()
            .map_err(|_| anyhow::anyhow!("follower panicked"))?
            .map_err(anyhow::Error::msg)
    })
}

fn state_of(r: &MultiReport, name: &str) -> Option<State> {
    r.relays.iter().find(|s| s.name == name).map(|s| s.state)
}

/// A packet's `(seq, begin, end, size)`.
type PacketKey = (Option<u64>, u64, u64, u64);

/// The keys of the packets the tail printed for relay `name`, sorted.
fn packets_printed(lines: &[TailLine], name: &str) -> Vec<PacketKey> {
    let mut mine: Vec<PacketKey> = lines
        .iter()
        .filter(|l| l.relay == name)
        .map(|l| (l.line.seq, l.line.begin, l.line.end, l.line.size))
        .collect();
    mine.sort();
    mine
}

/// The keys of every packet a relay wrote, sorted.
fn packets_on_disk(out: &Path) -> Result<Vec<PacketKey>> {
    let q = trelay_viewer::query::IndexQuery {
        all_packets: true,
        ..Default::default()
    };
    let r = trelay_viewer::query::query(out, &q)?;
    let mut v: Vec<_> = r
        .traces
        .iter()
        .flat_map(|t| t.packets.iter())
        .map(|p| (p.seq, p.begin, p.end, p.size))
        .collect();
    v.sort();
    Ok(v)
}

#[test]
fn tail_merges_three_relays_by_timestamp_and_survives_a_dead_one() -> Result<()> {
    let f = fleet("trelay-mt-")?;
    let dead = free_ports()?.live;
    let opts = options(&f, Path::new(""), Some(dead))?;
    let lines: Arc<Mutex<Vec<TailLine>>> = Arc::default();
    let merge = MergeOptions {
        max_held: 4096,
        max_lag: Duration::from_secs(5),
    };
    let got = lines.clone();
    let report = with_sessions(&f, move |stop| {
        tail_all(&opts, merge, stop, |l| {
            got.lock().unwrap().push(l.clone());
            Ok(())
        })
    })?;
    let lines = lines.lock().unwrap().clone();
    for n in NAMES {
        ensure!(state_of(&report, n) == Some(State::Ended), "{report:?}");
    }
    ensure!(
        state_of(&report, "down") == Some(State::Failed),
        "{report:?}"
    );
    ensure!(!report.all_ok());
    ensure!(
        report.late == 0 && lines.iter().all(|l| !l.late),
        "late lines"
    );

    // Every packet of each relay exactly once.
    for ((name, relay), trace) in NAMES.iter().zip(&f.relays).zip(&f.traces) {
        let mine = packets_printed(&lines, name);
        let want = packets_on_disk(&relay.out)?;
        ensure!(!want.is_empty(), "{name}: no packet on disk");
        ensure!(
            mine == want,
            "{name} ({}): tail printed {} packets, the relay holds {}",
            trace.host,
            mine.len(),
            want.len()
        );
        let st = report.relays.iter().find(|s| s.name == *name).unwrap();
        ensure!(st.packets == want.len() as u64, "{st:?}");
    }

    // In timestamp order on the Epoch time line (each trace has its own clock offset), and
    // really interleaved across relays.
    let offset: BTreeMap<&str, u64> = NAMES
        .iter()
        .zip(&f.traces)
        .map(|(n, t)| (*n, t.offset_s))
        .collect();
    let times: Vec<i128> = lines
        .iter()
        .map(|l| i128::from(offset[l.relay.as_str()]) * 1_000_000_000 + i128::from(l.line.begin))
        .collect();
    ensure!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "tail is not in timestamp order: {:?}",
        lines
            .iter()
            .map(|l| (&l.relay, l.line.begin))
            .collect::<Vec<_>>()
    );
    let switches = lines
        .windows(2)
        .filter(|w| w[0].relay != w[1].relay)
        .count();
    ensure!(switches >= 10, "only {switches} relay switches: not merged");
    Ok(())
}

/// babeltrace2 on `paths` together. The hosts' clocks are distinct (other UUIDs), so it is told
/// to correlate them on the Epoch, as for any traces of several hosts.
fn babeltrace_all(paths: &[&Path]) -> Result<String> {
    let out = Command::new("babeltrace2")
        .arg("--clock-force-correlate")
        .args(paths)
        .env("TZ", "UTC")
        .output()
        .context("babeltrace2 not runnable")?;
    ensure!(
        out.status.success(),
        "babeltrace2 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn live_mirrors_three_relays_into_one_trace_set() -> Result<()> {
    let f = fleet("trelay-mm-")?;
    let mirror = f._tmp.path().join("mirror");
    let opts = options(&f, &mirror, None)?;
    let printed: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    let p = printed.clone();
    let report = with_sessions(&f, move |stop| {
        mirror_all(&opts, stop, |relay, _line| {
            *p.lock().unwrap().entry(relay.to_owned()).or_default() += 1;
            Ok(())
        })
    })?;
    ensure!(report.all_ok(), "{report:?}");
    for (name, relay) in NAMES.iter().zip(&f.relays) {
        ensure!(mirror.join(name).is_dir(), "no {name}/ in the mirror");
        let want = packets_on_disk(&relay.out)?;
        let mine = packets_on_disk(&mirror.join(name))?;
        ensure!(mine == want, "{name}: mirror {mine:?}\nrelay {want:?}");
        ensure!(printed.lock().unwrap().get(*name) == Some(&(want.len() as u64)));
        let r = trelay_viewer::check::check(&mirror.join(name))?;
        ensure!(r.problems.is_empty(), "{name}: {:?}", r.problems);
    }
    let outs: Vec<&Path> = f.relays.iter().map(|r| r.out.as_path()).collect();
    let relays = babeltrace_all(&outs)?;
    let mirrored = babeltrace_all(&[mirror.as_path()])?;
    let events: u64 = f.traces.iter().map(|t| t.events).sum();
    ensure!(
        relays.lines().count() as u64 == events,
        "{} events in the relays, {events} sent",
        relays.lines().count()
    );
    ensure!(
        normalize(&relays) == normalize(&mirrored),
        "the mirror reads {} events, the relays {}",
        mirrored.lines().count(),
        relays.lines().count()
    );
    // babeltrace2 merges the mirror's traces on one time line: its output is the relays' output.
    ensure!(relays == mirrored, "the merged reading differs");
    Ok(())
}

/// The connection to one relay is cut twice in the middle of the session: the tail reconnects,
/// attaches again from the beginning and still prints each of that relay's packets once.
#[test]
fn tail_reconnects_after_cuts_without_duplicates() -> Result<()> {
    use trelay_integration::proxy::Proxy;
    let f = fleet("trelay-mc-")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let target = format!("127.0.0.1:{}", f.relays[0].ports.live).parse()?;
    let proxy = rt.block_on(Proxy::start(target, vec![700, 1500]))?;
    let mut opts = options(&f, Path::new(""), None)?;
    opts.relays[0] = format!("{}=net://{}", NAMES[0], proxy.addr)
        .parse()
        .map_err(anyhow::Error::msg)?;
    let lines: Arc<Mutex<Vec<TailLine>>> = Arc::default();
    let got = lines.clone();
    let report = with_sessions(&f, move |stop| {
        tail_all(&opts, MergeOptions::default(), stop, |l| {
            got.lock().unwrap().push(l.clone());
            Ok(())
        })
    })?;
    ensure!(report.all_ok(), "{report:?}");
    ensure!(proxy.cut.load(Ordering::SeqCst) >= 1, "no cut happened");
    let a = report.relays.iter().find(|s| s.name == NAMES[0]).unwrap();
    ensure!(a.reconnects >= 1, "{a:?}");
    let lines = lines.lock().unwrap().clone();
    for (name, relay) in NAMES.iter().zip(&f.relays) {
        let mine = packets_printed(&lines, name);
        let want = packets_on_disk(&relay.out)?;
        ensure!(
            mine == want,
            "{name}: {} printed, {} on the relay",
            mine.len(),
            want.len()
        );
    }
    Ok(())
}

/// The mirror's connection to one relay is cut in the middle: it reconnects and the mirror still
/// holds each packet once (and the metadata whole: babeltrace2 reads it like the relay's copy).
#[test]
fn live_mirror_reconnects_after_cuts_without_duplicates() -> Result<()> {
    use trelay_integration::proxy::Proxy;
    let f = fleet("trelay-mr-")?;
    let mirror = f._tmp.path().join("mirror");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let target = format!("127.0.0.1:{}", f.relays[1].ports.live).parse()?;
    let proxy = rt.block_on(Proxy::start(target, vec![900]))?;
    let mut opts = options(&f, &mirror, None)?;
    opts.relays[1] = format!("{}=net://{}", NAMES[1], proxy.addr)
        .parse()
        .map_err(anyhow::Error::msg)?;
    let report = with_sessions(&f, move |stop| mirror_all(&opts, stop, |_, _| Ok(())))?;
    ensure!(report.all_ok(), "{report:?}");
    ensure!(proxy.cut.load(Ordering::SeqCst) >= 1, "no cut happened");
    let relay = &f.relays[1];
    ensure!(packets_on_disk(&mirror.join(NAMES[1]))? == packets_on_disk(&relay.out)?);
    let outs: Vec<&Path> = f.relays.iter().map(|r| r.out.as_path()).collect();
    ensure!(babeltrace_all(&outs)? == babeltrace_all(&[mirror.as_path()])?);
    Ok(())
}
