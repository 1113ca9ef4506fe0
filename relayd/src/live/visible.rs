//! What viewers may see, published by the commit group: per stream a [`Visible`] (committed
//! entries, the tracefiles holding them, committed metadata bytes), per session a [`SessionLog`]
//! (the streams announced to viewers, and the viewers attached).
//!
//! The commit group calls [`Visible::publish`] for every stream it committed, after the data and
//! index files are durable and while it still holds the stream's lock, so a viewer reading the
//! stream's state under that lock sees counters and published entries agree. Publishing bumps a
//! generation counter and wakes viewers waiting for the stream (RETRY pacing).
//!
//! Tracefiles: each [`Segment`] is one index file (and, through it, its data file) with the range
//! of entry numbers committed into it. Segments keep their files open, so a tracefile that is
//! unlinked when `tracefile_count` wraps, or a chunk renamed by a rotation, stays readable for
//! viewers still reading it. A live stream keeps at most `tracefile_count` segments (when set),
//! never more than [`MAX_SEGMENTS`]; a viewer behind the oldest one is moved forward to it, as
//! lttng-relayd does when a tracefile is overwritten. Non-live streams keep only the newest.

use crate::session::chunk::lock;
use crate::session::files::IndexFile;
use crate::session::stream::{ReadyEntry, Stream, StreamState};
use std::collections::VecDeque;
use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use trelay_proto::StreamId;

/// Most tracefiles a stream keeps open for viewers.
pub const MAX_SEGMENTS: usize = 64;

/// One index file and the committed entries it holds.
#[derive(Debug, Clone)]
pub struct Segment {
    /// The index file (it holds its data file).
    pub index: Arc<IndexFile>,
    /// Stream-wide number of its first entry.
    pub first: u64,
    /// Committed entries in it.
    pub count: u64,
}

impl Segment {
    /// Whether stream-wide entry `n` is in this segment.
    pub fn holds(&self, n: u64) -> bool {
        n >= self.first && n - self.first < self.count
    }
}

#[derive(Debug, Default)]
struct Inner {
    entries: u64,
    segments: VecDeque<Segment>,
    announced: bool,
    closed_reported: bool,
    metadata: u64,
    metadata_file: Option<Arc<File>>,
}

/// The committed state of a stream, as viewers see it.
#[derive(Debug, Default)]
pub struct Visible {
    inner: Mutex<Inner>,
    generation: AtomicU64,
    changed: tokio::sync::Notify,
}

impl Visible {
    /// Publishes a commit of `stream`: `ready` are the entries just made durable, in order; `st`
    /// is the stream's state (its lock is held by the caller). Announces the stream to its
    /// session's viewers once it is published, and reports its close.
    pub fn publish(&self, stream: &Arc<Stream>, st: &StreamState, ready: &[ReadyEntry]) {
        let keep = if stream.session.params.live_timer == 0 {
            1
        } else if stream.tracefile_count > 0 {
            usize::try_from(stream.tracefile_count)
                .unwrap_or(MAX_SEGMENTS)
                .clamp(1, MAX_SEGMENTS)
        } else {
            MAX_SEGMENTS
        };
        let (announce, closed) = {
            let mut v = lock(&self.inner);
            for r in ready {
                let first = v.entries;
                match v.segments.back_mut() {
                    Some(seg) if Arc::ptr_eq(&seg.index, &r.file) => seg.count += 1,
                    _ => v.segments.push_back(Segment {
                        index: r.file.clone(),
                        first,
                        count: 1,
                    }),
                }
                v.entries = v.entries.saturating_add(1);
            }
            while v.segments.len() > keep {
                v.segments.pop_front();
            }
            if stream.is_metadata {
                v.metadata = st.metadata_committed;
                if let Some(d) = &st.data {
                    if !v.metadata_file.as_ref().is_some_and(|f| Arc::ptr_eq(f, d)) {
                        v.metadata_file = Some(d.clone());
                    }
                }
            }
            let announce = st.published && !v.announced;
            v.announced |= announce;
            let closed = st.closed && v.announced && !v.closed_reported;
            v.closed_reported |= closed;
            (announce, closed)
        };
        if announce {
            stream.session.live.announce(stream.clone());
        }
        if closed {
            stream.session.live.closed(stream.id);
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.changed.notify_waiters();
    }

    /// Committed entries and the first one still readable.
    pub fn entries(&self) -> (u64, u64) {
        let v = lock(&self.inner);
        let oldest = v.segments.front().map_or(v.entries, |s| s.first);
        (v.entries, oldest)
    }

    /// The segment holding entry `n`.
    pub fn segment(&self, n: u64) -> Option<Segment> {
        let v = lock(&self.inner);
        v.segments.iter().rev().find(|s| s.holds(n)).cloned()
    }

    /// Committed metadata bytes and the file holding them.
    pub fn metadata(&self) -> (u64, Option<Arc<File>>) {
        let v = lock(&self.inner);
        (v.metadata, v.metadata_file.clone())
    }

    /// Counter bumped by every publish.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Waits until a publish after `generation`, or `deadline`.
    pub async fn changed_since(&self, generation: u64, deadline: tokio::time::Instant) {
        let notified = self.changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.generation() != generation {
            return;
        }
        let _ = tokio::time::timeout_at(deadline, notified).await;
    }
}

#[derive(Debug)]
struct Entry {
    stream: Arc<Stream>,
    closed_at: Option<u64>,
}

#[derive(Debug, Default)]
struct LogInner {
    streams: Vec<Entry>,
    viewers: Vec<(u64, u64)>,
    next_ticket: u64,
}

/// The streams a session announced to viewers and the viewers attached to it.
///
/// A stream is announced at the first commit after it was published (STREAMS_SENT) and stays in
/// the log after it closes until every attached viewer has taken the streams announced up to its
/// close, so an application that registers, traces and exits between two polls of a viewer is
/// still seen by it.
#[derive(Debug, Default)]
pub struct SessionLog {
    inner: Mutex<LogInner>,
    generation: AtomicU64,
}

impl SessionLog {
    fn bump(&self) -> u64 {
        self.generation
            .fetch_add(1, Ordering::AcqRel)
            .saturating_add(1)
    }

    /// Adds a published stream.
    pub fn announce(&self, stream: Arc<Stream>) {
        let mut l = lock(&self.inner);
        self.bump();
        l.streams.push(Entry {
            stream,
            closed_at: None,
        });
    }

    /// Records that an announced stream closed.
    pub fn closed(&self, id: StreamId) {
        let mut l = lock(&self.inner);
        let g = self.bump();
        for e in l.streams.iter_mut().filter(|e| e.stream.id == id) {
            e.closed_at.get_or_insert(g);
        }
        prune(&mut l);
    }

    /// The generation and the announced streams.
    pub fn snapshot(&self) -> (u64, Vec<Arc<Stream>>) {
        let l = lock(&self.inner);
        let g = self.generation();
        (g, l.streams.iter().map(|e| e.stream.clone()).collect())
    }

    /// Announced metadata streams still open (committed with every commit of the session's
    /// data, so a viewer never gets a packet whose metadata is not visible yet).
    pub fn metadata_streams(&self) -> Vec<Arc<Stream>> {
        let l = lock(&self.inner);
        l.streams
            .iter()
            .filter(|e| e.stream.is_metadata && e.closed_at.is_none())
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
fn prune(l: &mut LogInner) {
    let seen = l.viewers.iter().map(|v| v.1).min().unwrap_or(u64::MAX);
    l.streams
        .retain(|e| e.closed_at.is_none_or(|closed| closed > seen));
}
