//! A private LTTng 2.15 session daemon from the prebuilt 2.15.1 bundle (`shared/peers/lttng-2.15`
//! beside the project, or `$TRELAY_LTTNG215`): its own `LTTNG_HOME`, `LTTNG_RUNDIR` and UST
//! socket folders in a temporary folder, so it runs beside Debian's 2.13 session daemon; the
//! `lttng` CLI, the traced workloads (the bundle's UST 2.15 libc wrapper preloaded), its
//! lttng-relayd and babeltrace2 2.1. The daemon is stopped when dropped.

use crate::lttng::Workload;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The bundle's folder, if it is there.
pub fn bundle() -> Result<PathBuf> {
    let p = std::env::var_os("TRELAY_LTTNG215")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/peers/lttng-2.15")
        });
    let p = p
        .canonicalize()
        .with_context(|| format!("LTTng 2.15 bundle missing at {}", p.display()))?;
    if !p.join("bin/lttng-sessiond").is_file() {
        bail!("{} has no bin/lttng-sessiond", p.display());
    }
    Ok(p)
}

/// The bundle's lttng-relayd 2.15.1.
pub fn relayd_bin() -> Result<PathBuf> {
    Ok(bundle()?.join("bin/lttng-relayd"))
}

/// The bundle's babeltrace2 2.1.2.
pub fn babeltrace_bin() -> Result<PathBuf> {
    Ok(bundle()?.join("bin/babeltrace2"))
}

/// babeltrace2 2.1 on `path` (in UTC): its standard output.
pub fn babeltrace(path: &Path) -> Result<String> {
    let out = Command::new(babeltrace_bin()?)
        .arg(path)
        .env("TZ", "UTC")
        .output()
        .context("babeltrace2 2.1 not runnable")?;
    if !out.status.success() {
        bail!(
            "babeltrace2 2.1 {} failed: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// babeltrace2 2.1's event lines for `path`, normalized like [`crate::normalized_events`].
pub fn normalized_events(path: &Path) -> Result<Vec<String>> {
    Ok(crate::normalize(&babeltrace(path)?))
}

/// A running 2.15 session daemon with its own folders.
#[derive(Debug)]
pub struct Sessiond215 {
    bundle: PathBuf,
    dir: tempfile::TempDir,
}

impl Sessiond215 {
    /// Starts `lttng-sessiond --no-kernel --daemonize` with `env` added, and waits until it
    /// answers. The caller holds the sessiond lock ([`crate::lttng::lock`]).
    pub fn start(env: &[(&str, &str)]) -> Result<Sessiond215> {
        let bundle = bundle()?;
        // UNIX socket paths must stay short: a folder right under /tmp.
        let dir = tempfile::Builder::new()
            .prefix("trelay-215-")
            .tempdir_in("/tmp")?;
        let sd = Sessiond215 { bundle, dir };
        std::fs::create_dir_all(sd.home())?;
        std::fs::create_dir_all(sd.rundir())?;
        let mut cmd = Command::new(sd.bundle.join("bin/lttng-sessiond"));
        sd.env(&mut cmd);
        cmd.args(["--no-kernel", "--daemonize"])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let st = cmd
            .status()
            .context("cannot start the 2.15 lttng-sessiond")?;
        if !st.success() {
            bail!("2.15 lttng-sessiond --daemonize failed: {st}");
        }
        crate::wait_for(
            Duration::from_secs(30),
            "the 2.15 lttng-sessiond to answer",
            || sd.lttng(&["list"]).is_ok(),
        )?;
        Ok(sd)
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn rundir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    /// Puts this daemon's folders in `cmd`'s environment.
    fn env(&self, cmd: &mut Command) {
        cmd.env("LTTNG_HOME", self.home())
            .env("LTTNG_RUNDIR", self.rundir())
            .env("LTTNG_UST_CTL_PATH", self.rundir())
            .env("LTTNG_UST_APP_PATH", self.rundir());
    }

    /// Runs the 2.15 `lttng ARGS` against this daemon, failing with its output if it fails.
    pub fn lttng(&self, args: &[&str]) -> Result<String> {
        let mut cmd = Command::new(self.bundle.join("bin/lttng"));
        self.env(&mut cmd);
        let out = cmd.args(args).output().context("2.15 lttng not runnable")?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if !out.status.success() {
            bail!("lttng (2.15) {} failed: {text}", args.join(" "));
        }
        Ok(text)
    }

    /// The command running `work` traced by this daemon (the bundle's libc wrapper preloaded),
    /// its output discarded.
    pub fn workload(&self, work: &Workload, args: &[&str]) -> Command {
        let mut cmd = Command::new(&work.path);
        self.env(&mut cmd);
        cmd.args(args)
            .env(
                "LD_PRELOAD",
                self.bundle.join("lib/liblttng-ust-libc-wrapper.so.1"),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    }

    /// Runs `work` traced by this daemon and waits.
    pub fn run(&self, work: &Workload, args: &[&str]) -> Result<()> {
        let st = self
            .workload(work, args)
            .status()
            .with_context(|| format!("cannot run {}", work.path.display()))?;
        if !st.success() {
            bail!("{} exited with {st}", work.path.display());
        }
        Ok(())
    }

    fn pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.rundir().join("lttng-sessiond.pid"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }
}

impl Drop for Sessiond215 {
    fn drop(&mut self) {
        let Some(pid) = self.pid() else {
            return;
        };
        let pid = nix::unistd::Pid::from_raw(pid);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let gone = crate::wait_for(Duration::from_secs(20), "2.15 sessiond to exit", || {
            nix::sys::signal::kill(pid, None).is_err()
        });
        if gone.is_err() {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
    }
}
