//! babeltrace2 as a live viewer of a relay (`src.ctf.lttng-live`), and the helpers the live tests
//! share: waiting for viewers to attach (from trelayd's log), comparing event lines.

use crate::relay::Trelayd;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `babeltrace2` attached live to one session.
#[derive(Debug)]
pub struct LiveBabeltrace {
    child: Option<Child>,
    /// Its standard output.
    pub out: PathBuf,
    /// Its standard error.
    pub err: PathBuf,
}

/// This machine's host name (what lttng-sessiond reports as the session's host).
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "localhost".into())
}

impl LiveBabeltrace {
    /// Starts babeltrace2 on `net://127.0.0.1:PORT/host/HOST/SESSION`, ending when the session
    /// ends (`session-not-found-action="end"`); output files are `dir/TAG.out|err`.
    pub fn start(dir: &Path, tag: &str, port: u16, session: &str) -> Result<LiveBabeltrace> {
        Self::start_for(dir, tag, port, &hostname(), session)
    }

    /// Like [`LiveBabeltrace::start`] for a session of host `host`.
    pub fn start_for(
        dir: &Path,
        tag: &str,
        port: u16,
        host: &str,
        session: &str,
    ) -> Result<LiveBabeltrace> {
        Self::start_bin(Path::new("babeltrace2"), dir, tag, port, host, session)
    }

    /// Like [`LiveBabeltrace::start_for`] with another babeltrace2 binary (e.g. the 2.15
    /// bundle's babeltrace2 2.1).
    pub fn start_bin(
        bin: &Path,
        dir: &Path,
        tag: &str,
        port: u16,
        host: &str,
        session: &str,
    ) -> Result<LiveBabeltrace> {
        std::fs::create_dir_all(dir)?;
        let out = dir.join(format!("{tag}.out"));
        let err = dir.join(format!("{tag}.err"));
        let url = format!("net://127.0.0.1:{port}/host/{host}/{session}");
        let child = Command::new(bin)
            .arg("--component=src.ctf.lttng-live")
            .arg(format!(
                "--params=inputs=[\"{url}\"],session-not-found-action=\"end\""
            ))
            .env("TZ", "UTC")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out)?)
            .stderr(std::fs::File::create(&err)?)
            .spawn()
            .context("cannot start babeltrace2")?;
        Ok(LiveBabeltrace {
            child: Some(child),
            out,
            err,
        })
    }

    /// What it printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// Waits for it to end by itself (at most `timeout`); fails unless it exits with 0.
    pub fn wait(&mut self, timeout: Duration) -> Result<String> {
        let Some(child) = self.child.as_mut() else {
            bail!("already waited")
        };
        let start = Instant::now();
        loop {
            if let Some(st) = child.try_wait()? {
                self.child = None;
                let err = std::fs::read_to_string(&self.err).unwrap_or_default();
                if !st.success() {
                    bail!("live babeltrace2 failed ({st}): {err}");
                }
                return Ok(self.output());
            }
            if start.elapsed() > timeout {
                bail!(
                    "live babeltrace2 did not end within {timeout:?}; it printed {} lines; stderr: {}",
                    self.output().lines().count(),
                    std::fs::read_to_string(&self.err).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for LiveBabeltrace {
    fn drop(&mut self) {
        crate::relay::reap(self.child.take());
    }
}

/// Waits until trelayd logged `n` viewer attachments to session `name`.
pub fn wait_attached(relay: &Trelayd, name: &str, n: usize, timeout: Duration) -> Result<()> {
    let needle = format!("name={name} ");
    crate::wait_for(timeout, &format!("{n} viewers attached to {name}"), || {
        relay
            .log_text()
            .lines()
            .filter(|l| l.contains("viewer attached") && l.contains(&needle))
            .count()
            >= n
    })
    .with_context(|| relay.log_tail())
}

/// The `size = N` field of an event line.
pub fn size_of(line: &str) -> Option<u64> {
    let rest = line.split("size = ").nth(1)?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}
