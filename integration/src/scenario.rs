//! Differential scenarios: the same traced workload recorded by two sessions of the real
//! lttng-sessiond at once, one streaming to lttng-relayd (the reference), one to trelayd; then
//! babeltrace2 must read the same events from both outputs. With [`Tools::Lttng215`] the
//! recording is done by a private LTTng 2.15 session daemon (CTF 2 or CTF 1.8), the reference is
//! the 2.15 bundle's lttng-relayd and the reader babeltrace2 2.1; live scenarios can also have
//! babeltrace2 follow both relays live ([`Scenario::live_viewers`]).

use crate::live_viewer::{hostname, LiveBabeltrace};
use crate::lttng::{lttng, sessiond, SessionGuard, Workload};
use crate::lttng215::{bundle, Sessiond215};
use crate::relay::{start_both_with, Ports};
use crate::session::large_allocs;
use anyhow::{ensure, Context, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Which LTTng records a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tools {
    /// Debian's LTTng 2.13: its session daemon, its lttng-relayd as the reference, babeltrace2
    /// 2.0 reading.
    Debian,
    /// The LTTng 2.15.1 bundle: a private session daemon, the bundle's lttng-relayd as the
    /// reference, babeltrace2 2.1 reading; sessions created with `--trace-format=FORMAT`
    /// (`ctf-2`, `ctf-1.8`).
    Lttng215(&'static str),
}

/// The session daemon a scenario drives.
enum Tracer {
    Debian,
    Bundle(Sessiond215),
}

impl Tracer {
    fn lttng(&self, args: &[&str]) -> Result<String> {
        match self {
            Tracer::Debian => lttng(args),
            Tracer::Bundle(sd) => sd.lttng(args),
        }
    }

    fn run(&self, work: &Workload, args: &[&str]) -> Result<()> {
        match self {
            Tracer::Debian => work.run(args),
            Tracer::Bundle(sd) => {
                let mut cmd = std::process::Command::new(&work.path);
                cmd.args(args)
                    .env("LD_PRELOAD", sd.bundle.libc_wrapper())
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null());
                sd.apply_env(&mut cmd);
                let st = cmd
                    .status()
                    .with_context(|| format!("cannot run {}", work.path.display()))?;
                ensure!(st.success(), "{} exited with {st}", work.path.display());
                Ok(())
            }
        }
    }

    fn babeltrace(&self) -> PathBuf {
        match self {
            Tracer::Debian => PathBuf::from("babeltrace2"),
            Tracer::Bundle(sd) => sd.bundle.bin("babeltrace2"),
        }
    }

    fn events(&self, path: &Path) -> Result<Vec<String>> {
        match self {
            Tracer::Debian => crate::normalized_events(path),
            Tracer::Bundle(sd) => Ok(crate::normalize(&sd.bundle.read_trace(path)?)),
        }
    }
}

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
    /// Which LTTng records.
    pub tools: Tools,
    /// Live scenarios: babeltrace2 follows every session live on both relays; what it prints
    /// must be the same on both and equal what it reads afterwards from the outputs.
    pub live_viewers: bool,
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
            tools: Tools::Debian,
            live_viewers: false,
        }
    }

    /// [`Scenario::new`] recorded by LTTng 2.15 in trace format `format` (`ctf-2`, `ctf-1.8`).
    pub fn lttng215(name: &'static str, format: &'static str) -> Self {
        Scenario {
            tools: Tools::Lttng215(format),
            ..Scenario::new(name)
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
    /// With [`Scenario::live_viewers`]: the normalized events babeltrace2 printed live from
    /// trelayd (equal to lttng-relayd's).
    pub live_events: Vec<String>,
    _tmp: tempfile::TempDir,
}

/// Runs a scenario and checks that both relays' outputs read the same (non-empty) events.
pub fn run(sc: &Scenario) -> Result<Outcome> {
    let tmp = tempfile::Builder::new().prefix("trelay-it-").tempdir()?;
    // The 2.15 daemon holds the machine-wide lock itself.
    let (_lock, tracer, reference_bin) = match sc.tools {
        Tools::Debian => (
            Some(sessiond()?),
            Tracer::Debian,
            PathBuf::from("lttng-relayd"),
        ),
        Tools::Lttng215(_) => {
            let sd = Sessiond215::start(&tmp.path().join("sessiond"), &[])?;
            (None, Tracer::Bundle(sd), bundle()?.bin("lttng-relayd"))
        }
    };
    let mut args = sc.relay_args.clone();
    args.extend(sc.trelayd_args.iter().copied());
    let (mut reference, mut ours) =
        start_both_with(&reference_bin, tmp.path(), &sc.relay_args, &args)?;
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
            let guard = create(sc, &tracer, &name, &ports, &work)
                .with_context(|| format!("setting up session {name}\n{}", ours.log_tail()))?;
            guards.extend(guard);
            names.push((name, ports));
        }
    }
    let mut viewers = Vec::new();
    if sc.live_viewers {
        let bt = tracer.babeltrace();
        for (name, ports) in &names {
            wait_listed(&bt, ports.live, name)
                .with_context(|| format!("{name} never listed\n{}", ours.log_tail()))?;
            let v = LiveBabeltrace::start_bin(
                &bt,
                &tmp.path().join("live"),
                name,
                ports.live,
                &hostname(),
                name,
            )?;
            viewers.push(v);
        }
    }
    let names: Vec<String> = names.into_iter().map(|(n, _)| n).collect();
    for step in &sc.steps {
        match step {
            Step::Run(procs, allocs) => {
                for _ in 0..*procs {
                    tracer.run(&work, &["-c", WORKLOAD, &allocs.to_string()])?;
                }
            }
            Step::Sleep(ms) => std::thread::sleep(std::time::Duration::from_millis(*ms)),
            other => {
                for name in &names {
                    let lt = |a: &[&str]| tracer.lttng(a);
                    let r = match other {
                        Step::Rotate => lt(&["rotate", name]),
                        Step::Clear => lt(&["clear", name]),
                        Step::Snapshot => lt(&["snapshot", "record", "-s", name]),
                        Step::Stop => lt(&["stop", name]),
                        Step::Start => lt(&["start", name]),
                        Step::RegenerateMetadata => lt(&["regenerate", "metadata", "-s", name]),
                        _ => Ok(String::new()),
                    };
                    r.with_context(|| format!("{other:?} on {name}\n{}", ours.log_tail()))?;
                }
            }
        }
    }
    for name in &names {
        let _ = tracer.lttng(&["stop", name]);
        tracer
            .lttng(&["destroy", name])
            .with_context(|| format!("destroy {name}\n{}", ours.log_tail()))?;
    }
    drop(guards);
    // Live viewers end with their sessions; each pair (lttng-relayd, trelayd) printed the same.
    let mut live_events = Vec::new();
    for pair in viewers.chunks_mut(2) {
        let mut printed = Vec::new();
        for v in pair.iter_mut() {
            let text = v
                .wait(Duration::from_secs(90))
                .with_context(|| ours.log_tail())?;
            printed.push(crate::normalize(&text));
        }
        ensure!(
            printed.len() == 2 && printed[0] == printed[1],
            "babeltrace2 printed {} events live from lttng-relayd, {} from trelayd\n{}",
            printed[0].len(),
            printed.get(1).map_or(0, Vec::len),
            ours.log_tail()
        );
        live_events.extend(printed.pop().unwrap_or_default());
    }
    live_events.sort();
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
    let want = tracer.events(&ref_out)?;
    let got = tracer
        .events(&ours.out)
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
    if sc.live_viewers {
        ensure!(
            live_events == got,
            "babeltrace2 printed {} events live, read {} afterwards",
            live_events.len(),
            got.len()
        );
    }
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
        live_events,
        _tmp: tmp,
    })
}

/// Polls `bt --input-format=lttng-live net://127.0.0.1:PORT` (the session list) until it names
/// session `name`.
pub fn wait_listed(bt: &Path, port: u16, name: &str) -> Result<()> {
    let url = format!("net://127.0.0.1:{port}");
    let needle = format!("/{name} ");
    crate::wait_for(Duration::from_secs(30), &format!("{name} listed"), || {
        std::process::Command::new(bt)
            .args(["--input-format=lttng-live", &url])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(&needle))
    })
}

/// Creates and starts session `name` on `ports`; for Debian's session daemon, the guard destroys
/// it (a private 2.15 daemon takes its sessions with it when it stops).
fn create(
    sc: &Scenario,
    tracer: &Tracer,
    name: &str,
    ports: &Ports,
    work: &Workload,
) -> Result<Option<SessionGuard>> {
    let url = format!("--set-url=net://127.0.0.1:{}:{}", ports.control, ports.data);
    let mut args = vec!["create", name, &url];
    let live;
    if let Some(us) = sc.live {
        live = format!("--live={us}");
        args.push(live.as_str());
    }
    if sc.snapshot {
        args.push("--snapshot");
    }
    let format;
    if let Tools::Lttng215(f) = sc.tools {
        format = format!("--trace-format={f}");
        args.push(&format);
    }
    tracer.lttng(&args)?;
    let guard = matches!(tracer, Tracer::Debian).then(|| SessionGuard(name.to_owned()));
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
        tracer.lttng(&enable)?;
        tracer.lttng(&[
            "enable-event",
            "-u",
            "-s",
            name,
            "-c",
            ch.name,
            ch.events,
            "--filter",
            &filter,
        ])?;
        tracer.lttng(&[
            "add-context",
            "-u",
            "-s",
            name,
            "-c",
            ch.name,
            "-t",
            "vpid",
            "-t",
            "procname",
        ])?;
    }
    tracer.lttng(&["start", name])?;
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
