//! Running as a daemon the way lttng-relayd does (`-d`, `-b`): the parent waits until the
//! detached relay says it is ready (every listener bound, the health socket listening) and exits
//! 0, or exits 1 when the relay ends without saying so (a bad working directory, a busy port, a
//! locked output folder...), so that `trelayd -b ... && next-step` only goes on with a working
//! relay. The detached relay is the same program run again (same argv, `argv[0]` kept) with
//! [`ENV_READY_FD`] naming the inherited write end of the readiness pipe; it starts a new session
//! (`setsid`) and goes to `/`; for `-d` its standard streams are `/dev/null`, for `-b` standard
//! output and error stay the terminal's. Standard input is `/dev/null` in both.
//!
//! Also here: `--sig-parent` (SIGUSR1 to the process that started trelayd once it is ready; the
//! detached relay learns that pid from [`ENV_SIG_PARENT`]) and `--pid-file`.

use nix::unistd::Pid;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Environment variable telling the detached relay which descriptor to announce readiness on.
pub const ENV_READY_FD: &str = "TRELAYD_DETACHED_READY_FD";

/// Environment variable carrying the `--sig-parent` pid to the detached relay.
pub const ENV_SIG_PARENT: &str = "TRELAYD_DETACHED_SIG_PARENT";

/// Why the process could not detach.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// A system call failed.
    #[error("cannot daemonize: {0}: {1}")]
    Sys(&'static str, std::io::Error),
}

fn sys(what: &'static str) -> impl FnOnce(nix::Error) -> DaemonError {
    move |e| DaemonError::Sys(what, std::io::Error::from(e))
}

/// The relay's promise to tell whoever waits when it is ready; dropping it unsaid makes a
/// waiting parent exit 1.
#[derive(Debug)]
pub struct Readiness {
    pipe: Option<File>,
    sig_parent: Option<Pid>,
}

impl Readiness {
    /// Nothing to tell anyone (foreground, no `--sig-parent`).
    pub fn none() -> Readiness {
        Readiness {
            pipe: None,
            sig_parent: None,
        }
    }

    /// Also sends SIGUSR1 to `pid` when ready (`--sig-parent`).
    pub fn with_sig_parent(mut self, pid: Option<Pid>) -> Readiness {
        self.sig_parent = self.sig_parent.or(pid);
        self
    }

    /// The relay is ready: releases the waiting parent and signals the `--sig-parent` process.
    pub fn ready(&mut self) {
        if let Some(mut p) = self.pipe.take() {
            if let Err(e) = p.write_all(b"R") {
                tracing::warn!("cannot tell the parent process that the relay is ready: {e}");
            }
        }
        if let Some(pid) = self.sig_parent.take() {
            tracing::debug!(%pid, "notifying the parent process of readiness (SIGUSR1)");
            if let Err(e) = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGUSR1) {
                tracing::warn!(%pid, "cannot signal the parent process: {e}");
            }
        }
    }
}

/// Whether this process is the detached relay started by [`detach`].
pub fn is_detached() -> bool {
    std::env::var_os(ENV_READY_FD).is_some()
}

/// In the detached relay: leaves the parent's session and directory and takes the readiness
/// pipe (and the `--sig-parent` pid) handed down.
pub fn adopt() -> Result<Readiness, DaemonError> {
    nix::unistd::setsid().map_err(sys("setsid"))?;
    nix::unistd::chdir("/").map_err(sys("chdir /"))?;
    let fd: i32 = std::env::var(ENV_READY_FD)
        .ok()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| {
            DaemonError::Sys("readiness pipe", std::io::ErrorKind::InvalidInput.into())
        })?;
    // Reopen the inherited pipe by path (no unsafe adoption of a raw descriptor), then close
    // the inherited descriptor.
    let pipe = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/self/fd/{fd}"))
        .map_err(|e| DaemonError::Sys("readiness pipe", e))?;
    let _ = nix::unistd::close(fd);
    let sig_parent = std::env::var(ENV_SIG_PARENT)
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Pid::from_raw);
    Ok(Readiness {
        pipe: Some(pipe),
        sig_parent,
    })
}

/// Starts the detached relay (this program, same arguments) and waits for its readiness; never
/// returns but with an error: exits 0 once the relay is ready, 1 when it ended before.
/// `close_stdio` (`-d`) gives it `/dev/null` for standard output and error.
pub fn detach(close_stdio: bool, sig_parent: Option<Pid>) -> DaemonError {
    match spawn_and_wait(close_stdio, sig_parent) {
        Ok(ready) => std::process::exit(if ready { 0 } else { 1 }),
        Err(e) => e,
    }
}

fn spawn_and_wait(close_stdio: bool, sig_parent: Option<Pid>) -> Result<bool, DaemonError> {
    // Without O_CLOEXEC: the write end is inherited by the relay.
    let (read, write) = nix::unistd::pipe().map_err(sys("pipe"))?;
    nix::fcntl::fcntl(
        read.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .map_err(sys("pipe"))?;
    let exe = std::env::current_exe().map_err(|e| DaemonError::Sys("current_exe", e))?;
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| exe.clone().into_os_string());
    let mut cmd = Command::new(&exe);
    std::os::unix::process::CommandExt::arg0(&mut cmd, arg0);
    cmd.args(args)
        .env(ENV_READY_FD, write.as_raw_fd().to_string())
        .stdin(Stdio::null());
    if let Some(p) = sig_parent {
        cmd.env(ENV_SIG_PARENT, p.to_string());
    }
    if close_stdio {
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
    }
    let mut child = cmd.spawn().map_err(|e| DaemonError::Sys("spawn", e))?;
    drop(write);
    let mut buf = [0u8; 1];
    let ready = matches!(File::from(read).read(&mut buf), Ok(1));
    if !ready {
        // It ended: reap it.
        let _ = child.wait();
    }
    Ok(ready)
}

/// The `--pid-file`, removed when dropped.
#[derive(Debug)]
pub struct PidFile(PathBuf);

impl PidFile {
    /// Writes this process's pid (decimal, newline) to `path`.
    pub fn create(path: &Path) -> std::io::Result<PidFile> {
        std::fs::write(path, format!("{}\n", std::process::id()))?;
        Ok(PidFile(path.to_path_buf()))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.0) {
            tracing::warn!("cannot remove pid file {}: {e}", self.0.display());
        }
    }
}
