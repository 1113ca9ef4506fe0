//! Relays as subprocesses: trelayd (the binary built in this package) and the reference
//! lttng-relayd, on free ports.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Ports a relay listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    /// Control.
    pub control: u16,
    /// Data.
    pub data: u16,
    /// Live.
    pub live: u16,
}

/// A running trelayd.
#[derive(Debug)]
pub struct Trelayd {
    child: Option<Child>,
    /// Its ports.
    pub ports: Ports,
    /// Its output root.
    pub out: PathBuf,
    /// Its operations (metrics and health) port, when started with `--metrics-addr`.
    pub metrics: Option<u16>,
    /// Its log file.
    pub log: PathBuf,
}

/// Path of the trelayd binary under test: `$TRELAYD_BIN` if set, else `trelayd-under-test`
/// (built by cargo in this package before its tests run) next to the test executable's `deps/`.
pub fn trelayd_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("TRELAYD_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    profile_dir.join("trelayd-under-test")
}

impl Trelayd {
    /// Starts trelayd writing into `dir/out` (log in `dir/trelayd.log`) on free loopback ports.
    pub fn start(dir: &Path, extra: &[&str]) -> Result<Trelayd> {
        let out = dir.join("out");
        Self::start_with_output(dir, &out, extra)
    }

    /// Starts trelayd with an explicit output root.
    pub fn start_with_output(dir: &Path, out: &Path, extra: &[&str]) -> Result<Trelayd> {
        Self::start_with_env(dir, out, extra, &[])
    }

    /// Starts trelayd with an explicit output root and extra environment variables.
    pub fn start_with_env(
        dir: &Path,
        out: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Trelayd> {
        Self::spawn(dir, out, extra, env, None)
    }

    /// Starts trelayd with its open-file limit (soft and hard `RLIMIT_NOFILE`) set to `nofile`
    /// before it runs (through util-linux `prlimit`, which execs it: the pid is trelayd's).
    pub fn start_with_fd_limit(
        dir: &Path,
        out: &Path,
        extra: &[&str],
        nofile: u64,
    ) -> Result<Trelayd> {
        Self::spawn(dir, out, extra, &[], Some(nofile))
    }

    fn spawn(
        dir: &Path,
        out: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
        nofile: Option<u64>,
    ) -> Result<Trelayd> {
        std::fs::create_dir_all(dir)?;
        let ports_file = dir.join("ports.json");
        let _ = std::fs::remove_file(&ports_file);
        let log = dir.join("trelayd.log");
        let logf = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        let mut cmd = match nofile {
            Some(n) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={n}:{n}"))
                    .arg("--")
                    .arg(trelayd_bin());
                c
            }
            None => Command::new(trelayd_bin()),
        };
        let child = cmd
            .args(["-v", "-o"])
            .arg(out)
            .args(
                [
                    ("-C", "tcp://127.0.0.1:0"),
                    ("-D", "tcp://127.0.0.1:0"),
                    ("-L", "tcp://127.0.0.1:0"),
                ]
                .into_iter()
                // A port given in `extra` replaces the free one.
                .filter(|(flag, _)| !extra.contains(flag))
                .flat_map(|(flag, url)| [flag, url]),
            )
            .arg("--ports-file")
            .arg(&ports_file)
            .args(extra)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(logf.try_clone()?)
            .stderr(logf)
            .spawn()
            .context("cannot start trelayd")?;
        let mut relay = Trelayd {
            child: Some(child),
            ports: Ports {
                control: 0,
                data: 0,
                live: 0,
            },
            out: out.to_path_buf(),
            metrics: None,
            log,
        };
        crate::wait_for(Duration::from_secs(30), "trelayd's ports file", || {
            ports_file.exists()
        })
        .with_context(|| relay.log_tail())?;
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&ports_file)?)?;
        let port = |k: &str| {
            v[k].as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or(0)
        };
        relay.ports = Ports {
            control: port("control"),
            data: port("data"),
            live: port("live"),
        };
        relay.metrics = Some(port("metrics")).filter(|p| *p != 0);
        if relay.ports.control == 0 {
            bail!("bad ports file: {v}");
        }
        Ok(relay)
    }

    /// Its process id (while running).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The last lines of the log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// The relay's Prometheus exposition (empty when it cannot be scraped).
    pub fn metrics_text(&self) -> String {
        self.metrics.map(scrape).unwrap_or_default()
    }

    /// The value of the unlabelled series `name` in the exposition (0 when absent).
    pub fn metric(&self, name: &str) -> f64 {
        metric_value(&self.metrics_text(), name).unwrap_or(0.0)
    }

    /// The whole log.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM and wait; returns the exit status code.
    pub fn stop(&mut self) -> Result<i32> {
        let Some(mut child) = self.child.take() else {
            bail!("not running")
        };
        signal(&child, nix::sys::signal::Signal::SIGTERM)?;
        let status = wait_timeout(&mut child, Duration::from_secs(60))?;
        Ok(status.code().unwrap_or(-1))
    }

    /// SIGTERM and wait; fails with the log's last lines unless it exited with status 0.
    pub fn stop_ok(&mut self) -> Result<()> {
        let code = self.stop()?;
        if code != 0 {
            bail!("trelayd exited with {code}\n{}", self.log_tail());
        }
        Ok(())
    }

    /// SIGKILL and reap.
    pub fn kill9(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }
}

impl Drop for Trelayd {
    fn drop(&mut self) {
        reap(self.child.take());
    }
}

/// Kills and reaps `child` if there is one (best effort: it may have exited already).
pub(crate) fn reap(child: Option<Child>) {
    if let Some(mut c) = child {
        let _ = c.kill();
        let _ = c.wait();
    }
}

pub(crate) fn signal(child: &Child, sig: nix::sys::signal::Signal) -> Result<()> {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id())?);
    nix::sys::signal::kill(pid, sig)?;
    Ok(())
}

pub(crate) fn wait_timeout(
    child: &mut Child,
    timeout: Duration,
) -> Result<std::process::ExitStatus> {
    let start = std::time::Instant::now();
    loop {
        if let Some(s) = child.try_wait()? {
            return Ok(s);
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            bail!("process did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running lttng-relayd (the reference).
#[derive(Debug)]
pub struct LttngRelayd {
    child: Option<Child>,
    /// Its ports.
    pub ports: Ports,
    /// Its output root.
    pub out: PathBuf,
}

impl LttngRelayd {
    /// Starts lttng-relayd on the given loopback ports writing into `out`.
    pub fn start(out: &Path, ports: Ports, extra: &[&str]) -> Result<LttngRelayd> {
        Self::start_bin(Path::new("lttng-relayd"), out, ports, extra)
    }

    /// Starts the lttng-relayd binary `bin` (e.g. the 2.15 bundle's) like [`LttngRelayd::start`].
    pub fn start_bin(bin: &Path, out: &Path, ports: Ports, extra: &[&str]) -> Result<LttngRelayd> {
        let url = |p: u16| format!("tcp://127.0.0.1:{p}");
        let child = Command::new(bin)
            .arg("-o")
            .arg(out)
            .args([
                "-C",
                &url(ports.control),
                "-D",
                &url(ports.data),
                "-L",
                &url(ports.live),
            ])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        crate::wait_for(
            Duration::from_secs(20),
            "lttng-relayd's control port",
            || std::net::TcpStream::connect(("127.0.0.1", ports.control)).is_ok(),
        )?;
        Ok(LttngRelayd {
            child: Some(child),
            ports,
            out: out.to_path_buf(),
        })
    }

    /// SIGTERM and wait.
    pub fn stop(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            signal(&child, nix::sys::signal::Signal::SIGTERM)?;
            wait_timeout(&mut child, Duration::from_secs(30))?;
        }
        Ok(())
    }
}

impl Drop for LttngRelayd {
    fn drop(&mut self) {
        reap(self.child.take());
    }
}

/// Free loopback TCP ports (bound then released: a small race is possible, ports are random).
pub fn free_ports() -> Result<Ports> {
    let a = std::net::TcpListener::bind("127.0.0.1:0")?;
    let b = std::net::TcpListener::bind("127.0.0.1:0")?;
    let c = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(Ports {
        control: a.local_addr()?.port(),
        data: b.local_addr()?.port(),
        live: c.local_addr()?.port(),
    })
}

/// The reference lttng-relayd writing into `dir/ref` (with `reference_extra`) and trelayd in
/// `dir/trelayd` (with `ours_extra`), side by side on free ports.
pub fn start_both(
    dir: &Path,
    reference_extra: &[&str],
    ours_extra: &[&str],
) -> Result<(LttngRelayd, Trelayd)> {
    start_both_with(Path::new("lttng-relayd"), dir, reference_extra, ours_extra)
}

/// [`start_both`] with the reference relay's binary `reference_bin`.
pub fn start_both_with(
    reference_bin: &Path,
    dir: &Path,
    reference_extra: &[&str],
    ours_extra: &[&str],
) -> Result<(LttngRelayd, Trelayd)> {
    let reference = LttngRelayd::start_bin(
        reference_bin,
        &dir.join("ref"),
        free_ports()?,
        reference_extra,
    )?;
    let ours = Trelayd::start(&dir.join("trelayd"), ours_extra)?;
    Ok((reference, ours))
}

/// The Prometheus exposition served on the operations port `port` of this machine (empty when
/// it cannot be scraped).
pub fn scrape(port: u16) -> String {
    ureq::get(&format!("http://127.0.0.1:{port}/metrics"))
        .call()
        .ok()
        .and_then(|r| r.into_string().ok())
        .unwrap_or_default()
}

/// The value of the first series of family `name` in an exposition `text`.
pub fn metric_value(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.split([' ', '{']).next() == Some(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}
