//! The commit group: the one place where received data becomes durable and visible.
//!
//! For the streams of one session that asked for a commit, in this order:
//! 1. fdatasync every data file written since the previous commit (once per file);
//! 2. append the completed index entries to their index files (one write per file);
//! 3. fdatasync every index file appended to (once per file), then (re)write the loss sidecar
//!    of each stream that lost packets since ([`crate::storage::loss`], from [`CommitQueue::losses`]);
//! 4. advance each stream's committed frontier (entries and metadata bytes viewers may read) and
//!    publish it to live viewers ([`crate::live::Visible::publish`]);
//! 5. release the chunks the streams left, so a chunk is archived (or deleted) only complete.
//!
//! An index entry is therefore never durable before the bytes it points to. With
//! `--durability=none` the order is the same and the fsyncs are skipped. Groups of one session
//! run one at a time on a blocking thread; requests that arrive meanwhile form the next group.
//! A failed fsync or write fails the session (it is not retried).

use super::chunk::lock;
use super::files::IndexFile;
use super::stream::{ReadyEntry, Stream};
use super::Session;
use crate::config::Durability;
use std::fs::File;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use trelay_proto::ctf::index::IndexEntry;

/// Commit requests of one session.
#[derive(Debug, Default)]
pub struct CommitQueue {
    requested: Mutex<Vec<Arc<Stream>>>,
    running: AtomicBool,
    serial: Mutex<()>,
    idle: tokio::sync::Notify,
    /// Loss logs of the session's streams: whoever sees a half expire records it here; the
    /// commit writes the stream's sidecar file.
    pub losses: crate::storage::loss::LossBook,
}

impl CommitQueue {
    /// Adds streams to the next group; returns true if the caller must start a runner.
    pub fn request(&self, streams: impl IntoIterator<Item = Arc<Stream>>) -> bool {
        {
            let mut q = lock(&self.requested);
            for s in streams {
                if !q.iter().any(|x| Arc::ptr_eq(x, &s)) {
                    q.push(s);
                }
            }
            if q.is_empty() {
                return false;
            }
        }
        !self.running.swap(true, Ordering::AcqRel)
    }

    /// Runs groups until no request is left (call on a blocking thread after `request` said so).
    pub fn run(&self, session: &Session, durability: Durability) {
        loop {
            let batch = std::mem::take(&mut *lock(&self.requested));
            if batch.is_empty() {
                self.running.store(false, Ordering::Release);
                let more = !lock(&self.requested).is_empty();
                if more && !self.running.swap(true, Ordering::AcqRel) {
                    continue;
                }
                self.idle.notify_waiters();
                return;
            }
            if let Err(e) = self.commit(&batch, durability) {
                session.fail(format!("commit failed: {e}"));
            }
        }
    }

    /// Waits until no commit of this session is requested or running (at most `limit`).
    pub async fn idle(&self, limit: std::time::Duration) {
        let wait = async {
            loop {
                let notified = self.idle.notified();
                if !self.running.load(Ordering::Acquire) && lock(&self.requested).is_empty() {
                    return;
                }
                notified.await;
            }
        };
        let _ = tokio::time::timeout(limit, wait).await;
    }

    /// Commits `streams` now on the calling thread.
    pub fn commit(&self, streams: &[Arc<Stream>], durability: Durability) -> std::io::Result<()> {
        let _serial = lock(&self.serial);
        let sync = durability == Durability::Beacon;
        let mut work = Vec::with_capacity(streams.len());
        let mut retired = Vec::new();
        let mut whole: Vec<(Arc<File>, u64)> = Vec::new();
        // Metadata is taken last (it covers every entry taken before) and published first (a
        // viewer never sees an entry before the metadata describing it).
        let mut order: Vec<&Arc<Stream>> = streams.iter().collect();
        order.sort_by_key(|s| s.is_metadata);
        let mut sidecars = Vec::new();
        let mut closed = Vec::new();
        for s in order {
            let mut st = s.lock();
            if st.closed {
                closed.push(s.id);
            }
            if let Some(log) = self.losses.changed(s.id) {
                // A closed stream left its chunk: it is the last one retired, released below.
                if let Some(chunk) = st.chunk.clone().or_else(|| st.retired.last().cloned()) {
                    sidecars.push((s.clone(), chunk, log));
                }
            }
            let ready = std::mem::take(&mut st.ready);
            let files = std::mem::take(&mut st.unsynced);
            retired.append(&mut st.retired);
            if s.index_version.is_none() && !st.writing {
                // Metadata and index-less streams: the whole file so far is committed.
                if let Some(d) = &st.data {
                    whole.push((d.clone(), st.size_current));
                }
            }
            work.push((s, ready, files, st.metadata_received));
        }
        // 1. data files
        let mut done: Vec<*const File> = Vec::new();
        for (_, _, files, _) in &work {
            for f in files {
                let p = Arc::as_ptr(f);
                if !done.contains(&p) {
                    done.push(p);
                    if sync {
                        f.sync_data()?;
                    }
                }
            }
        }
        // 2. index entries, grouped by file in order
        let mut touched: Vec<Arc<IndexFile>> = Vec::new();
        let mut buf = Vec::new();
        let mut run: Vec<IndexEntry> = Vec::new();
        for (_, ready, _, _) in &work {
            let mut i = 0;
            while let Some(first) = ready.get(i) {
                run.clear();
                let mut j = i;
                while let Some(ReadyEntry { file, entry }) = ready.get(j) {
                    if !Arc::ptr_eq(file, &first.file) {
                        break;
                    }
                    run.push(*entry);
                    j += 1;
                }
                first.file.append(&run, &mut buf)?;
                if !touched.iter().any(|t| Arc::ptr_eq(t, &first.file)) {
                    touched.push(first.file.clone());
                }
                i = j;
            }
        }
        // 3. index files, then loss sidecars
        if sync {
            for t in &touched {
                t.sync()?;
            }
        }
        for (s, chunk, log) in sidecars {
            let dir = crate::storage::loss::index_dir(&s.path);
            let data_file = |n: u64| {
                let n = if s.tracefile_count > 0 {
                    n % s.tracefile_count
                } else {
                    n
                };
                super::layout::stream_file_name(&s.name, s.tracefile_size, n, "")
            };
            let r = chunk.with_dir(&dir, |d| {
                crate::storage::loss::write(d, &s.name, &log, sync, data_file)
            });
            match r {
                Ok(()) => self.losses.written(s.id, log.version),
                // Not retried here: the next commit of the stream tries again.
                Err(e) => {
                    tracing::error!(stream = %s.id, name = %s.name, "cannot write the loss sidecar: {e}")
                }
            }
        }
        // 4. frontier
        work.sort_by_key(|w| !w.0.is_metadata);
        for (s, ready, _, meta) in work {
            let mut i = 0;
            while let Some(first) = ready.get(i) {
                let mut j = i;
                let mut end = 0;
                while let Some(r) = ready.get(j).filter(|r| Arc::ptr_eq(&r.file, &first.file)) {
                    end = r.entry.offset.saturating_add(r.entry.packet_size / 8);
                    j += 1;
                }
                first.file.advance_committed((j - i) as u64, end);
                i = j;
            }
            let mut st = s.lock();
            st.index_committed = st.index_committed.saturating_add(ready.len() as u64);
            if s.is_metadata && meta >= st.metadata_committed && meta <= st.metadata_received {
                st.metadata_committed = meta;
            }
            s.visible.publish(s, &st, &ready);
        }
        for (file, end) in &whole {
            crate::storage::lock::hold_from(file, *end);
        }
        // 5. chunks the streams left are complete on disk: let them go (archive, delete).
        drop(retired);
        Ok(())
    }
}
