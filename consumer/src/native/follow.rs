//! `follow --url trelay://…`: ship a growing local trace over trelay://, surviving cuts and
//! relay restarts.
//!
//! Every poll round takes the packets complete on disk (as `follow` over the LTTng protocol
//! does), sends the metadata that appeared, then the packets in timestamp order batched per
//! stream, then asks for a commit and waits for it: what the relay acknowledged is forgotten,
//! what it did not stays in memory (index entries only; the bytes are re-read from the files)
//! until it is. After a cut the follower reconnects with backoff, opens the same session
//! identity, and resends from where each stream's data ends on the relay. Idle streams get a
//! beacon every live interval, dated with their last packet's end.

use super::client::NativeError;
use super::follower::{beacons, connect, round, Follower, Link};
use crate::ship::local_session;
use crate::ship::send::names_for;
use crate::trace::metadata::trace_format_of;
use crate::trace::walk;
use crate::url::RelayUrl;
use std::future::Future;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use trelay_proto::ctf::format::TraceFormat;
use trelay_proto::trelay::message::{AckLevel, Message, Open, OpenTraced};

/// How often the tree and the local session list are re-read.
const RESCAN: Duration = Duration::from_secs(1);

/// Options of [`follow`].
#[derive(Debug, Clone)]
pub struct NativeFollowOptions {
    /// The directory the local session writes.
    pub dir: PathBuf,
    /// The relay (`trelay://`).
    pub url: RelayUrl,
    /// Session name (default: the trace's).
    pub session: Option<String>,
    /// Hostname (default: the trace's).
    pub hostname: Option<String>,
    /// Live timer in µs (beacon period).
    pub live_timer_us: u32,
    /// How often files are checked for growth.
    pub poll: Duration,
    /// End after this long without growth.
    pub idle_timeout: Option<Duration>,
    /// Watch `lttng list` for the end of the local session.
    pub watch_session: bool,
    /// How long to keep reconnecting after a cut.
    pub retry_for: Duration,
    /// Print a line at each reconnect.
    pub progress: bool,
    /// TLS towards the relay (its `[tls]` port), when set.
    pub tls: Option<super::client::ClientTls>,
    /// The session's identity on the relay (default: random). A fixed one lets a later run
    /// resume the same relay session.
    pub session_id: Option<[u8; 16]>,
    /// Where the follow stands while it runs (read by a supervisor), when set.
    pub counters: Option<Arc<FollowProgress>>,
    /// The session's trace format; when unset, the first byte of the first metadata file
    /// tells (the follow waits for it before opening the session).
    pub trace_format: Option<TraceFormat>,
}

/// Where a running [`follow`] stands, updated as it goes (relaxed atomics).
#[derive(Debug, Default)]
pub struct FollowProgress {
    taken: AtomicU64,
    acked: AtomicU64,
    connected: AtomicBool,
}

impl FollowProgress {
    pub(super) fn add_taken(&self, bytes: u64) {
        self.taken.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(super) fn add_acked(&self, bytes: u64) {
        self.acked.fetch_add(bytes, Ordering::Relaxed);
    }

    fn set_connected(&self, up: bool) {
        self.connected.store(up, Ordering::Relaxed);
    }

    /// Packet bytes read from the local trace so far.
    pub fn taken(&self) -> u64 {
        self.taken.load(Ordering::Relaxed)
    }

    /// Packet bytes the relay acknowledged as committed.
    pub fn acked(&self) -> u64 {
        self.acked.load(Ordering::Relaxed)
    }

    /// Packet bytes read and not acknowledged yet.
    pub fn backlog(&self) -> u64 {
        self.taken().saturating_sub(self.acked())
    }

    /// Whether a connection to the relay is up.
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }
}

impl NativeFollowOptions {
    /// Defaults: 1 s live timer, 100 ms polling, 300 s of retries.
    pub fn new(dir: PathBuf, url: RelayUrl) -> Self {
        NativeFollowOptions {
            dir,
            url,
            session: None,
            hostname: None,
            live_timer_us: 1_000_000,
            poll: Duration::from_millis(100),
            idle_timeout: None,
            watch_session: true,
            retry_for: Duration::from_secs(300),
            progress: true,
            tls: None,
            session_id: None,
            counters: None,
            trace_format: None,
        }
    }
}

/// What [`follow`] did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct NativeFollowReport {
    /// Session directory on the relay.
    pub relay_path: String,
    /// Streams followed.
    pub streams: usize,
    /// Packets acknowledged as committed.
    pub packets: u64,
    /// Packet bytes acknowledged.
    pub bytes: u64,
    /// Beacons sent.
    pub beacons: u64,
    /// Connections lost and made again.
    pub reconnects: u32,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// Follows the trace under `opts.dir` until it ends, over trelay://.
pub async fn follow(
    opts: &NativeFollowOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<NativeFollowReport, NativeError> {
    tokio::pin!(shutdown);
    let start = Instant::now();
    let found = loop {
        let t = walk::walk(&opts.dir).unwrap_or_default();
        if !t.is_empty() {
            break t;
        }
        tokio::select! {
            _ = &mut shutdown => return Err(NativeError::Protocol("no trace appeared".into())),
            _ = tokio::time::sleep(RESCAN) => {}
        }
        if opts.idle_timeout.is_some_and(|d| start.elapsed() > d) {
            return Err(NativeError::Protocol("no trace appeared".into()));
        }
    };
    let (name, hostname) = names_for(
        &found,
        &opts.dir,
        opts.session.as_deref(),
        opts.hostname.as_deref(),
    );
    let mut id = [0u8; 16];
    match opts.session_id {
        Some(fixed) => id = fixed,
        None => {
            if let Ok(r) = std::fs::File::open("/dev/urandom") {
                let _ = r.read_exact_at(&mut id, 0);
            }
        }
    }
    let trace_format = match opts.trace_format {
        Some(f) => f,
        None => loop {
            if let Some(f) = found.iter().find_map(|t| trace_format_of(&t.metadata)) {
                break f;
            }
            tokio::select! {
                _ = &mut shutdown => return Err(NativeError::Protocol("no metadata appeared".into())),
                _ = tokio::time::sleep(RESCAN) => {}
            }
            if opts.idle_timeout.is_some_and(|d| start.elapsed() > d) {
                return Err(NativeError::Protocol("no metadata appeared".into()));
            }
        },
    };
    let open = OpenTraced {
        open: Open {
            session: id,
            name,
            hostname,
            live_timer_us: opts.live_timer_us.max(1),
            creation_time: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            ack: AckLevel::Committed,
        },
        trace_format,
    };
    let mut f = Follower {
        traces: Vec::new(),
        streams: Vec::new(),
        next_n: 0,
        report: NativeFollowReport::default(),
        counters: opts.counters.clone().unwrap_or_default(),
    };
    f.sync(found)?;
    let watching = opts.watch_session;
    let live = Duration::from_micros(u64::from(opts.live_timer_us.max(1)));
    let mut link: Option<Link> = None;
    let mut backoff = Duration::from_millis(100);
    let mut cut_since: Option<Instant> = None;
    let mut next_beacon = Instant::now() + live;
    let mut next_rescan = Instant::now() + RESCAN;
    let mut last_growth = Instant::now();
    let mut ending = false;
    loop {
        let (got, drained) = f.take()?;
        if got > 0 {
            last_growth = Instant::now();
        }
        if link.is_none() {
            match connect(&opts.url, opts.tls.as_ref(), &open, &mut f).await {
                Ok(l) => {
                    link = Some(l);
                    f.counters.set_connected(true);
                    backoff = Duration::from_millis(100);
                    cut_since = None;
                }
                Err(e) if e.is_transient() => {
                    let since = *cut_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > opts.retry_for {
                        return Err(e);
                    }
                    if opts.progress {
                        eprintln!(
                            "trelay-consumer: {e}; reconnecting in {:.1} s",
                            backoff.as_secs_f64()
                        );
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        if let Some(l) = link.as_mut() {
            let mut step = round(l, &mut f).await;
            if step.is_ok() && Instant::now() >= next_beacon {
                step = beacons(l, &mut f).await.map(|()| 0);
                next_beacon = Instant::now() + live;
            }
            match step {
                Ok(_) => {}
                Err(e) if e.is_transient() => {
                    f.report.reconnects += 1;
                    link = None;
                    f.counters.set_connected(false);
                    // The next connection re-announces every stream and trace.
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        // Ending drains: rounds go on until a take finds nothing more on disk.
        if ending && drained && link.is_some() {
            break;
        }
        if Instant::now() >= next_rescan {
            f.sync(walk::walk(&opts.dir).unwrap_or_default())?;
            next_rescan = Instant::now() + RESCAN;
            if watching {
                let listed = match local_session::listed_paths().await {
                    Some(p) => local_session::writes_to(&p, &opts.dir),
                    None => true,
                };
                ending |= !listed;
            }
        }
        ending |= opts.idle_timeout.is_some_and(|d| last_growth.elapsed() > d);
        if !ending {
            tokio::select! {
                _ = &mut shutdown => {
                    ending = true;
                    f.sync(walk::walk(&opts.dir).unwrap_or_default())?;
                }
                _ = tokio::time::sleep(opts.poll) => {}
            }
        }
    }
    // Close (retrying over cuts like the rest).
    let close_deadline = Instant::now() + opts.retry_for;
    loop {
        let l = match link.as_mut() {
            Some(l) => l,
            None => {
                match connect(&opts.url, opts.tls.as_ref(), &open, &mut f).await {
                    Ok(l) => link = Some(l),
                    Err(e) if e.is_transient() && Instant::now() < close_deadline => {
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                    Err(e) => return Err(e),
                }
                continue;
            }
        };
        let closed = async {
            round(l, &mut f).await?;
            for s in &f.streams {
                l.conn
                    .send(&Message::CloseStream {
                        stream: s.n,
                        last_seq: s.next_seq.checked_sub(1),
                    })
                    .await?;
            }
            l.conn.send(&Message::Close).await?;
            l.conn.wait_acked(AckLevel::Committed, l.conn.sent).await
        }
        .await;
        match closed {
            Ok(()) => break,
            Err(e) if e.is_transient() => {
                f.report.reconnects += 1;
                link = None;
                tokio::time::sleep(backoff).await;
            }
            Err(e) => return Err(e),
        }
    }
    f.counters.set_connected(false);
    f.report.streams = f.streams.len();
    f.report.seconds = start.elapsed().as_secs_f64();
    Ok(f.report)
}
