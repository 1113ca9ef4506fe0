//! Listeners and connection handlers: control ([`control`]), data ([`data`]) and live ([`live`]).
//!
//! [`Relay::bind`] binds the three ports (reporting the real ports when 0 was asked) and
//! [`Relay::serve`] accepts until the shutdown token fires; each connection runs in its own task
//! tracked by a `TaskTracker`; data connections run on threads of their own ([`data_threads`]),
//! so control replies never queue behind payload writes. On shutdown the relay stops accepting,
//! lets each connection finish the message in hand, commits everything received, and returns.

pub mod control;
pub mod data;
pub mod data_threads;
mod inbox;
mod listener;
pub mod live;
pub mod native;
mod room;
mod splice;
mod tls;

use tls::tls_loop;

use crate::config::Config;
use crate::identity::Peer;
use crate::session::Registry;
use crate::telemetry::Port;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use crate::ops::state::BoundPorts;

/// Why the relay could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// Sessions failed (a commit failed): not everything received is committed.
    #[error(
        "trelayd stopped: {failed} session(s) failed, not everything received is committed \
         (see the \"session failed\" lines)"
    )]
    Incomplete {
        /// How many sessions failed since the relay started.
        failed: u64,
    },
    /// A listener could not be bound.
    #[error("cannot listen on {url}: {source}")]
    Bind {
        /// The URL.
        url: String,
        /// The error.
        source: std::io::Error,
    },
    /// The output directory could not be created.
    #[error("cannot create output directory {path}: {source}")]
    Output {
        /// The directory.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// Another relay uses the output directory (or its lock file cannot be taken).
    #[error(transparent)]
    OutputLocked(#[from] crate::storage::output_lock::OutputLockError),
    /// The TLS settings are unusable.
    #[error("[tls]: {0}")]
    Tls(String),
    /// The archive settings are unusable.
    #[error("[archive]: {0}")]
    Archive(String),
    /// The ports file could not be written.
    #[error("cannot write ports file {path}: {source}")]
    PortsFile {
        /// The file.
        path: String,
        /// The error.
        source: crate::storage::StorageError,
    },
}

/// A bound relay, ready to serve.
#[derive(Debug)]
pub struct Relay {
    control: TcpListener,
    data: TcpListener,
    live: TcpListener,
    metrics: Option<TcpListener>,
    tls: Option<(TcpListener, Arc<rustls::ServerConfig>)>,
    tls_live: Option<(TcpListener, Arc<rustls::ServerConfig>)>,
    ports: BoundPorts,
    registry: Arc<Registry>,
    tracker: TaskTracker,
    output_lock: crate::storage::output_lock::OutputLock,
    archive: Option<(
        Arc<dyn object_store::ObjectStore>,
        crate::archive::ArchiveUrl,
        crate::archive::ArchiveSettings,
    )>,
}

impl Relay {
    /// Creates the output directory, takes its lock (one relay per output directory), cuts the
    /// torn tails of traces a previous relay left open ([`crate::storage::recovery`]), binds the
    /// listeners, writes the ports file and logs the ports. Must run inside a tokio runtime.
    pub fn bind(config: Config) -> Result<Relay, RelayError> {
        Self::bind_with_fs(config, crate::storage::RealFs::shared())
    }

    /// Like [`Relay::bind`], writing the output folder through the file system `fs` (tests pass
    /// a fault-injecting one, [`crate::storage::fault::FaultFs`]).
    pub fn bind_with_fs(config: Config, fs: crate::storage::Fs) -> Result<Relay, RelayError> {
        fs.create_dir_all(&config.output)
            .map_err(|source| RelayError::Output {
                path: config.output.display().to_string(),
                source,
            })?;
        let output_lock = crate::storage::output_lock::acquire(&fs, &config.output)?;
        // What may still be resumed or is being forwarded keeps its markers: it is open.
        let pins = crate::session::pins::Pins::load(
            &fs,
            &config.output,
            config.group_by,
            config.settings.resume_timeout(),
        );
        let forwarded = crate::session::pins::forwarded_dirs(&fs, &config.output);
        crate::storage::recovery::recover_keeping(&fs, &config.output, &|d: &std::path::Path| {
            pins.pins(d)
                || forwarded
                    .iter()
                    .any(|f| f.starts_with(d) || d.starts_with(f))
        });
        let bind = |url: &crate::config::ListenUrl| {
            listener::bind(url).map_err(|source| RelayError::Bind {
                url: url.to_string(),
                source,
            })
        };
        let control = bind(&config.control)?;
        let data = bind(&config.data)?;
        let live = bind(&config.live)?;
        let metrics = match &config.settings.metrics_addr {
            Some(addr) => Some(
                listener::bind_addr(addr).map_err(|source| RelayError::Bind {
                    url: addr.clone(),
                    source,
                })?,
            ),
            None => None,
        };
        let bind_tls = |addr: &str, acceptor: &Arc<rustls::ServerConfig>| {
            listener::bind_addr(addr)
                .map(|l| (l, acceptor.clone()))
                .map_err(|source| RelayError::Bind {
                    url: addr.to_owned(),
                    source,
                })
        };
        let (tls, tls_live) = match &config.settings.tls {
            Some(t) => {
                let acceptor = crate::identity::tls::server_config(t).map_err(RelayError::Tls)?;
                let live = match &t.live_addr {
                    Some(a) => Some(bind_tls(a, &acceptor)?),
                    None => None,
                };
                (Some(bind_tls(&t.addr, &acceptor)?), live)
            }
            None => (None, None),
        };
        let port = |l: &TcpListener| listener::local(l).map(|a| a.port()).unwrap_or(0);
        let ports = BoundPorts {
            control: port(&control),
            data: port(&data),
            live: port(&live),
            metrics: metrics.as_ref().map(port),
            tls: tls.as_ref().map(|(l, _)| port(l)),
            tls_live: tls_live.as_ref().map(|(l, _)| port(l)),
        };
        let archive = match &config.settings.archive {
            Some(a) => {
                let (store, url) = a.store().map_err(|e| RelayError::Archive(e.to_string()))?;
                let store: Arc<dyn object_store::ObjectStore> = Arc::new(store);
                Some((store, url, a.clone()))
            }
            None => None,
        };
        let limit = crate::ops::fds::raise_limit();
        let max_open_files = match config.settings.max_open_files {
            0 => limit.map_or(usize::MAX, |l| {
                usize::try_from(l / 4 * 3).unwrap_or(usize::MAX)
            }),
            n => n,
        };
        crate::storage::pool::pool().set_max(max_open_files);
        if let Some(path) = &config.ports_file {
            let text = serde_json::to_string(&ports).unwrap_or_default();
            crate::storage::output_lock::write_atomically(&fs, path, &(text + "\n")).map_err(
                |source| RelayError::PortsFile {
                    path: path.display().to_string(),
                    source,
                },
            )?;
        }
        let listening = [("control", &control), ("data", &data), ("live", &live)]
            .into_iter()
            .chain(metrics.as_ref().map(|m| ("metrics", m)))
            .chain(tls.as_ref().map(|(l, _)| ("trelay-tls", l)))
            .chain(tls_live.as_ref().map(|(l, _)| ("live-tls", l)));
        for (kind, l) in listening {
            match listener::local(l) {
                Ok(addr) => tracing::info!(port = kind, %addr, "listening"),
                Err(e) => tracing::warn!(port = kind, "listening, address unknown: {e}"),
            }
        }
        tracing::info!(
            output = %config.output.display(),
            durability = ?config.settings.durability,
            open_file_limit = limit,
            max_open_files,
            "trelayd started"
        );
        let tracker = TaskTracker::new();
        let mut registry = Registry::with_fs(
            config.settings,
            config.output,
            config.group_by,
            tracker.clone(),
            fs,
        );
        registry.pins = pins;
        let registry = Arc::new(registry);
        Ok(Relay {
            control,
            data,
            live,
            metrics,
            tls,
            tls_live,
            ports,
            registry,
            tracker,
            output_lock,
            archive,
        })
    }

    /// The bound ports.
    pub fn ports(&self) -> BoundPorts {
        self.ports
    }

    /// The shared registry (for tests and the live server).
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.clone()
    }

    /// Serves until `shutdown` fires, then drains and commits; an error if a session failed
    /// (some of what it received is not committed).
    pub async fn serve(self, shutdown: CancellationToken) -> Result<(), RelayError> {
        let Relay {
            control,
            data,
            live,
            metrics,
            tls,
            tls_live,
            registry,
            tracker,
            output_lock,
            archive,
            ports,
            ..
        } = self;
        let listening = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let ops = metrics.map(|l| {
            let state = crate::ops::http::OpsState {
                registry: registry.clone(),
                listening: listening.clone(),
                ports: Some(ports),
            };
            tokio::spawn(crate::ops::http::serve(l, state, shutdown.clone()))
        });
        let watchdog = tokio::spawn(crate::ops::systemd::watchdog(shutdown.clone()));
        let conns = TaskTracker::new();
        let data_runtime = data_threads::runtime();
        let beats = crate::ops::health_socket::global().map(|h| {
            use crate::ops::health_socket::Component::*;
            let main = h.spawn_beats(
                &[
                    Dispatcher,
                    Listener,
                    LiveDispatcher,
                    LiveWorker,
                    LiveListener,
                ],
                shutdown.clone(),
            );
            let data = match &data_runtime {
                Some(rt) => h.spawn_beats_on(rt.handle(), &[Worker], shutdown.clone()),
                None => h.spawn_beats(&[Worker], shutdown.clone()),
            };
            [main, data]
        });
        let hub = Arc::new(live::Hub::new(registry.clone()));
        let accepts = [
            tokio::spawn(accept_loop(
                control,
                (true, Port::Control, registry.clone()),
                conns.clone(),
                shutdown.clone(),
                {
                    let r = registry.clone();
                    let sd = shutdown.clone();
                    move |c, peer| control::handle(c, r.clone(), sd.clone(), peer)
                },
            )),
            tokio::spawn(accept_loop(
                data,
                (false, Port::Data, registry.clone()),
                conns.clone(),
                shutdown.clone(),
                {
                    let r = registry.clone();
                    let sd = shutdown.clone();
                    let rt = data_runtime.as_ref().map(|rt| rt.handle().clone());
                    move |c, peer| {
                        data_threads::handle_on(rt.clone(), c, r.clone(), sd.clone(), peer)
                    }
                },
            )),
            tokio::spawn(accept_loop(
                live,
                (true, Port::Live, registry.clone()),
                conns.clone(),
                shutdown.clone(),
                {
                    let hub = hub.clone();
                    let sd = shutdown.clone();
                    move |c, peer| live::handle(c, hub.clone(), sd.clone(), peer)
                },
            )),
        ];
        let tls_task = tls.map(|(l, config)| {
            let (r, sd) = (registry.clone(), shutdown.clone());
            tokio::spawn(tls_loop(
                (l, tokio_rustls::TlsAcceptor::from(config)),
                (Port::Control, "trelay-tls"),
                registry.clone(),
                conns.clone(),
                shutdown.clone(),
                move |mut tls, mut peer: Peer, addr, name| {
                    let (r, sd) = (r.clone(), sd.clone());
                    async move {
                        if name.is_some() {
                            peer.name = name;
                        }
                        native::serve(&mut tls, addr.to_string(), &[], &r, &sd, &peer).await;
                    }
                },
            ))
        });
        let tls_live_task = tls_live.map(|(l, config)| {
            let sd = shutdown.clone();
            let hub = hub.clone();
            tokio::spawn(tls_loop(
                (l, tokio_rustls::TlsAcceptor::from(config)),
                (Port::Live, "live-tls"),
                registry.clone(),
                conns.clone(),
                shutdown.clone(),
                move |tls, peer: Peer, addr, name| {
                    live::handle_on(tls, addr.to_string(), hub.clone(), sd.clone(), peer, name)
                },
            ))
        });
        let tick = tokio::spawn(tick_loop(registry.clone(), shutdown.clone()));
        let forward = crate::forward::run::spawn(&registry, &shutdown);
        let archiver = archive.and_then(|(store, url, settings)| {
            crate::archive::Archiver::new(store, url, settings, registry.clone())
                .spawn(shutdown.clone())
                .map_err(|e| tracing::error!("archive: cannot start its thread: {e}"))
                .ok()
        });
        listening.store(true, std::sync::atomic::Ordering::Release);
        crate::ops::systemd::ready("listening");
        shutdown.cancelled().await;
        crate::ops::systemd::stopping();
        tracing::info!("shutting down: no new connections, finishing messages in hand");
        for a in accepts {
            let _ = a.await;
        }
        for t in [tls_task, tls_live_task].into_iter().flatten() {
            let _ = t.await;
        }
        conns.close();
        conns.wait().await;
        let _ = tick.await;
        if let Some(f) = forward {
            let _ = f.await;
        }
        if let Some(a) = archiver {
            let _ = tokio::task::spawn_blocking(move || a.join()).await;
        }
        let _ = watchdog.await;
        for b in beats.into_iter().flatten() {
            let _ = b.await;
        }
        if let Some(ops) = ops {
            let _ = ops.await;
        }
        registry.expire_pending_at_shutdown();
        registry.commit_all();
        tracker.close();
        tracker.wait().await;
        registry.chunks.run_releases();
        if let Some(rt) = data_runtime {
            rt.shutdown_background();
        }
        drop(output_lock);
        let failed = crate::session::failed_sessions();
        if failed > 0 {
            return Err(RelayError::Incomplete { failed });
        }
        tracing::info!("trelayd stopped cleanly: everything received is committed");
        Ok(())
    }
}

/// How long a connection may stay silent once shutdown began before it is closed.
pub(crate) const DRAIN_IDLE: std::time::Duration = std::time::Duration::from_millis(200);
/// How long a connection may keep sending once shutdown began.
const DRAIN_MAX: std::time::Duration = std::time::Duration::from_secs(3);

/// Reads the start of the next message. Once shutdown began, what the peer already sent is still
/// read (messages in flight are received, not dropped) until the connection goes quiet for
/// [`DRAIN_IDLE`] or [`DRAIN_MAX`] passed; then `Ok(0)` ends the connection like an EOF.
pub(crate) async fn read_next(
    sock: &mut (impl tokio::io::AsyncRead + Unpin),
    buf: &mut [u8],
    shutdown: &CancellationToken,
    drain_since: &mut Option<Instant>,
) -> std::io::Result<usize> {
    use tokio::io::AsyncReadExt;
    if !shutdown.is_cancelled() {
        tokio::select! {
            _ = shutdown.cancelled() => {}
            r = sock.read(buf) => return r,
        }
    }
    let since = *drain_since.get_or_insert_with(Instant::now);
    if since.elapsed() >= DRAIN_MAX {
        return Ok(0);
    }
    match tokio::time::timeout(DRAIN_IDLE, sock.read(buf)).await {
        Ok(r) => r,
        Err(_) => Ok(0),
    }
}

async fn accept_loop<F, Fut>(
    listener: TcpListener,
    (nodelay, port, registry): (bool, Port, Arc<Registry>),
    conns: TaskTracker,
    shutdown: CancellationToken,
    handler: F,
) where
    F: Fn(TcpStream, Peer) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        if port == Port::Live && !reserve_left(&registry, &shutdown).await {
            return;
        }
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((conn, peer)) => {
                if port == Port::Live {
                    crate::ops::fds::accepted();
                }
                // Refused connections are closed at once (logged and counted by the gate).
                let Ok(admitted) = registry.gate.admit(port, peer.ip()) else {
                    drop(conn);
                    continue;
                };
                tracing::debug!(%peer, name = ?admitted.peer.name, "connection accepted");
                listener::tune(&conn, nodelay);
                let counted = registry.telemetry.connection(port);
                let served = handler(conn, admitted.peer.clone());
                conns.spawn(async move {
                    served.await;
                    drop(counted);
                    drop(admitted);
                });
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                if crate::storage::pool::is_out_of_fds(&e) {
                    crate::storage::pool::pool().evict(true);
                    tracing::warn!(
                        port = port.label(),
                        "accept failed: out of file descriptors ({e}); raise the open-file \
                         limit (LimitNOFILE) or lower max_open_files"
                    );
                } else {
                    tracing::warn!(port = port.label(), "accept failed: {e}");
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

/// Waits while the process is within `[limits] fd_reserve` descriptors of its open-file limit:
/// listeners of lower priority than ingest (live, operations) do not accept then, leaving the
/// descriptors left to the control and data ports. `false` when shutdown fired meanwhile.
pub(crate) async fn reserve_left(registry: &Registry, shutdown: &CancellationToken) -> bool {
    let reserve = registry.gate.limits.fd_reserve;
    let mut logged = false;
    while crate::ops::fds::within_reserve(reserve) {
        if !logged && registry.gate.refusals.admit_line("fd_reserve").is_some() {
            tracing::warn!(
                reserve,
                "live port not accepting: within the descriptors reserved for ingest"
            );
            logged = true;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return false,
            _ = tokio::time::sleep(std::time::Duration::from_millis(100)) => {}
        }
    }
    true
}

/// Drives merge-entry expiry and the commit interval.
async fn tick_loop(registry: Arc<Registry>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(registry.settings.tick());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_commit = Instant::now();
    let mut last_upkeep = Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = Instant::now();
        if now.duration_since(last_upkeep) >= std::time::Duration::from_secs(1) {
            last_upkeep = now;
            registry.telemetry.upkeep();
        }
        // Over the open-file bound, only committed files can be closed: commit now rather than
        // at the next interval, and close what the previous tick's commits made closable.
        let pool = crate::storage::pool::pool();
        let over = pool.open() > pool.max();
        pool.tick();
        registry.expire(now);
        registry.maintain();
        if over || now.duration_since(last_commit) >= registry.settings.commit_interval() {
            last_commit = now;
            registry.commit_all();
        }
    }
}
