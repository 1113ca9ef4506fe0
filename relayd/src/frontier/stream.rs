//! [`Frontier`]: the committed state of one stream as viewers see it.
//!
//! The commit group calls [`Frontier::publish`] for every stream it committed, after the data and
//! index files are durable and while it still holds the stream's lock, so a viewer reading the
//! stream's state under that lock sees counters and published entries agree. Publishing bumps a
//! generation counter and wakes viewers waiting for the stream (RETRY pacing).
//!
//! Tracefiles: each [`Segment`] is one index file (and, through it, its data file) with the range
//! of entry numbers committed into it. Segments keep their files open, so a tracefile that is
//! unlinked when `tracefile_count` wraps, or a chunk renamed by a rotation, stays readable for
//! viewers still reading it. A stream keeps at most the number of segments its publisher asks
//! for, never more than [`MAX_SEGMENTS`]; a viewer behind the oldest one is moved forward to it,
//! as lttng-relayd does when a tracefile is overwritten.

use crate::storage::{IndexFile, StorageFile};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

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
    metadata_file: Option<Arc<StorageFile>>,
}

/// What one commit of a stream publishes.
#[derive(Debug)]
pub struct Publish {
    /// Tracefiles to keep readable (clamped to `1..=MAX_SEGMENTS`).
    pub keep: usize,
    /// Metadata streams: the committed bytes and the file holding them.
    pub metadata: Option<(u64, Option<Arc<StorageFile>>)>,
    /// The stream may be shown to viewers (STREAMS_SENT seen).
    pub published: bool,
    /// The stream is closed.
    pub closed: bool,
}

/// What the publisher must tell the session's viewers after a publish.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Announce {
    /// The stream was published for the first time: announce it.
    pub new: bool,
    /// The stream closed since it was announced: report its close.
    pub closed: bool,
}

/// The committed state of a stream, as viewers see it.
#[derive(Debug, Default)]
pub struct Frontier {
    inner: Mutex<Inner>,
    generation: AtomicU64,
    changed: tokio::sync::Notify,
}

impl Frontier {
    /// Publishes a commit: `entries` names the index file of each entry just made durable, in
    /// order. Tells whether the stream must now be announced or reported closed.
    pub fn publish<'a>(
        &self,
        entries: impl Iterator<Item = &'a Arc<IndexFile>>,
        p: Publish,
    ) -> Announce {
        let keep = p.keep.clamp(1, MAX_SEGMENTS);
        let out = {
            let mut v = lock(&self.inner);
            for file in entries {
                let first = v.entries;
                match v.segments.back_mut() {
                    Some(seg) if Arc::ptr_eq(&seg.index, file) => seg.count += 1,
                    _ => v.segments.push_back(Segment {
                        index: file.clone(),
                        first,
                        count: 1,
                    }),
                }
                v.entries = v.entries.saturating_add(1);
            }
            while v.segments.len() > keep {
                v.segments.pop_front();
            }
            if let Some((bytes, file)) = p.metadata {
                v.metadata = bytes;
                if let Some(d) = file {
                    if !v.metadata_file.as_ref().is_some_and(|f| Arc::ptr_eq(f, &d)) {
                        v.metadata_file = Some(d);
                    }
                }
            }
            let new = p.published && !v.announced;
            v.announced |= new;
            let closed = p.closed && v.announced && !v.closed_reported;
            v.closed_reported |= closed;
            Announce { new, closed }
        };
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.changed.notify_waiters();
        out
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
    pub fn metadata(&self) -> (u64, Option<Arc<StorageFile>>) {
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
