//! `send`: ship a finished local trace to a relay.
//!
//! Every trace directory is announced and its metadata sent before any data packet. Packets of
//! all streams then go out in `timestamp_begin` order (a k-way merge over the streams' index
//! entries, read lazily), so a live viewer attached meanwhile sees time advance evenly. In a
//! live session, streams that have nothing left get a beacon every live interval dated with the
//! newest packet end of their trace, which lets a viewer move past them. The session is closed
//! like `lttng destroy` does.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use trelay_proto::ctf::index::IndexEntry;

use super::{ShipError, ShipReport, Shipper};
use crate::sender::SessionConfig;
use crate::trace::metadata::read_tsdl;
use crate::trace::walk;
use crate::url::RelayUrl;

/// Options of [`send`].
#[derive(Debug, Clone)]
pub struct SendOptions {
    /// The local trace (session output directory or a single trace directory).
    pub dir: PathBuf,
    /// The relay.
    pub url: RelayUrl,
    /// Relay session name (default: the trace's `env.trace_name`, else the directory name).
    pub session: Option<String>,
    /// Hostname (default: the trace's `env.hostname`, else this machine's).
    pub hostname: Option<String>,
    /// Live timer in µs (0: not live).
    pub live_timer_us: u32,
    /// Most SEND_INDEX replies in flight.
    pub index_window: usize,
    /// How long closing may wait for the relay.
    pub close_timeout: Duration,
    /// Show a progress bar when standard error is a terminal.
    pub progress: bool,
}

impl SendOptions {
    /// Options with defaults for everything but the trace and the relay.
    pub fn new(dir: PathBuf, url: RelayUrl) -> Self {
        SendOptions {
            dir,
            url,
            session: None,
            hostname: None,
            live_timer_us: 0,
            index_window: 0,
            close_timeout: Duration::from_secs(30),
            progress: true,
        }
    }
}

pub use crate::trace::metadata::env_string;

/// This machine's host name.
pub fn local_hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Session name and hostname for a trace: explicit values, else its metadata's, else defaults.
pub fn names_for(
    traces: &[walk::TraceDir],
    dir: &std::path::Path,
    session: Option<&str>,
    hostname: Option<&str>,
) -> (String, String) {
    let tsdl = traces
        .first()
        .and_then(|t| read_tsdl(&t.metadata).ok())
        .unwrap_or_default();
    let session = session
        .map(str::to_owned)
        .or_else(|| env_string(&tsdl, "trace_name"))
        .filter(|s| walk::valid_component(s))
        .or_else(|| {
            dir.canonicalize()
                .ok()
                .and_then(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_owned))
        })
        .filter(|s| walk::valid_component(s))
        .unwrap_or_else(|| "trace".to_owned());
    let hostname = hostname
        .map(str::to_owned)
        .or_else(|| env_string(&tsdl, "hostname"))
        .filter(|s| walk::valid_component(s))
        .unwrap_or_else(local_hostname);
    (session, hostname)
}

/// Ships the trace under `opts.dir` to the relay and closes the session.
pub async fn send(opts: &SendOptions) -> Result<ShipReport, ShipError> {
    let start = Instant::now();
    let traces = walk::walk(&opts.dir)?;
    if traces.is_empty() {
        return Err(ShipError::NoTrace(opts.dir.clone()));
    }
    let (name, hostname) = names_for(
        &traces,
        &opts.dir,
        opts.session.as_deref(),
        opts.hostname.as_deref(),
    );
    let total: u64 = traces
        .iter()
        .flat_map(|t| {
            t.streams
                .iter()
                .map(|s| s.data.clone())
                .chain([t.metadata.clone()])
        })
        .filter_map(|p| std::fs::metadata(p).ok().map(|m| m.len()))
        .sum();
    let mut cfg = SessionConfig::new(&name, &hostname);
    cfg.live_timer_us = opts.live_timer_us;
    cfg.index_window = opts.index_window;
    cfg.trace_format = traces
        .iter()
        .find_map(|t| crate::trace::metadata::trace_format_of(&t.metadata))
        .unwrap_or_default();
    let mut sh = Shipper::connect(&opts.url, &cfg, opts.progress, Some(total), false).await?;
    for t in traces {
        sh.add_trace(t).await?;
    }

    // k-way merge on timestamp_begin.
    let mut heads: Vec<Vec<Option<IndexEntry>>> = Vec::new();
    let mut heap = BinaryHeap::new();
    for (t, tr) in sh.traces.iter_mut().enumerate() {
        let mut row = Vec::new();
        for (s, st) in tr.streams.iter_mut().enumerate() {
            let e = st.src.next_packet()?;
            if let Some(e) = &e {
                heap.push(Reverse((e.timestamp_begin, t, s)));
            }
            row.push(e);
        }
        heads.push(row);
    }
    let live =
        (opts.live_timer_us > 0).then(|| Duration::from_micros(u64::from(opts.live_timer_us)));
    let mut next_beacon = live.map(|d| Instant::now() + d);
    while let Some(Reverse((_, t, s))) = heap.pop() {
        let Some(e) = heads[t][s].take() else {
            continue;
        };
        sh.send_packet(t, s, &e).await?;
        let next = sh.traces[t].streams[s].src.next_packet()?;
        if let Some(n) = &next {
            heap.push(Reverse((n.timestamp_begin, t, s)));
        }
        heads[t][s] = next;
        if let (Some(period), Some(at)) = (live, next_beacon) {
            if Instant::now() >= at {
                beacon_exhausted(&mut sh, &heads).await?;
                next_beacon = Some(Instant::now() + period);
            }
        }
    }
    if live.is_some() {
        beacon_exhausted(&mut sh, &heads).await?;
    }
    sh.finish(opts.close_timeout, start).await
}

/// Beacons for streams with nothing left, dated with their trace's newest packet end. Only when
/// a packet went out since the last round.
async fn beacon_exhausted(
    sh: &mut Shipper,
    heads: &[Vec<Option<IndexEntry>>],
) -> Result<(), ShipError> {
    let any_active = sh.traces.iter().flat_map(|t| &t.streams).any(|s| s.active);
    if !any_active {
        return Ok(());
    }
    for (t, row) in heads.iter().enumerate() {
        let Some(ts) = sh.traces[t].max_ts_end() else {
            continue;
        };
        for (s, head) in row.iter().enumerate() {
            if head.is_none() && sh.traces[t].streams[s].last_ts_end.is_some() {
                sh.send_beacon(t, s, ts).await?;
            }
        }
    }
    for st in sh.traces.iter_mut().flat_map(|t| t.streams.iter_mut()) {
        st.active = false;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_values() {
        let tsdl = b"trace {};\nenv {\n\thostname = \"vm\";\n\ttrace_name = \"s1\";\n\tdomain = \"ust\";\n};\n";
        assert_eq!(env_string(tsdl, "hostname").as_deref(), Some("vm"));
        assert_eq!(env_string(tsdl, "trace_name").as_deref(), Some("s1"));
        assert_eq!(env_string(tsdl, "name"), None);
        assert_eq!(env_string(b"", "hostname"), None);
    }
}
