//! Driving the real LTTng tools: one shared `lttng-sessiond`, the `lttng` CLI, and traced
//! workloads whose process name is unique to the test (so filters on `$ctx.procname` keep other
//! tests' applications out of a session's events).

use anyhow::{bail, Context, Result};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Holds the machine-wide lock that serializes tests driving lttng-sessiond.
#[derive(Debug)]
pub struct SessiondGuard {
    _file: File,
}

/// Takes the machine-wide lock that serializes tests driving a session daemon (Debian's 2.13
/// one or a private 2.15 one: both share the machine's two cores and the traced workloads).
pub fn lock() -> Result<SessiondGuard> {
    let file = File::create("/tmp/trelay-integration-lttng.lock")?;
    fs2::FileExt::lock_exclusive(&file)?;
    Ok(SessiondGuard { _file: file })
}

/// Whether Debian's 2.13 `lttng-sessiond` runs: a process whose executable is the one on
/// `PATH` (a 2.15 session daemon from the bundle has the same process name, another binary).
fn debian_sessiond_runs() -> bool {
    let Some(want) = which("lttng-sessiond").and_then(|p| p.canonicalize().ok()) else {
        return false;
    };
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return false;
    };
    procs.flatten().any(|e| {
        e.file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit())
            && std::fs::read_link(e.path().join("exe")).is_ok_and(|exe| exe == want)
    })
}

/// The first `name` on `PATH`.
fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// Takes the lock (waiting for other tests), then makes sure Debian's `lttng-sessiond` runs
/// (started with `--daemonize` if none does; never killed by the tests).
pub fn sessiond() -> Result<SessiondGuard> {
    let guard = lock()?;
    if !debian_sessiond_runs() {
        let st = Command::new("lttng-sessiond")
            .args(["--no-kernel", "--daemonize"])
            .status()
            .context("cannot start lttng-sessiond")?;
        if !st.success() {
            bail!("lttng-sessiond --daemonize failed: {st}");
        }
    }
    crate::wait_for(Duration::from_secs(30), "lttng-sessiond to answer", || {
        Command::new("lttng")
            .arg("list")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    })?;
    Ok(guard)
}

/// Runs `lttng ARGS`, failing with its output if it fails.
pub fn lttng(args: &[&str]) -> Result<String> {
    let out = Command::new("lttng")
        .args(args)
        .output()
        .context("lttng not runnable")?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        bail!("lttng {} failed: {text}", args.join(" "));
    }
    Ok(text)
}

/// Destroys the session when dropped (best effort), so a failed test leaves nothing behind.
#[derive(Debug)]
pub struct SessionGuard(pub String);

impl Drop for SessionGuard {
    fn drop(&mut self) {
        let _ = Command::new("lttng").args(["destroy", &self.0]).output();
    }
}

/// A program to run traced: a symlink with a unique name to a real binary, so its procname is
/// unique.
#[derive(Debug)]
pub struct Workload {
    /// The symlink.
    pub path: PathBuf,
    /// Its process name (the filter value).
    pub procname: String,
}

impl Workload {
    /// Links `target` as `dir/name` (name at most 15 bytes: the kernel's comm length).
    pub fn new(dir: &Path, name: &str, target: &str) -> Result<Workload> {
        if name.len() > 15 {
            bail!("procname {name} longer than 15 bytes");
        }
        std::fs::create_dir_all(dir)?;
        let path = dir.join(name);
        let _ = std::fs::remove_file(&path);
        std::os::unix::fs::symlink(target, &path)?;
        Ok(Workload {
            path,
            procname: name.to_owned(),
        })
    }

    /// Links the Python interpreter as `dir/bin/NAME`.
    pub fn python(dir: &Path, name: &str) -> Result<Workload> {
        Workload::new(&dir.join("bin"), name, python())
    }

    /// The UST filter that keeps only this workload's events.
    pub fn filter(&self) -> String {
        format!("$ctx.procname == \"{}\"", self.procname)
    }

    /// The command running it with the libc wrapper preloaded (malloc/free/... events), its
    /// output discarded.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.path);
        cmd.args(args)
            .env("LD_PRELOAD", "liblttng-ust-libc-wrapper.so.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    }

    /// Runs it with the libc wrapper preloaded and waits.
    pub fn run(&self, args: &[&str]) -> Result<()> {
        let st = self
            .command(args)
            .status()
            .with_context(|| format!("cannot run {}", self.path.display()))?;
        if !st.success() {
            bail!("{} exited with {st}", self.path.display());
        }
        Ok(())
    }

    /// Starts it with the libc wrapper preloaded, without waiting.
    pub fn spawn(&self, args: &[&str]) -> Result<Child> {
        self.command(args)
            .spawn()
            .with_context(|| format!("cannot run {}", self.path.display()))
    }
}

/// A Python program (for `python3 -c`) allocating `per_round` buffers of 100000 + i bytes every
/// 20 ms for `seconds`: a steady stream of recorded events.
pub fn steady_allocs(seconds: u32, per_round: u32) -> String {
    format!(
        "import time\nt = time.time()\nwhile time.time() - t < {seconds}:\n    \
keep = [bytearray(100000 + i) for i in range({per_round})]\n    time.sleep(0.02)\n"
    )
}

/// A Python interpreter to link workloads to.
pub fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}
