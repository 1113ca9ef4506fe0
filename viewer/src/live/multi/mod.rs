//! Following one session across many relays (one command, many servers): each relay is followed
//! by its own thread over its own live connection, and what they receive goes into one mirror
//! ([`mirror_all`]: `OUTPUT/<relay name>/…`, which babeltrace2 reads as one trace set) or one
//! output merged by timestamp ([`tail::tail_all`], the rule in [`merge`]).
//!
//! A relay that cannot be reached, or whose connection is lost, is tried again with backoff
//! (200 ms doubling to 5 s) and reported `retrying`; after `give_up` without a connection it is
//! reported `failed` and left — the others go on. A reconnect attaches the session again from
//! its beginning; the sinks skip what they already hold (packet sequence numbers, metadata
//! offsets), so nothing comes out twice. Where each relay is ([`progress`]) goes to stderr
//! periodically and at the end.

pub mod merge;
pub mod progress;
pub mod tail;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use trelay_proto::StreamId;

use super::client::{Packet, Sink};
use super::files::safe_component;
use super::mirror::{open, LiveOptions, MirrorSink};
use super::LiveError;
use crate::report::PacketLine;
use crate::tsdl::Clock;
use crate::url::LiveUrl;
use progress::{Board, RelayStatus, State};

/// One relay to follow: `[NAME=]URL`. The name (one path component; by default `HOST_PORT`)
/// is its mirror subfolder and the tag of its lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelaySpec {
    /// Its name.
    pub name: String,
    /// Its URL.
    pub url: LiveUrl,
}

impl std::str::FromStr for RelaySpec {
    type Err = String;

    fn from_str(s: &str) -> Result<RelaySpec, String> {
        let (name, url) = match s.split_once('=') {
            Some((n, u)) if !n.contains("://") => (Some(n), u),
            _ => (None, s),
        };
        let url: LiveUrl = url.parse()?;
        let name = match name {
            Some(n) => n.to_owned(),
            None => format!("{}_{}", url.host.replace(':', "-"), url.port),
        };
        if name.starts_with('.') {
            return Err(format!("relay name {name:?} must not start with a dot"));
        }
        safe_component(&name).map_err(|e| format!("relay name: {e}"))?;
        Ok(RelaySpec { name, url })
    }
}

/// How several relays are followed.
#[derive(Debug, Clone)]
pub struct MultiOptions {
    /// The relays.
    pub relays: Vec<RelaySpec>,
    /// The options every relay shares (their `url` is replaced by each relay's).
    pub base: LiveOptions,
    /// How long a relay may stay unreachable before it is given up.
    pub give_up: Duration,
    /// How often progress is printed (zero: only at the end).
    pub progress: Duration,
}

impl MultiOptions {
    /// Checks that relay names are distinct.
    pub fn check(&self) -> Result<(), String> {
        let mut names: Vec<&str> = self.relays.iter().map(|r| r.name.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w.first() == w.get(1)) {
            return Err(format!(
                "two relays are named {:?}; name them NAME=URL",
                w.first().unwrap_or(&"")
            ));
        }
        if self.relays.is_empty() {
            return Err("no relay URL".into());
        }
        Ok(())
    }

    fn relay_options(&self, r: &RelaySpec) -> LiveOptions {
        let mut o = self.base.clone();
        o.url = r.url.clone();
        o
    }

    fn board(&self) -> Board {
        let relays: Vec<(String, String)> = self
            .relays
            .iter()
            .map(|r| (r.name.clone(), r.url.relay()))
            .collect();
        Board::new(&relays)
    }
}

/// Counts what a relay's sink takes into the progress board.
struct Counted<'a, S> {
    inner: S,
    board: &'a Board,
    relay: usize,
}

impl<S: Sink> Sink for Counted<'_, S> {
    fn metadata(&mut self, dir: &Path, offset: u64, data: &[u8]) -> Result<(), LiveError> {
        self.inner.metadata(dir, offset, data)
    }
    fn packet(&mut self, p: &Packet<'_>) -> Result<bool, LiveError> {
        let new = self.inner.packet(p)?;
        if new {
            let end = p.clock.map_or(i128::from(p.entry.timestamp_end), |c| {
                c.to_epoch_ns(p.entry.timestamp_end)
            });
            self.board.update(self.relay, |s| {
                s.packets += 1;
                s.bytes = s.bytes.saturating_add(p.bytes.len() as u64);
                s.last_ns = Some(s.last_ns.map_or(end, |l| l.max(end)));
            });
        }
        Ok(new)
    }
    fn added(&mut self, stream: StreamId) {
        self.inner.added(stream)
    }
    fn quiet(&mut self, stream: StreamId, timestamp: u64, clock: Option<&Clock>) {
        self.inner.quiet(stream, timestamp, clock)
    }
    fn ended(&mut self, stream: StreamId) {
        self.inner.ended(stream)
    }
    fn restart(&mut self) {
        self.inner.restart()
    }
}

fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) {
    let until = Instant::now() + d;
    while !stop.load(Ordering::Relaxed) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20).min(until - Instant::now()));
    }
}

/// Follows one relay until its session ends, a stop request, or it is given up; returns the
/// final state (also on the board).
fn follow<S: Sink>(
    opts: &LiveOptions,
    give_up: Duration,
    stop: &AtomicBool,
    board: &Board,
    relay: usize,
    sink: S,
) -> State {
    let mut sink = Counted {
        inner: sink,
        board,
        relay,
    };
    let mut backoff = Duration::from_millis(200);
    let mut down_since: Option<Instant> = None;
    let mut connected_before = false;
    let end = loop {
        if stop.load(Ordering::Relaxed) {
            break State::Detached;
        }
        sink.restart();
        let run = open(opts, stop, &mut sink).and_then(|mut c| {
            board.update(relay, |s| {
                s.state = State::Connected;
                s.error = None;
                if connected_before {
                    s.reconnects += 1;
                }
            });
            connected_before = true;
            down_since = None;
            backoff = Duration::from_millis(200);
            c.run().map(|()| c.stats.detached)
        });
        match run {
            Ok(true) => break State::Detached,
            Ok(false) => break State::Ended,
            Err(_) if stop.load(Ordering::Relaxed) => break State::Detached,
            Err(e @ (LiveError::NoSession { .. } | LiveError::Write(..))) => {
                board.update(relay, |s| s.error = Some(e.to_string()));
                break State::Failed;
            }
            Err(e) => {
                let since = *down_since.get_or_insert_with(Instant::now);
                board.update(relay, |s| {
                    s.state = State::Retrying;
                    s.error = Some(e.to_string());
                });
                if since.elapsed() >= give_up {
                    break State::Failed;
                }
                sleep_unless_stopped(backoff, stop);
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    };
    board.update(relay, |s| s.state = end);
    end
}

/// What a multi-relay run ended with.
#[derive(Debug, Clone)]
pub struct MultiReport {
    /// Each relay's final status.
    pub relays: Vec<RelayStatus>,
    /// Packets released out of timestamp order (`tail` only).
    pub late: u64,
}

impl MultiReport {
    /// Whether every relay ended (or detached on request) rather than failing.
    pub fn all_ok(&self) -> bool {
        self.relays.iter().all(|r| r.state != State::Failed)
    }
}

/// Mirrors the session on every relay into `base.output/<relay name>/…`, calling `out` with
/// each packet written (and its relay's name), until every relay ended or was given up, or
/// `stop`.
pub fn mirror_all<F>(opts: &MultiOptions, stop: &AtomicBool, out: F) -> Result<MultiReport, String>
where
    F: FnMut(&str, &PacketLine) -> std::io::Result<()> + Send,
{
    opts.check()?;
    let board = opts.board();
    let out = Mutex::new(out);
    let done = Arc::new(AtomicBool::new(false));
    let reporter = board.report_every("trelay-viewer live", opts.progress, done.clone());
    std::thread::scope(|scope| {
        for (i, r) in opts.relays.iter().enumerate() {
            let (board, out) = (&board, &out);
            let o = opts.relay_options(r);
            scope.spawn(move || {
                let sink = MirrorSink::new(o.output.join(&r.name), |line: &PacketLine| {
                    let mut f = out.lock().unwrap_or_else(|p| p.into_inner());
                    (f)(&r.name, line)
                });
                follow(&o, opts.give_up, stop, board, i, sink)
            });
        }
    });
    done.store(true, Ordering::Relaxed);
    if let Some(r) = reporter {
        let _ = r.join();
    }
    Ok(MultiReport {
        relays: board.snapshot(),
        late: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_specs() {
        let r: RelaySpec = "edge-a=net://10.0.0.1:7000".parse().unwrap();
        assert_eq!((r.name.as_str(), r.url.port), ("edge-a", 7000));
        let r: RelaySpec = "tls+net://[::1]".parse().unwrap();
        assert_eq!(r.name, "--1_5345");
        for bad in [
            "../x=net://h",
            ".x=net://h",
            "a/b=net://h",
            "=net://h",
            "x=tcp://h",
        ] {
            assert!(bad.parse::<RelaySpec>().is_err(), "{bad}");
        }
    }
}
