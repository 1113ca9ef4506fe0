//! `follow`: ship a trace while a local LTTng session is still writing it, as a live session.
//!
//! Every poll interval the follower takes, per stream, the packets that are complete on disk
//! (index entries whose bytes are all written, or whole packets by their headers), *then* sends
//! the metadata that appeared, *then* those packets in timestamp order — so a viewer always has
//! the metadata a packet needs. New trace directories (an application registering) and new
//! stream files are picked up by a rescan every second.
//!
//! Beacons: every live interval, if any packet went out since the previous round, each stream
//! that sent nothing gets a beacon. Its date must never exceed the start of that stream's next
//! packet, or a viewer would see time go backwards. The follower cannot flush the local tracer's
//! buffers the way a relayd consumer does before a beacon, so by default it dates a stream's
//! beacon with the end of its own last packet (always true). With `flush_interval_us` (the local
//! channels' `--switch-timer` period) it dates beacons `now − 2 × interval` on the trace clock,
//! which keeps viewers moving past idle streams, on the promise that the tracer flushes every
//! stream at least that often.
//!
//! End: when the local session writing the directory is no longer listed by `lttng list`
//! (`lttng destroy` returns after the last packets are written), when nothing grew for
//! `idle_timeout`, or when `shutdown` resolves (Ctrl-C). The follower then sends everything
//! complete and closes the relay session like `lttng destroy`.

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use trelay_proto::ctf::index::IndexEntry;

use super::send::names_for;
use super::{local_session, ShipError, ShipReport, Shipper};
use crate::sender::SessionConfig;
use crate::trace::walk;
use crate::url::RelayUrl;

/// Packets taken from one stream per poll round at most.
const MAX_PACKETS_PER_ROUND: usize = 1024;
/// How often the directory tree and the local session list are re-read.
const RESCAN: Duration = Duration::from_secs(1);

/// Options of [`follow`].
#[derive(Debug, Clone)]
pub struct FollowOptions {
    /// The directory the local session writes (its `--output`).
    pub dir: PathBuf,
    /// The relay.
    pub url: RelayUrl,
    /// Relay session name (default: the trace's `env.trace_name`).
    pub session: Option<String>,
    /// Hostname (default: the trace's `env.hostname`).
    pub hostname: Option<String>,
    /// Live timer in µs (beacon period); must be > 0.
    pub live_timer_us: u32,
    /// The local channels' switch-timer period in µs, if the user vouches for one.
    pub flush_interval_us: Option<u64>,
    /// How often files are checked for growth.
    pub poll: Duration,
    /// End after this long without growth (default: only when the session ends or on signal).
    pub idle_timeout: Option<Duration>,
    /// Watch `lttng list` for the end of the local session.
    pub watch_session: bool,
    /// Most SEND_INDEX replies in flight.
    pub index_window: usize,
    /// How long closing may wait for the relay.
    pub close_timeout: Duration,
    /// Show progress when standard error is a terminal.
    pub progress: bool,
}

impl FollowOptions {
    /// Defaults: 1 s live timer, 100 ms polling, session watching on.
    pub fn new(dir: PathBuf, url: RelayUrl) -> Self {
        FollowOptions {
            dir,
            url,
            session: None,
            hostname: None,
            live_timer_us: 1_000_000,
            flush_interval_us: None,
            poll: Duration::from_millis(100),
            idle_timeout: None,
            watch_session: true,
            index_window: 0,
            close_timeout: Duration::from_secs(30),
            progress: true,
        }
    }
}

/// Why following stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    SessionGone,
    Idle,
    Signal,
}

/// Follows the trace under `opts.dir` until it ends (see the module docs).
pub async fn follow(
    opts: &FollowOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<ShipReport, ShipError> {
    tokio::pin!(shutdown);
    let start = Instant::now();
    let mut watching = opts.watch_session;
    if watching {
        match local_session::listed_paths().await {
            Some(p) if local_session::writes_to(&p, &opts.dir) => {}
            _ => {
                tracing::warn!(dir = %opts.dir.display(),
                    "no local LTTng session writes this directory; following until Ctrl-C or idle timeout");
                watching = false;
            }
        }
    }

    // Wait for the first trace directory (streams appear when an application registers) and the
    // first byte of its metadata, which tells the trace format the session is created with.
    let (traces, trace_format) = loop {
        let t = walk::walk(&opts.dir).or_else(|e| match e {
            crate::trace::TraceError::Io { .. } => Ok(Vec::new()),
            e => Err(e),
        })?;
        if let Some(f) = t
            .iter()
            .find_map(|t| crate::trace::metadata::trace_format_of(&t.metadata))
        {
            break (t, f);
        }
        let gone = watching && !session_listed(&opts.dir).await;
        tokio::select! {
            _ = &mut shutdown => return Err(ShipError::NoTrace(opts.dir.clone())),
            _ = tokio::time::sleep(RESCAN) => {}
        }
        if gone || opts.idle_timeout.is_some_and(|d| start.elapsed() > d) {
            return Err(ShipError::NoTrace(opts.dir.clone()));
        }
    };
    let (name, hostname) = names_for(
        &traces,
        &opts.dir,
        opts.session.as_deref(),
        opts.hostname.as_deref(),
    );
    let mut cfg = SessionConfig::new(&name, &hostname);
    cfg.live_timer_us = opts.live_timer_us.max(1);
    cfg.index_window = opts.index_window;
    cfg.trace_format = trace_format;
    let mut sh = Shipper::connect(&opts.url, &cfg, opts.progress, None, true).await?;
    sync_tree(&mut sh, traces).await?;

    let live = Duration::from_micros(u64::from(opts.live_timer_us.max(1)));
    let mut next_beacon = Instant::now() + live;
    let mut next_rescan = Instant::now() + RESCAN;
    let mut last_growth = Instant::now();
    let end = loop {
        if pump(&mut sh).await? > 0 {
            last_growth = Instant::now();
        }
        if Instant::now() >= next_beacon {
            beacons(&mut sh, opts.flush_interval_us).await?;
            next_beacon = Instant::now() + live;
        }
        if Instant::now() >= next_rescan {
            let found = walk::walk(&opts.dir)?;
            sync_tree(&mut sh, found).await?;
            if watching && !session_listed(&opts.dir).await {
                break End::SessionGone;
            }
            next_rescan = Instant::now() + RESCAN;
        }
        if opts.idle_timeout.is_some_and(|d| last_growth.elapsed() > d) {
            break End::Idle;
        }
        tokio::select! {
            _ = &mut shutdown => break End::Signal,
            _ = tokio::time::sleep(opts.poll) => {}
        }
    };
    tracing::info!(reason = ?end, "local trace ended; sending what remains and closing");
    let found = walk::walk(&opts.dir)?;
    sync_tree(&mut sh, found).await?;
    while pump(&mut sh).await? > 0 {}
    sh.finish(opts.close_timeout, start).await
}

async fn session_listed(dir: &std::path::Path) -> bool {
    match local_session::listed_paths().await {
        Some(p) => local_session::writes_to(&p, dir),
        // `lttng` failing transiently is not the end of the session.
        None => true,
    }
}

/// Announces trace directories and stream files not announced yet.
async fn sync_tree(sh: &mut Shipper, found: Vec<walk::TraceDir>) -> Result<(), ShipError> {
    for dir in found {
        match sh
            .traces
            .iter()
            .position(|t| t.dir.relay_path == dir.relay_path)
        {
            None => {
                sh.add_trace(dir).await?;
            }
            Some(t) => {
                let known = &sh.traces[t].dir.streams;
                let new: Vec<_> = dir
                    .streams
                    .into_iter()
                    .filter(|f| !known.iter().any(|k| k.name == f.name))
                    .collect();
                sh.add_streams(t, new).await?;
            }
        }
    }
    Ok(())
}

/// One round: complete packets of every stream, then new metadata, then the packets in time
/// order. Returns the bytes sent.
async fn pump(sh: &mut Shipper) -> Result<u64, ShipError> {
    let mut ready: Vec<(u64, usize, usize, IndexEntry)> = Vec::new();
    for (t, tr) in sh.traces.iter_mut().enumerate() {
        for (s, st) in tr.streams.iter_mut().enumerate() {
            for _ in 0..MAX_PACKETS_PER_ROUND {
                match st.src.next_packet()? {
                    Some(e) => ready.push((e.timestamp_begin, t, s, e)),
                    None => break,
                }
            }
        }
    }
    let mut sent = 0;
    for t in 0..sh.traces.len() {
        sent += sh.pump_metadata(t).await?;
    }
    ready.sort_by_key(|r| (r.0, r.1, r.2));
    for (_, t, s, e) in &ready {
        sh.send_packet(*t, *s, e).await?;
        sent += e.packet_size / 8;
    }
    Ok(sent)
}

/// A beacon round (see the module docs for the dates).
async fn beacons(sh: &mut Shipper, flush_interval_us: Option<u64>) -> Result<(), ShipError> {
    let any_active = sh.traces.iter().flat_map(|t| &t.streams).any(|s| s.active);
    if !any_active {
        return Ok(());
    }
    for t in 0..sh.traces.len() {
        let estimate = flush_interval_us.and_then(|f| {
            let c = sh.traces[t].clock.as_ref()?;
            Some(c.now()?.saturating_sub(c.cycles(f.saturating_mul(2))))
        });
        for s in 0..sh.traces[t].streams.len() {
            let st = &sh.traces[t].streams[s];
            if st.active {
                continue;
            }
            let ts = match (st.last_ts_end, estimate) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            if let Some(ts) = ts {
                sh.send_beacon(t, s, ts).await?;
            }
        }
    }
    for st in sh.traces.iter_mut().flat_map(|t| t.streams.iter_mut()) {
        st.active = false;
    }
    Ok(())
}
