//! Differential scenarios: the same traced workload recorded by two sessions of the real
//! lttng-sessiond at once, one streaming to lttng-relayd (the reference), one to trelayd; then
//! babeltrace2 must read the same events from both outputs.

use crate::lttng::{lttng, sessiond, SessionGuard, Workload};
use crate::relay::{start_both, Ports};
use crate::session::{add_vpid_procname, create_streaming, enable_event, large_allocs};
use anyhow::{ensure, Context, Result};
use std::path::{Path, PathBuf};

/// One channel of the sessions.
#[derive(Debug, Clone)]
pub struct Channel {
    /// Channel name.
    pub name: &'static str,
    /// Event rule (`lttng enable-event -u` pattern).
    pub events: &'static str,
    /// Extra `enable-channel` options.
    pub options: Vec<String>,
}

impl Channel {
    /// A channel recording `events` with 4 × 1 MiB sub-buffers (large enough that the workloads
    /// never discard events, which would differ between the two sessions).
    pub fn new(name: &'static str, events: &'static str) -> Self {
        Channel {
            name,
            events,
            options: vec!["--subbuf-size=1M".into(), "--num-subbuf=4".into()],
        }
    }
}

/// What to do while the sessions are active.
#[derive(Debug, Clone)]
pub enum Step {
    /// Run the workload in `procs` processes one after the other, each allocating `allocs`
    /// buffers with malloc and as many with calloc (all ≥ 100000 bytes, the recorded events).
    Run(u32, u32),
    /// `lttng rotate` both sessions.
    Rotate,
    /// `lttng clear` both sessions.
    Clear,
    /// `lttng snapshot record` both sessions.
    Snapshot,
    /// `lttng stop` both sessions.
    Stop,
    /// `lttng start` both sessions.
    Start,
    /// Wait this many milliseconds.
    Sleep(u64),
    /// `lttng regenerate metadata` both sessions (RESET_METADATA on the wire).
    RegenerateMetadata,
}

/// A scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Test name (used in session names, at most 6 bytes).
    pub name: &'static str,
    /// Live timer in µs, if live.
    pub live: Option<u32>,
    /// Per-PID buffers instead of per-UID.
    pub per_pid: bool,
    /// Snapshot session.
    pub snapshot: bool,
    /// Channels.
    pub channels: Vec<Channel>,
    /// Steps between start and destroy.
    pub steps: Vec<Step>,
    /// Extra relay flags (both relays).
    pub relay_args: Vec<&'static str>,
    /// Extra trelayd flags.
    pub trelayd_args: Vec<&'static str>,
    /// Sessions per relay.
    pub sessions: u32,
    /// Idle connections opened against trelayd (over its three ports, from 127.0.0.10 to
    /// 127.0.0.15) before the sessions start, held until they are destroyed.
    pub idle_connections: usize,
    /// Once the sessions are destroyed, trelayd keeps running until this holds for its output
    /// root (checked for up to 60 s; e.g. its forwarding is done).
    pub settle: Option<fn(&Path) -> bool>,
}

impl Scenario {
    /// A non-live per-UID scenario with one channel recording every libc event of `ls` runs.
    pub fn new(name: &'static str) -> Self {
        Scenario {
            name,
            live: None,
            per_pid: false,
            snapshot: false,
            channels: vec![Channel::new("chan", "lttng_ust_libc:*")],
            steps: vec![Step::Run(2, 300)],
            relay_args: vec![],
            trelayd_args: vec![],
            sessions: 1,
            idle_connections: 0,
            settle: None,
        }
    }
}

/// The traced program: waits for its tracing registration to settle in every session (events
/// of the first instants would reach the sessions unevenly), then allocates.
pub const WORKLOAD: &str = "import sys, time\ntime.sleep(0.4)\nn = int(sys.argv[1])\n\
keep = [bytearray(100000 + i) for i in range(n)]\nkeep += [bytes(100000 + i) for i in range(n)]\n";

/// What a finished scenario left behind.
#[derive(Debug)]
pub struct Outcome {
    /// lttng-relayd's output root.
    pub reference: PathBuf,
    /// trelayd's output root.
    pub ours: PathBuf,
    /// Normalized events (both equal).
    pub events: Vec<String>,
    /// trelayd's log.
    pub log: String,
    /// Of the idle connections, how many trelayd had closed, per port (control, data, live).
    pub idle_closed: [usize; 3],
    _tmp: tempfile::TempDir,
}

/// Runs a scenario and checks that both relays' outputs read the same (non-empty) events.
pub fn run(sc: &Scenario) -> Result<Outcome> {
    let _lock = sessiond()?;
    let tmp = tempfile::Builder::new().prefix("trelay-it-").tempdir()?;
    let mut args = sc.relay_args.clone();
    args.extend(sc.trelayd_args.iter().copied());
    let (mut reference, mut ours) = start_both(tmp.path(), &sc.relay_args, &args)?;
    let ref_out = reference.out.clone();
    let idle_ports = [ours.ports.control, ours.ports.data, ours.ports.live];
    let mut idle = crate::peers::IdleFlood::open(
        &idle_ports,
        &[
            "127.0.0.10",
            "127.0.0.11",
            "127.0.0.12",
            "127.0.0.13",
            "127.0.0.14",
            "127.0.0.15",
        ],
        sc.idle_connections,
    )?;
    let tag = crate::unique(sc.name);
    let work = Workload::python(tmp.path(), &tag)?;
    let mut guards = Vec::new();
    let mut names = Vec::new();
    for i in 0..sc.sessions {
        for (side, ports) in [("r", reference.ports), ("t", ours.ports)] {
            let name = format!("{tag}{side}{i}");
            let guard = create(sc, &name, &ports, &work)
                .with_context(|| format!("setting up session {name}\n{}", ours.log_tail()))?;
            guards.push(guard);
            names.push(name);
        }
    }
    for step in &sc.steps {
        match step {
            Step::Run(procs, allocs) => {
                for _ in 0..*procs {
                    work.run(&["-c", WORKLOAD, &allocs.to_string()])?;
                }
            }
            Step::Sleep(ms) => std::thread::sleep(std::time::Duration::from_millis(*ms)),
            other => {
                for name in &names {
                    let r = match other {
                        Step::Rotate => lttng(&["rotate", name]),
                        Step::Clear => lttng(&["clear", name]),
                        Step::Snapshot => lttng(&["snapshot", "record", "-s", name]),
                        Step::Stop => lttng(&["stop", name]),
                        Step::Start => lttng(&["start", name]),
                        Step::RegenerateMetadata => lttng(&["regenerate", "metadata", "-s", name]),
                        _ => Ok(String::new()),
                    };
                    r.with_context(|| format!("{other:?} on {name}\n{}", ours.log_tail()))?;
                }
            }
        }
    }
    for name in &names {
        let _ = lttng(&["stop", name]);
        lttng(&["destroy", name])
            .with_context(|| format!("destroy {name}\n{}", ours.log_tail()))?;
    }
    drop(guards);
    if let Some(done) = sc.settle {
        crate::wait_for(
            std::time::Duration::from_secs(60),
            "trelayd to settle",
            || done(&ours.out),
        )
        .with_context(|| ours.log_tail())?;
    }
    let idle_closed = idle_ports.map(|p| idle.closed_on(p));
    drop(idle);
    reference.stop()?;
    ours.stop_ok()?;
    let want = crate::normalized_events(&ref_out)?;
    let got = crate::normalized_events(&ours.out)
        .with_context(|| format!("babeltrace2 on trelayd's output\n{}", ours.log_tail()))?;
    ensure!(!want.is_empty(), "the reference recorded no event");
    if want != got {
        let a: std::collections::BTreeSet<_> = want.iter().collect();
        let b: std::collections::BTreeSet<_> = got.iter().collect();
        let missing: Vec<_> = a.difference(&b).take(3).collect();
        let extra: Vec<_> = b.difference(&a).take(3).collect();
        anyhow::bail!(
            "lttng-relayd's output has {} events, trelayd's {}; missing {missing:?} extra {extra:?}\n{}",
            want.len(),
            got.len(),
            ours.log_tail()
        );
    }
    let (tree_ref, tree_ours) = (shape(&ref_out, &tag), shape(&ours.out, &tag));
    ensure!(
        tree_ref == tree_ours,
        "output trees differ:\nlttng-relayd: {tree_ref:#?}\ntrelayd: {tree_ours:#?}"
    );
    let log = ours.log_text();
    ensure!(
        !log.contains(" ERROR "),
        "trelayd logged errors:\n{}",
        ours.log_tail()
    );
    Ok(Outcome {
        reference: ref_out,
        ours: ours.out.clone(),
        events: got,
        log,
        idle_closed,
        _tmp: tmp,
    })
}

fn create(sc: &Scenario, name: &str, ports: &Ports, work: &Workload) -> Result<SessionGuard> {
    let mut extra = Vec::new();
    let live;
    if let Some(us) = sc.live {
        live = format!("--live={us}");
        extra.push(live.as_str());
    }
    if sc.snapshot {
        extra.push("--snapshot");
    }
    let guard = create_streaming(name, ports, &extra)?;
    let filter = large_allocs(work);
    for ch in &sc.channels {
        let mut enable = vec!["enable-channel", "-u", "-s", name, ch.name];
        if sc.per_pid {
            enable.push("--buffers-pid");
        }
        if sc.snapshot {
            enable.push("--overwrite");
        }
        enable.extend(ch.options.iter().map(String::as_str));
        lttng(&enable)?;
        enable_event(name, Some(ch.name), ch.events, &filter)?;
        add_vpid_procname(name, Some(ch.name))?;
    }
    lttng(&["start", name])?;
    Ok(guard)
}

/// Directories named like `pattern` (by `contains`) anywhere under `root`.
pub fn dirs_named(root: &Path, pattern: &str) -> Vec<PathBuf> {
    crate::files_under(root)
        .into_iter()
        .filter_map(|f| {
            let s = f.to_string_lossy().into_owned();
            s.find(pattern)
                .map(|i| PathBuf::from(&s[..i + pattern.len()]))
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The relative paths of every file under `root`, with the session names made equal and every
/// run of digits (dates, pids, chunk ids) replaced by `N`: the shape two relays must agree on.
pub fn shape(root: &Path, tag: &str) -> std::collections::BTreeSet<String> {
    crate::files_under(root)
        .into_iter()
        .map(|p| {
            let s = p
                .to_string_lossy()
                .replace(&format!("{tag}r"), "S")
                .replace(&format!("{tag}t"), "S");
            let mut out = String::new();
            let mut in_digits = false;
            for c in s.chars() {
                if c.is_ascii_digit() {
                    if !in_digits {
                        out.push('N');
                    }
                    in_digits = true;
                } else {
                    in_digits = false;
                    out.push(c);
                }
            }
            out
        })
        .collect()
}
