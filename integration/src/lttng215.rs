//! Driving the real LTTng 2.15 tools of the bundle beside the project
//! (`../shared/peers/lttng-2.15`: lttng-tools 2.15.1, lttng-ust 2.15.1, babeltrace2 2.1.2).
//!
//! Each [`Sessiond215`] is a private 2.15 `lttng-sessiond` (a child of the test, never
//! daemonized) with its own `LTTNG_HOME`, `LTTNG_RUNDIR`, `LTTNG_UST_CTL_PATH` and
//! `LTTNG_UST_APP_PATH`, so it never meets Debian's 2.13 session daemon, its apps or another
//! test's 2.15 daemon; its `lttng` commands and traced apps ([`Workload215`], run with the
//! bundle's libc wrapper preloaded) get the same environment. It holds the machine-wide lock of
//! the LTTng tests (`/tmp/trelay-integration-lttng.lock`, as [`crate::lttng::sessiond`] does)
//! unless started beside a held [`crate::lttng::SessiondGuard`], and is stopped and reaped when
//! dropped, before the lock is released (a 2.15 daemon is also named `lttng-sessiond`, which
//! would fool the 2.13 helper's `pgrep`).
//!
//! The bundle is part of the test environment: when it is missing, [`bundle`] fails with the
//! path it looked at (set `TRELAY_LTTNG215` to use another copy).

use crate::lttng::SessiondGuard;
use anyhow::{bail, Context, Result};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// The LTTng 2.15 bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Its folder (holds `bin/`, `lib/`, `env.sh`).
    pub prefix: PathBuf,
}

/// Finds the bundle: `$TRELAY_LTTNG215` if set, else `shared/peers/lttng-2.15` beside the
/// project folder. Fails, naming the path, if it is not there.
pub fn bundle() -> Result<Bundle> {
    let p = std::env::var_os("TRELAY_LTTNG215")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/peers/lttng-2.15")
        });
    let prefix = p
        .canonicalize()
        .with_context(|| format!("the LTTng 2.15 bundle is missing at {}", p.display()))?;
    for f in [
        "bin/lttng",
        "bin/lttng-sessiond",
        "bin/babeltrace2",
        "bin/lttng-relayd",
    ] {
        if !prefix.join(f).is_file() {
            bail!("the LTTng 2.15 bundle at {} has no {f}", prefix.display());
        }
    }
    Ok(Bundle { prefix })
}

impl Bundle {
    /// `bin/NAME`.
    pub fn bin(&self, name: &str) -> PathBuf {
        self.prefix.join("bin").join(name)
    }

    /// The UST libc wrapper (`LD_PRELOAD` it to record malloc/free events).
    pub fn libc_wrapper(&self) -> PathBuf {
        self.prefix.join("lib/liblttng-ust-libc-wrapper.so.1")
    }

    /// babeltrace2 2.1 `ARGS` (in UTC); fails with its stderr if it fails.
    pub fn babeltrace2(&self, args: &[&str]) -> Result<String> {
        let out = Command::new(self.bin("babeltrace2"))
            .args(args)
            .env("TZ", "UTC")
            .output()
            .context("the bundle's babeltrace2 is not runnable")?;
        if !out.status.success() {
            bail!(
                "babeltrace2 2.1 {} failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// babeltrace2 2.1 on a trace folder: its event lines.
    pub fn read_trace(&self, path: &Path) -> Result<String> {
        self.babeltrace2(&[path.to_str().context("non-UTF-8 trace path")?])
    }

    /// A babeltrace2 2.1 command (for live reading in the background).
    pub fn babeltrace2_command(&self) -> Command {
        let mut c = Command::new(self.bin("babeltrace2"));
        c.env("TZ", "UTC");
        c
    }
}

/// The machine-wide lock of the tests driving a session daemon.
#[derive(Debug)]
enum Lock {
    Own(#[allow(dead_code)] File),
    Borrowed,
}

/// A private LTTng 2.15 session daemon.
#[derive(Debug)]
pub struct Sessiond215 {
    /// The bundle it runs from.
    pub bundle: Bundle,
    /// Its folder (`home/`, `run/`, `sessiond.log`).
    pub dir: PathBuf,
    child: Option<Child>,
    _lock: Lock,
}

impl Sessiond215 {
    /// Takes the machine-wide lock, then starts a 2.15 session daemon in `dir` with its
    /// defaults (CTF 2 sessions) and `args` added (e.g. `--default-trace-format=ctf-1.8`).
    pub fn start(dir: &Path, args: &[&str]) -> Result<Sessiond215> {
        let file = File::create("/tmp/trelay-integration-lttng.lock")?;
        fs2::FileExt::lock_exclusive(&file)?;
        Self::start_with(dir, args, Lock::Own(file))
    }

    /// Starts one beside Debian's 2.13 daemon, whose guard (and so the lock) the test holds.
    pub fn start_beside(dir: &Path, args: &[&str], _held: &SessiondGuard) -> Result<Sessiond215> {
        Self::start_with(dir, args, Lock::Borrowed)
    }

    fn start_with(dir: &Path, args: &[&str], lock: Lock) -> Result<Sessiond215> {
        let bundle = bundle()?;
        let dir = dir.to_path_buf();
        for d in ["home", "run"] {
            std::fs::create_dir_all(dir.join(d))?;
        }
        let log = File::create(dir.join("sessiond.log"))?;
        let mut cmd = Command::new(bundle.bin("lttng-sessiond"));
        cmd.args(["--no-kernel"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let mut s = Sessiond215 {
            bundle,
            dir,
            child: None,
            _lock: lock,
        };
        s.apply_env(&mut cmd);
        s.child = Some(
            cmd.spawn()
                .context("cannot start the 2.15 lttng-sessiond")?,
        );
        let ready = crate::wait_for(
            Duration::from_secs(30),
            "the 2.15 sessiond to answer",
            || {
                s.run(&["list"])
                    .map(|o| o.status.success())
                    .unwrap_or(false)
            },
        );
        if let Err(e) = ready {
            bail!("{e}: {}", s.log_tail());
        }
        Ok(s)
    }

    /// `LTTNG_HOME` of this daemon.
    pub fn home(&self) -> PathBuf {
        self.dir.join("home")
    }

    /// `LTTNG_RUNDIR`, `LTTNG_UST_CTL_PATH` and `LTTNG_UST_APP_PATH` of this daemon.
    pub fn rundir(&self) -> PathBuf {
        self.dir.join("run")
    }

    /// Gives `cmd` this daemon's environment (for `lttng` and for traced apps).
    pub fn apply_env(&self, cmd: &mut Command) {
        let run = self.rundir();
        cmd.env("LTTNG_HOME", self.home())
            .env("LTTNG_RUNDIR", &run)
            .env("LTTNG_UST_CTL_PATH", &run)
            .env("LTTNG_UST_APP_PATH", &run)
            .env_remove("LTTNG_SESSIOND_PATH");
    }

    fn run(&self, args: &[&str]) -> Result<Output> {
        let mut cmd = Command::new(self.bundle.bin("lttng"));
        cmd.args(args).stdin(Stdio::null());
        self.apply_env(&mut cmd);
        cmd.output().context("the bundle's lttng is not runnable")
    }

    /// Runs the 2.15 `lttng ARGS` against this daemon; fails with its output if it fails.
    pub fn lttng(&self, args: &[&str]) -> Result<String> {
        let out = self.run(args)?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if !out.status.success() {
            bail!("lttng 2.15 {} failed: {text}", args.join(" "));
        }
        Ok(text)
    }

    /// Runs `lttng ARGS` and returns whether it succeeded and its output (for refusals).
    pub fn lttng_status(&self, args: &[&str]) -> Result<(bool, String)> {
        let out = self.run(args)?;
        Ok((
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        ))
    }

    /// `lttng create NAME --set-url=net://127.0.0.1:CONTROL:DATA` with `extra` options (e.g.
    /// `--live=200000`, `--trace-format=ctf-1.8`); the session is destroyed when the guard drops.
    pub fn create_net(
        &self,
        name: &str,
        control: u16,
        data: u16,
        extra: &[&str],
    ) -> Result<Session215<'_>> {
        let url = format!("--set-url=net://127.0.0.1:{control}:{data}");
        let mut args = vec!["create", name, url.as_str()];
        args.extend_from_slice(extra);
        self.lttng(&args)?;
        Ok(Session215 {
            sessiond: self,
            name: name.to_owned(),
        })
    }

    /// A program to trace under this daemon, named `name` (its procname, at most 15 bytes),
    /// linked to `target` in `dir/bin`.
    pub fn workload(&self, dir: &Path, name: &str, target: &str) -> Result<Workload215<'_>> {
        Ok(Workload215 {
            sessiond: self,
            inner: crate::lttng::Workload::new(&dir.join("bin"), name, target)?,
        })
    }

    /// The Python interpreter as a workload named `name`.
    pub fn python(&self, dir: &Path, name: &str) -> Result<Workload215<'_>> {
        self.workload(dir, name, crate::lttng::python())
    }

    /// The last lines of the daemon's log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("sessiond.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Stops the daemon (SIGTERM, then SIGKILL after 20 s) and reaps it.
    pub fn stop(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            crate::relay::signal(&child, nix::sys::signal::Signal::SIGTERM)?;
            crate::relay::wait_timeout(&mut child, Duration::from_secs(20))?;
        }
        Ok(())
    }
}

impl Drop for Sessiond215 {
    fn drop(&mut self) {
        if self.stop().is_err() {
            crate::relay::reap(self.child.take());
        }
    }
}

/// A session of a [`Sessiond215`], destroyed (best effort) when dropped.
#[derive(Debug)]
pub struct Session215<'a> {
    sessiond: &'a Sessiond215,
    /// Its name.
    pub name: String,
}

impl Session215<'_> {
    /// `lttng enable-event -u EVENT -s NAME` (with `--filter` when `filter` is given).
    pub fn enable_ust(&self, event: &str, filter: Option<&str>) -> Result<()> {
        let mut args = vec!["enable-event", "-u", event, "-s", self.name.as_str()];
        if let Some(f) = filter {
            args.extend_from_slice(&["--filter", f]);
        }
        self.sessiond.lttng(&args).map(|_| ())
    }

    /// `lttng start NAME`.
    pub fn start(&self) -> Result<()> {
        self.sessiond.lttng(&["start", &self.name]).map(|_| ())
    }

    /// `lttng stop NAME` (waits for the data to be flushed to the relay).
    pub fn stop(&self) -> Result<()> {
        self.sessiond.lttng(&["stop", &self.name]).map(|_| ())
    }

    /// `lttng list NAME`.
    pub fn list(&self) -> Result<String> {
        self.sessiond.lttng(&["list", &self.name])
    }

    /// `lttng destroy NAME`.
    pub fn destroy(self) -> Result<()> {
        let r = self.sessiond.lttng(&["destroy", &self.name]).map(|_| ());
        std::mem::forget(self);
        r
    }
}

impl Drop for Session215<'_> {
    fn drop(&mut self) {
        let _ = self.sessiond.run(&["destroy", &self.name]);
    }
}

/// A program traced by a [`Sessiond215`]: run with the bundle's libc wrapper preloaded and the
/// daemon's environment, its output discarded.
#[derive(Debug)]
pub struct Workload215<'a> {
    sessiond: &'a Sessiond215,
    inner: crate::lttng::Workload,
}

impl Workload215<'_> {
    /// The UST filter that keeps only this workload's events.
    pub fn filter(&self) -> String {
        self.inner.filter()
    }

    /// Its process name.
    pub fn procname(&self) -> &str {
        &self.inner.procname
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.inner.path);
        cmd.args(args)
            .env("LD_PRELOAD", self.sessiond.bundle.libc_wrapper())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.sessiond.apply_env(&mut cmd);
        cmd
    }

    /// Runs it and waits; fails if it fails.
    pub fn run(&self, args: &[&str]) -> Result<()> {
        let st = self
            .command(args)
            .status()
            .with_context(|| format!("cannot run {}", self.inner.path.display()))?;
        if !st.success() {
            bail!("{} exited with {st}", self.inner.path.display());
        }
        Ok(())
    }

    /// Starts it without waiting.
    pub fn spawn(&self, args: &[&str]) -> Result<Child> {
        self.command(args)
            .spawn()
            .with_context(|| format!("cannot run {}", self.inner.path.display()))
    }
}

/// A running lttng-relayd 2.15 of the bundle, on free loopback ports.
#[derive(Debug)]
pub struct LttngRelayd215 {
    child: Option<Child>,
    /// Its ports.
    pub ports: crate::relay::Ports,
    /// Its output root.
    pub out: PathBuf,
}

impl LttngRelayd215 {
    /// Starts the bundle's lttng-relayd writing into `out` (log in `log`) with `extra` options.
    pub fn start(out: &Path, log: &Path, extra: &[&str]) -> Result<LttngRelayd215> {
        let bundle = bundle()?;
        let ports = crate::relay::free_ports()?;
        let url = |p: u16| format!("tcp://127.0.0.1:{p}");
        let logf = File::create(log)?;
        let child = Command::new(bundle.bin("lttng-relayd"))
            .arg("-o")
            .arg(out)
            .args(["-C", &url(ports.control), "-D", &url(ports.data)])
            .args(["-L", &url(ports.live)])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(logf.try_clone()?)
            .stderr(logf)
            .spawn()
            .context("cannot start lttng-relayd 2.15")?;
        let mut r = LttngRelayd215 {
            child: Some(child),
            ports,
            out: out.to_path_buf(),
        };
        crate::wait_for(
            Duration::from_secs(20),
            "lttng-relayd 2.15's control port",
            || std::net::TcpStream::connect(("127.0.0.1", ports.control)).is_ok(),
        )?;
        if let Some(c) = r.child.as_mut() {
            if let Some(st) = c.try_wait()? {
                bail!("lttng-relayd 2.15 exited at start: {st}");
            }
        }
        Ok(r)
    }

    /// SIGTERM and wait.
    pub fn stop(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            crate::relay::signal(&child, nix::sys::signal::Signal::SIGTERM)?;
            crate::relay::wait_timeout(&mut child, Duration::from_secs(30))?;
        }
        Ok(())
    }
}

impl Drop for LttngRelayd215 {
    fn drop(&mut self) {
        crate::relay::reap(self.child.take());
    }
}
