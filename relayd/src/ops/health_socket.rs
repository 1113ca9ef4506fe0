//! lttng-relayd's health check socket, as `lttng_health_query()` (liblttng-ctl) and the
//! `health_check` tool query it.
//!
//! A Unix stream socket at `$LTTNG_RELAYD_HEALTH`, else `RUNDIR/relayd/health-PID`
//! ([`super::rundir`]); as root it belongs to root and the tracing group, mode 0660. A client
//! connects, sends a `health_comm_msg` (a native-endian `u32` command, 0 = check) and reads a
//! `health_comm_reply` (a native-endian `u64` bitmask, bit N set = component N in bad health),
//! then the relay closes the connection. Anything else (a short message, another command, a
//! client that stays silent for [`CLIENT_TIMEOUT`]) is logged and the connection closed, without
//! a reply.
//!
//! The components are lttng-relayd's six threads ([`Component`]). trelayd has no such threads;
//! each component is tied to the part of trelayd that does its job, and is in bad health when
//! that part stops making progress: a heartbeat task on the runtime serving it has not run for
//! longer than the check delta (20 s plus `LTTNG_NETWORK_SOCKET_TIMEOUT`, as lttng computes it),
//! or the part ended before shutdown ([`Health::fail`]). The socket is served by a thread of its
//! own, so a stalled runtime is still reported.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The command of a health check (`HEALTH_CMD_CHECK`).
pub const CMD_CHECK: u32 = 0;

/// How long a connected client may take to send its command.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// lttng's base health delta (`DEFAULT_HEALTH_CHECK_DELTA_S`).
pub const BASE_DELTA: Duration = Duration::from_secs(20);

/// How often the heartbeats beat.
pub const BEAT: Duration = Duration::from_secs(1);

/// lttng-relayd's health components, by bit number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Component {
    /// Hands accepted control and data connections to their handlers (trelayd: the main runtime).
    Dispatcher = 0,
    /// Serves control and data connections (trelayd: the data runtime, and the commit tick).
    Worker = 1,
    /// Accepts control and data connections (trelayd: their accept loops).
    Listener = 2,
    /// Hands live connections over (trelayd: the main runtime).
    LiveDispatcher = 3,
    /// Serves live viewers (trelayd: the live hub on the main runtime).
    LiveWorker = 4,
    /// Accepts live connections (trelayd: the live accept loop).
    LiveListener = 5,
}

/// Number of components.
pub const COMPONENTS: usize = 6;

/// Every component.
pub const ALL: [Component; COMPONENTS] = [
    Component::Dispatcher,
    Component::Worker,
    Component::Listener,
    Component::LiveDispatcher,
    Component::LiveWorker,
    Component::LiveListener,
];

#[derive(Debug, Default)]
struct Slot {
    /// Time of the last beat, in ms since [`Health::epoch`]; 0: never beat (not watched yet).
    beat_ms: AtomicU64,
    failed: AtomicBool,
}

/// The health of the relay's components.
#[derive(Debug)]
pub struct Health {
    epoch: Instant,
    delta: Duration,
    slots: [Slot; COMPONENTS],
}

impl Health {
    /// All components healthy, in bad health once stalled for `delta`.
    pub fn new(delta: Duration) -> Health {
        Health {
            epoch: Instant::now(),
            delta,
            slots: Default::default(),
        }
    }

    /// The delta lttng uses: 20 s plus `LTTNG_NETWORK_SOCKET_TIMEOUT` (ms; -1 or unset: 0).
    pub fn lttng_delta() -> Duration {
        let extra = std::env::var("LTTNG_NETWORK_SOCKET_TIMEOUT")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or(Duration::ZERO, Duration::from_millis);
        BASE_DELTA + extra
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// `c` made progress now.
    pub fn beat(&self, c: Component) {
        self.slots[c as usize]
            .beat_ms
            .store(self.now_ms(), Ordering::Relaxed);
    }

    /// `c` stopped working for good (e.g. its loop ended before shutdown).
    pub fn fail(&self, c: Component) {
        self.slots[c as usize].failed.store(true, Ordering::Relaxed);
    }

    /// The reply bitmask: bit N set when component N is in bad health.
    pub fn bad_mask(&self) -> u64 {
        let now = self.now_ms();
        let delta = u64::try_from(self.delta.as_millis()).unwrap_or(u64::MAX);
        ALL.iter().fold(0u64, |mask, c| {
            let s = &self.slots[*c as usize];
            let last = s.beat_ms.load(Ordering::Relaxed);
            let stalled = last != 0 && now.saturating_sub(last) > delta;
            if s.failed.load(Ordering::Relaxed) || stalled {
                mask | (1 << (*c as u8))
            } else {
                mask
            }
        })
    }

    /// Beats `components` every [`BEAT`] from a task on the current tokio runtime, until
    /// `shutdown`.
    pub fn spawn_beats(
        self: &Arc<Self>,
        components: &'static [Component],
        shutdown: tokio_util::sync::CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        self.spawn_beats_on(&tokio::runtime::Handle::current(), components, shutdown)
    }

    /// Like [`Health::spawn_beats`] on the runtime `rt`.
    pub fn spawn_beats_on(
        self: &Arc<Self>,
        rt: &tokio::runtime::Handle,
        components: &'static [Component],
        shutdown: tokio_util::sync::CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        rt.spawn(async move {
            let mut tick = tokio::time::interval(BEAT);
            loop {
                for c in components {
                    me.beat(*c);
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tick.tick() => {}
                }
            }
        })
    }
}

/// The relay's health, once [`install`]ed (the binary does; embedded relays have none).
pub fn global() -> Option<&'static Arc<Health>> {
    GLOBAL.get()
}

static GLOBAL: OnceLock<Arc<Health>> = OnceLock::new();

/// Makes `h` the relay's health (first call wins).
pub fn install(h: Arc<Health>) -> &'static Arc<Health> {
    GLOBAL.get_or_init(|| h)
}

/// Why the socket could not be served.
#[derive(Debug, thiserror::Error)]
pub enum HealthSocketError {
    /// Binding, permissions or the thread failed.
    #[error("health socket {}: {source}", .path.display())]
    Io {
        /// The socket path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// The health socket being served; dropping it stops the thread and removes the socket.
#[derive(Debug)]
pub struct HealthSocket {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HealthSocket {
    /// Where the socket is: `$LTTNG_RELAYD_HEALTH`, else `default`.
    pub fn path_from_env(default: impl FnOnce() -> PathBuf) -> PathBuf {
        match std::env::var_os("LTTNG_RELAYD_HEALTH") {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => default(),
        }
    }

    /// Binds `path` (a stale socket there is replaced), gives it to `gid` with mode 0660 when
    /// set (root), and serves `health` from a thread.
    pub fn serve(
        path: &Path,
        gid: Option<u32>,
        health: Arc<Health>,
    ) -> Result<HealthSocket, HealthSocketError> {
        let err = |source| HealthSocketError::Io {
            path: path.to_path_buf(),
            source,
        };
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(err(e)),
            _ => {}
        }
        let listener = UnixListener::bind(path).map_err(err)?;
        if let Some(gid) = gid {
            use std::os::unix::fs::PermissionsExt;
            std::os::unix::fs::chown(path, Some(0), Some(gid)).map_err(err)?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(err)?;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("trelayd-health".into())
                .spawn(move || accept_loop(&listener, &health, &stop))
                .map_err(err)?
        };
        tracing::debug!(path = %path.display(), "health socket listening");
        Ok(HealthSocket {
            path: path.to_path_buf(),
            stop,
            thread: Some(thread),
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for HealthSocket {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Wake the accept with a connection of our own.
        let _ = UnixStream::connect(&self.path);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn accept_loop(listener: &UnixListener, health: &Health, stop: &AtomicBool) {
    loop {
        let accepted = listener.accept();
        if stop.load(Ordering::Acquire) {
            return;
        }
        match accepted {
            Ok((conn, _)) => {
                if let Err(e) = answer(conn, health) {
                    tracing::debug!("health check client dropped: {e}");
                }
            }
            Err(e) => {
                tracing::warn!("health socket: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn answer(mut conn: UnixStream, health: &Health) -> std::io::Result<()> {
    conn.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    conn.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    let mut cmd = [0u8; 4];
    conn.read_exact(&mut cmd)?;
    let cmd = u32::from_ne_bytes(cmd);
    if cmd != CMD_CHECK {
        tracing::warn!(cmd, "health socket: unknown command, connection closed");
        return Ok(());
    }
    let mask = health.bad_mask();
    tracing::trace!(mask, "health check");
    conn.write_all(&mask.to_ne_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(path: &Path, cmd: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut c = UnixStream::connect(path)?;
        c.write_all(cmd)?;
        c.shutdown(std::net::Shutdown::Write)?;
        let mut out = Vec::new();
        c.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn answers_checks_and_reports_stalled_or_failed_components() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("health");
        let h = Arc::new(Health::new(Duration::from_millis(200)));
        let sock = HealthSocket::serve(&path, None, h.clone()).unwrap();
        assert_eq!(
            query(&path, &0u32.to_ne_bytes()).unwrap(),
            0u64.to_ne_bytes()
        );
        for c in ALL {
            h.beat(c);
        }
        h.fail(Component::LiveListener);
        std::thread::sleep(Duration::from_millis(300));
        h.beat(Component::Worker);
        let got = query(&path, &0u32.to_ne_bytes()).unwrap();
        let mask = u64::from_ne_bytes(got.try_into().unwrap());
        assert_eq!(mask, 0b11_1101, "every component but the worker is bad");
        // Another command or a short message gets no reply, and the socket keeps serving.
        assert!(query(&path, &7u32.to_ne_bytes()).unwrap().is_empty());
        assert!(query(&path, &[0u8; 2]).unwrap().is_empty());
        assert_eq!(query(&path, &0u32.to_ne_bytes()).unwrap().len(), 8);
        drop(sock);
        assert!(!path.exists(), "the socket is removed");
    }
}
