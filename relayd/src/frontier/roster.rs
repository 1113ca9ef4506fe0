//! [`Roster`]: the streams a session announced to viewers and the viewers attached to it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use trelay_proto::StreamId;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[derive(Debug)]
struct Entry<S> {
    id: StreamId,
    is_metadata: bool,
    stream: S,
    closed_at: Option<u64>,
}

#[derive(Debug)]
struct LogInner<S> {
    streams: Vec<Entry<S>>,
    viewers: Vec<(u64, u64)>,
    next_ticket: u64,
}

/// The streams a session announced to viewers and the viewers attached to it.
///
/// A stream is announced at the first commit after it was published (STREAMS_SENT) and stays in
/// the roster after it closes until every attached viewer has taken the streams announced up to its
/// close, so an application that registers, traces and exits between two polls of a viewer is
/// still seen by it.
#[derive(Debug)]
pub struct Roster<S> {
    inner: Mutex<LogInner<S>>,
    generation: AtomicU64,
}

impl<S> Default for Roster<S> {
    fn default() -> Self {
        Roster {
            inner: Mutex::new(LogInner {
                streams: Vec::new(),
                viewers: Vec::new(),
                next_ticket: 0,
            }),
            generation: AtomicU64::new(0),
        }
    }
}

impl<S: Clone> Roster<S> {
    fn bump(&self) -> u64 {
        self.generation
            .fetch_add(1, Ordering::AcqRel)
            .saturating_add(1)
    }

    /// Adds a published stream.
    pub fn announce(&self, id: StreamId, is_metadata: bool, stream: S) {
        let mut l = lock(&self.inner);
        self.bump();
        l.streams.push(Entry {
            id,
            is_metadata,
            stream,
            closed_at: None,
        });
    }

    /// Records that an announced stream closed.
    pub fn closed(&self, id: StreamId) {
        let mut l = lock(&self.inner);
        let g = self.bump();
        for e in l.streams.iter_mut().filter(|e| e.id == id) {
            e.closed_at.get_or_insert(g);
        }
        prune(&mut l);
    }

    /// The generation and the announced streams.
    pub fn snapshot(&self) -> (u64, Vec<S>) {
        let l = lock(&self.inner);
        let g = self.generation();
        (g, l.streams.iter().map(|e| e.stream.clone()).collect())
    }

    /// Announced metadata streams still open (committed with every commit of the session's
    /// data, so a viewer never gets a packet whose metadata is not visible yet).
    pub fn metadata_streams(&self) -> Vec<S> {
        let l = lock(&self.inner);
        l.streams
            .iter()
            .filter(|e| e.is_metadata && e.closed_at.is_none())
            .map(|e| e.stream.clone())
            .collect()
    }

    /// Changes whenever a stream is announced or closes.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Registers a viewer; returns its ticket number.
    pub fn register(&self) -> u64 {
        let mut l = lock(&self.inner);
        let t = l.next_ticket;
        l.next_ticket = l.next_ticket.wrapping_add(1);
        l.viewers.push((t, 0));
        t
    }

    /// The viewer `ticket` took every stream announced up to `generation`.
    pub fn scanned(&self, ticket: u64, generation: u64) {
        let mut l = lock(&self.inner);
        for v in l.viewers.iter_mut().filter(|v| v.0 == ticket) {
            v.1 = v.1.max(generation);
        }
        prune(&mut l);
    }

    /// Unregisters a viewer.
    pub fn unregister(&self, ticket: u64) {
        let mut l = lock(&self.inner);
        l.viewers.retain(|v| v.0 != ticket);
        prune(&mut l);
    }

    /// Viewers attached.
    pub fn viewers(&self) -> usize {
        lock(&self.inner).viewers.len()
    }
}

/// Forgets closed streams every attached viewer has seen (all of them when none is attached).
fn prune<S>(l: &mut LogInner<S>) {
    let seen = l.viewers.iter().map(|v| v.1).min().unwrap_or(u64::MAX);
    l.streams
        .retain(|e| e.closed_at.is_none_or(|closed| closed > seen));
}
