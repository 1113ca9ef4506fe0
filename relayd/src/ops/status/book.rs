//! [`Book`]: what the status page shows beyond the registry's own state — each session's rate
//! history (one sample a second, five minutes), the last notable events, and the live viewers
//! attached (with their addresses).
//!
//! Its locks are taken by the sampler once a second, by live viewers when they attach or
//! detach, and by status requests; never by ingest.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use trelay_proto::status::{Event, SessionArchive, ViewerRow};
use trelay_proto::SessionId;

/// How many notable events are kept.
pub const EVENTS_KEPT: usize = 100;

/// How many one-second rate samples are kept per session (five minutes).
pub const HISTORY_SAMPLES: usize = 300;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The sampler's record of one session.
#[derive(Debug, Clone, Default)]
pub struct Track {
    /// Bytes per second, oldest first.
    pub rates: VecDeque<u64>,
    /// The byte count at the last sample.
    pub bytes: u64,
    /// When the last sample was taken.
    pub at: Option<Instant>,
    /// The rate over the last sample interval.
    pub rate: f64,
    /// Loss counts at the last sample: lost, unindexed, sequence gaps, discarded events.
    pub loss: [u64; 4],
    /// Disk full at the last sample.
    pub disk_full: bool,
    /// Failed at the last sample.
    pub failed: bool,
    /// The session directory (for the closing event).
    pub dir: String,
}

impl Track {
    /// Records `bytes` at `now`: the rate since the previous sample goes into the history.
    pub fn sample(&mut self, bytes: u64, now: Instant) {
        if let Some(at) = self.at {
            let dt = now.saturating_duration_since(at).as_secs_f64();
            let delta = bytes.saturating_sub(self.bytes);
            self.rate = if dt > 0.0 { delta as f64 / dt } else { 0.0 };
            if self.rates.len() >= HISTORY_SAMPLES {
                self.rates.pop_front();
            }
            self.rates.push_back(self.rate.round() as u64);
        }
        self.bytes = bytes;
        self.at = Some(now);
    }
}

#[derive(Debug, Clone)]
struct Viewer {
    ticket: u64,
    session: SessionId,
    row: ViewerRow,
    positions: Arc<Positions>,
}

/// The next entry number a viewer will be sent, per data stream (its own small lock, taken by
/// that viewer's index requests and by the status page).
#[derive(Debug, Default)]
pub struct Positions(Mutex<HashMap<u64, u64>>);

impl Positions {
    /// `(stream id, next entry)` pairs, by stream id.
    pub fn list(&self) -> Vec<(u64, u64)> {
        let mut v: Vec<(u64, u64)> = lock(&self.0).iter().map(|(k, n)| (*k, *n)).collect();
        v.sort_unstable();
        v
    }
}

/// The status page's records (one per relay, in the registry).
#[derive(Debug)]
pub struct Book {
    started: SystemTime,
    events: Mutex<VecDeque<Event>>,
    viewers: Mutex<Vec<Viewer>>,
    tracks: Mutex<HashMap<SessionId, Track>>,
    next_ticket: AtomicU64,
    /// Bytes under the output folder at the last retention run, plus one (0: never measured).
    retention_used: AtomicU64,
    /// Per session directory, its archive state at the archiver's last pass.
    archive: Mutex<HashMap<String, SessionArchive>>,
}

impl Default for Book {
    fn default() -> Self {
        Book {
            started: SystemTime::now(),
            events: Mutex::new(VecDeque::with_capacity(EVENTS_KEPT)),
            viewers: Mutex::new(Vec::new()),
            tracks: Mutex::new(HashMap::new()),
            next_ticket: AtomicU64::new(0),
            retention_used: AtomicU64::new(0),
            archive: Mutex::new(HashMap::new()),
        }
    }
}

impl Book {
    /// When the relay started (seconds since the Unix epoch) and how long ago (seconds).
    pub fn started(&self) -> (u64, u64) {
        let at = self
            .started
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let up = self.started.elapsed().map(|d| d.as_secs()).unwrap_or(0);
        (at, up)
    }

    /// A retention run measured `used` bytes under the output folder.
    pub fn retention_measured(&self, used: u64) {
        self.retention_used
            .store(used.saturating_add(1), Ordering::Relaxed);
    }

    /// Bytes under the output folder at the last retention run, if one ran.
    pub fn retention_used(&self) -> Option<u64> {
        self.retention_used.load(Ordering::Relaxed).checked_sub(1)
    }

    /// Records a notable event (the oldest goes past [`EVENTS_KEPT`]).
    pub fn event(&self, kind: &str, session: Option<&str>, message: String) {
        let mut e = lock(&self.events);
        if e.len() >= EVENTS_KEPT {
            e.pop_front();
        }
        e.push_back(Event {
            time_ms: now_ms(),
            kind: kind.to_owned(),
            session: session.map(str::to_owned),
            message,
        });
    }

    /// The events kept, newest first.
    pub fn events(&self) -> Vec<Event> {
        lock(&self.events).iter().rev().cloned().collect()
    }

    /// A live viewer from `peer` (viewer session `viewer`) attached to session `session`
    /// (directory `dir`); it stays listed until the registration is dropped.
    pub fn viewer_attached(
        self: &Arc<Self>,
        session: SessionId,
        dir: &str,
        peer: &str,
        viewer: u64,
    ) -> ViewerRegistration {
        let ticket = self.next_ticket.fetch_add(1, Ordering::Relaxed);
        let positions = Arc::new(Positions::default());
        lock(&self.viewers).push(Viewer {
            positions: positions.clone(),
            ticket,
            session,
            row: ViewerRow {
                peer: peer.to_owned(),
                viewer,
                attached_at: now_ms() / 1000,
                streams: 0,
                lag_packets: 0,
            },
        });
        self.event(
            "viewer-attached",
            Some(dir),
            format!("viewer {peer} attached"),
        );
        ViewerRegistration {
            book: self.clone(),
            ticket,
            dir: dir.to_owned(),
            positions,
        }
    }

    /// The viewers attached to `session`, each with its positions (lag not filled in).
    pub fn viewers(&self, session: SessionId) -> Vec<(ViewerRow, Arc<Positions>)> {
        lock(&self.viewers)
            .iter()
            .filter(|v| v.session == session)
            .map(|v| (v.row.clone(), v.positions.clone()))
            .collect()
    }

    /// The archiver's last pass found these sessions (by directory) in these states.
    pub fn archive_passed(&self, states: HashMap<String, SessionArchive>) {
        *lock(&self.archive) = states;
    }

    /// The archive state of the session in directory `dir`, if the archiver's last pass saw it.
    pub fn archive_state(&self, dir: &str) -> Option<SessionArchive> {
        lock(&self.archive).get(dir).cloned()
    }

    /// Runs `f` over the sampler's tracks (the sampler and the page only).
    pub fn with_tracks<R>(&self, f: impl FnOnce(&mut HashMap<SessionId, Track>) -> R) -> R {
        f(&mut lock(&self.tracks))
    }

    /// The rate and history of `session` (zero and empty before its first samples).
    pub fn track(&self, session: SessionId) -> (f64, Vec<u64>) {
        lock(&self.tracks)
            .get(&session)
            .map(|t| (t.rate, t.rates.iter().copied().collect()))
            .unwrap_or_default()
    }
}

/// A viewer listed by the [`Book`] while this lives.
#[derive(Debug)]
pub struct ViewerRegistration {
    book: Arc<Book>,
    ticket: u64,
    dir: String,
    positions: Arc<Positions>,
}

impl ViewerRegistration {
    /// The viewer's next entry on data stream `stream` is `next`.
    pub fn position(&self, stream: u64, next: u64) {
        lock(&self.positions.0).insert(stream, next);
    }
}

impl Drop for ViewerRegistration {
    fn drop(&mut self) {
        let gone = {
            let mut v = lock(&self.book.viewers);
            let i = v.iter().position(|v| v.ticket == self.ticket);
            i.map(|i| v.swap_remove(i))
        };
        if let Some(v) = gone {
            self.book.event(
                "viewer-detached",
                Some(&self.dir),
                format!("viewer {} detached", v.row.peer),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn events_are_bounded_and_newest_first() {
        let b = Book::default();
        for i in 0..(EVENTS_KEPT + 5) {
            b.event("loss", None, format!("e{i}"));
        }
        let e = b.events();
        assert_eq!(e.len(), EVENTS_KEPT);
        assert_eq!(e[0].message, format!("e{}", EVENTS_KEPT + 4));
        assert_eq!(e[EVENTS_KEPT - 1].message, "e5");
    }

    #[test]
    fn history_keeps_five_minutes_of_rates() {
        let mut t = Track::default();
        let t0 = Instant::now();
        for i in 0..=(HISTORY_SAMPLES as u64 + 10) {
            t.sample(i * 1000, t0 + Duration::from_secs(i));
        }
        assert_eq!(t.rates.len(), HISTORY_SAMPLES);
        assert!(t.rates.iter().all(|&r| r == 1000), "{:?}", t.rates);
        assert_eq!(t.rate, 1000.0);
    }

    #[test]
    fn viewers_are_listed_while_registered() {
        let b = Arc::new(Book::default());
        let r = b.viewer_attached(SessionId(4), "h/s", "127.0.0.1:5000", 9);
        assert_eq!(b.viewers(SessionId(4)).len(), 1);
        assert_eq!(b.viewers(SessionId(4))[0].0.peer, "127.0.0.1:5000");
        r.position(7, 3);
        r.position(7, 5);
        r.position(2, 1);
        assert_eq!(b.viewers(SessionId(4))[0].1.list(), [(2, 1), (7, 5)]);
        assert!(b.viewers(SessionId(5)).is_empty());
        drop(r);
        assert!(b.viewers(SessionId(4)).is_empty());
        let kinds: Vec<_> = b.events().into_iter().map(|e| e.kind).collect();
        assert_eq!(kinds, ["viewer-detached", "viewer-attached"]);
    }
}
