//! The commit group: the one place where received data becomes durable and visible.
//!
//! For the streams of one session that asked for a commit, in this order:
//! 1. fdatasync every data file written since the previous commit (once per file);
//! 2. append the completed index entries to their index files (one write per file);
//! 3. fdatasync every index file appended to (once per file), then (re)write the loss sidecar
//!    of each stream that lost packets since ([`crate::storage::loss`], from [`CommitQueue::losses`]);
//! 4. advance each stream's committed frontier (entries and metadata bytes viewers may read) and
//!    publish it to live viewers ([`crate::frontier::Frontier::publish`]);
//! 5. release the chunks the streams left, so a chunk is archived (or deleted) only complete
//!    (their archive or delete runs right after, [`super::chunk::ChunkRegistry::run_releases`]).
//!
//! A group of many streams runs as sub-groups (`max_open_files / 8` streams each, metadata first),
//! each through steps 1 to 5 before the next one opens its files, so that what one sub-group
//! holds open fits in the open-file pool ([`crate::storage::pool`]) whatever the number of
//! streams and the descriptor budget.
//!
//! An index entry is therefore never durable before the bytes it points to. With
//! `--durability=none` the order is the same and the fsyncs are skipped. Groups of one session
//! run one at a time on a blocking thread; requests that arrive meanwhile form the next group.
//!
//! Failures: a failed fdatasync fails the session and is not retried (after a failed fsync the
//! kernel may have dropped the dirty pages: nothing past the last good commit is trusted). An
//! index append that finds the disk full is undone — every index file the group appended to is
//! cut back — and the group's work goes back to its streams, to be retried by a later commit once
//! space returns ([`CommitError::NoSpace`]); nothing is published meanwhile.

use super::chunk::{lock, Chunk};
use super::stream::{ReadyEntry, Stream};
use super::Session;
use crate::config::Durability;
use crate::storage::{IndexFile, StorageError, StorageFile};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use trelay_proto::ctf::index::IndexEntry;

/// Why a commit group did not finish.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommitError {
    /// The disk is full: the group was undone and its work given back to its streams.
    #[error("disk full, commit postponed: {0}")]
    NoSpace(#[source] StorageError),
    /// A write or an fdatasync failed: the session cannot go on.
    #[error("commit failed: {0}")]
    Failed(#[source] StorageError),
}

/// What a group took from one stream, given back if the group is undone.
struct Taken<'a> {
    stream: &'a Arc<Stream>,
    ready: Vec<ReadyEntry>,
    files: Vec<Arc<StorageFile>>,
    retired: Vec<Arc<Chunk>>,
    metadata: u64,
    /// The loss sidecar to write, and the chunk it goes into.
    sidecar: Option<(Arc<Chunk>, crate::storage::loss::LossLog)>,
    /// An index-less stream's data file and how much of it is committed.
    whole: Option<(Arc<StorageFile>, u64)>,
}

/// Streams per sub-group of a commit: what a group opens fits in a quarter of the open-file
/// pool, so a commit of any number of streams proceeds at any descriptor budget (each
/// sub-group's files are closable again once it is published).
fn subgroup_len() -> usize {
    (crate::storage::pool::pool().max() / 8).clamp(1, 4096)
}

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

    /// Runs groups until no request is left (call on a blocking thread after `request` said so);
    /// `timeout` is how long a disk-full episode may last before the session is failed.
    pub fn run(&self, session: &Session, durability: Durability, timeout: Duration) {
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
            let t = &session.telemetry;
            let started = Instant::now();
            let result = self.commit(&batch, durability, t);
            t.commits.increment(1);
            t.commit_seconds.record(started.elapsed().as_secs_f64());
            if result.is_err() {
                t.commit_failures.increment(1);
            }
            match result {
                Ok(()) => {
                    if session.disk_full.is_full() {
                        session.disk_full.cleared(&session.params.name);
                    }
                }
                Err(CommitError::NoSpace(e)) => {
                    let lasted = session
                        .disk_full
                        .hit(&session.params.name, &e, Instant::now());
                    if lasted > timeout {
                        session.fail(format!(
                            "the disk stayed full for {}s (disk_full_timeout_s): {e}",
                            lasted.as_secs()
                        ));
                    }
                    // The work went back to the streams: a later commit (next request or
                    // interval tick) retries it. Stop here rather than spin on a full disk.
                    lock(&self.requested).clear();
                }
                Err(e) => session.fail(e.to_string()),
            }
        }
    }

    /// Waits until no commit of this session is requested or running (at most `limit`);
    /// `false` when `limit` passed first (what was requested may not be committed yet).
    pub async fn idle(&self, limit: std::time::Duration) -> bool {
        let wait = async {
            loop {
                let notified = self.idle.notified();
                if !self.running.load(Ordering::Acquire) && lock(&self.requested).is_empty() {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(limit, wait).await.is_ok()
    }

    /// Commits `streams` now on the calling thread.
    pub fn commit(
        &self,
        streams: &[Arc<Stream>],
        durability: Durability,
        telemetry: &crate::telemetry::Telemetry,
    ) -> Result<(), CommitError> {
        let _serial = lock(&self.serial);
        let sync = durability == Durability::Beacon;
        let mut work: Vec<Taken<'_>> = Vec::with_capacity(streams.len());
        // Metadata is taken last (it covers every entry taken before) and published first (a
        // viewer never sees an entry before the metadata describing it).
        let mut order: Vec<&Arc<Stream>> = streams.iter().collect();
        order.sort_by_key(|s| s.is_metadata);
        for s in order {
            let mut st = s.lock();
            let mut sidecar = None;
            if let Some(log) = self.losses.changed(s.id) {
                // A closed stream left its chunk: it is the last one retired, released below.
                if let Some(chunk) = st.chunk.clone().or_else(|| st.retired.last().cloned()) {
                    sidecar = Some((chunk, log));
                }
            }
            let mut whole = None;
            if s.index_version.is_none() && !st.writing {
                // Index-less streams: the whole file so far is committed; metadata up to the end
                // of its last whole unit.
                if let Some(d) = &st.data {
                    let end = if s.is_metadata {
                        st.metadata_whole()
                    } else {
                        st.size_current
                    };
                    whole = Some((d.clone(), end));
                }
            }
            work.push(Taken {
                stream: s,
                ready: std::mem::take(&mut st.ready),
                files: std::mem::take(&mut st.unsynced),
                retired: std::mem::take(&mut st.retired),
                metadata: st.metadata_whole(),
                sidecar,
                whole,
            });
        }
        work.sort_by_key(|w| !w.stream.is_metadata);
        // Sub-groups, metadata first: each is made durable and published before the next
        // opens its files. A full disk gives back the failing sub-group and all after it.
        let size = subgroup_len();
        let mut rest = work;
        while !rest.is_empty() {
            let later = rest.split_off(size.min(rest.len()));
            let mut group = rest;
            if let Err(e) = self.write_group(&group, sync, telemetry) {
                if let CommitError::NoSpace(_) = e {
                    group.extend(later);
                    give_back(group);
                }
                return Err(e);
            }
            publish(&mut group);
            rest = later;
        }
        Ok(())
    }

    /// Steps 1 to 3: the I/O of a group. A full disk during the index appends undoes them.
    fn write_group(
        &self,
        work: &[Taken<'_>],
        sync: bool,
        telemetry: &crate::telemetry::Telemetry,
    ) -> Result<(), CommitError> {
        // 1. data files
        let synced = Instant::now();
        let mut done: Vec<*const StorageFile> = Vec::new();
        for w in work {
            for f in &w.files {
                let p = Arc::as_ptr(f);
                if !done.contains(&p) {
                    done.push(p);
                    if sync {
                        f.sync_data().map_err(CommitError::Failed)?;
                    }
                }
            }
        }
        if sync && !done.is_empty() {
            telemetry
                .fdatasync_seconds
                .record(synced.elapsed().as_secs_f64());
        }
        // 2. index entries, grouped by file in order
        let mut touched: Vec<(Arc<IndexFile>, u64)> = Vec::new();
        let mut buf = Vec::new();
        let mut run: Vec<IndexEntry> = Vec::new();
        for w in work {
            let ready = &w.ready;
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
                match first.file.append(&run, &mut buf) {
                    Ok(before) => {
                        if !touched.iter().any(|t| Arc::ptr_eq(&t.0, &first.file)) {
                            touched.push((first.file.clone(), before));
                        }
                    }
                    Err(e) => {
                        let undone = touched.iter().all(|(f, len)| match f.truncate_to(*len) {
                            Ok(()) => true,
                            Err(cut) => {
                                tracing::error!("cannot undo an index append: {cut}");
                                false
                            }
                        });
                        return Err(if e.is_no_space() && undone {
                            CommitError::NoSpace(e)
                        } else {
                            CommitError::Failed(e)
                        });
                    }
                }
                i = j;
            }
        }
        // 3. index files, then loss sidecars
        if sync && !touched.is_empty() {
            let synced = Instant::now();
            for (t, _) in &touched {
                t.sync().map_err(CommitError::Failed)?;
            }
            telemetry
                .fdatasync_seconds
                .record(synced.elapsed().as_secs_f64());
        }
        for (s, (chunk, log)) in work
            .iter()
            .filter_map(|w| w.sidecar.as_ref().map(|c| (w.stream, c)))
        {
            let dir = crate::storage::loss::index_dir(&s.path);
            let data_file = |n: u64| {
                let n = if s.tracefile_count > 0 {
                    n % s.tracefile_count
                } else {
                    n
                };
                crate::storage::layout::stream_file_name(&s.name, s.tracefile_size, n, "")
            };
            let fs = chunk.fs().clone();
            let r = chunk.with_dir(&dir, |d| {
                crate::storage::loss::write(&fs, d, &s.name, log, sync, data_file)
            });
            match r {
                Ok(()) => self.losses.written(s.id, log.version),
                // Not retried here: the next commit of the stream tries again.
                Err(e) => {
                    tracing::error!(stream = %s.id, name = %s.name, "cannot write the loss sidecar: {e}")
                }
            }
        }
        Ok(())
    }
}

/// Step 4 for a written sub-group: advance each stream's committed frontier and publish it;
/// step 5: release the chunks the streams left (complete on disk now: archive, delete).
fn publish(work: &mut [Taken<'_>]) {
    let mut retired = Vec::new();
    for w in work.iter_mut() {
        let s = w.stream;
        let ready = &w.ready;
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
        let meta = w.metadata;
        if s.is_metadata && meta >= st.metadata_committed && meta <= st.metadata_received {
            st.metadata_committed = meta;
        }
        let keep = if s.session.params.live_timer == 0 {
            1
        } else if s.tracefile_count > 0 {
            usize::try_from(s.tracefile_count).unwrap_or(usize::MAX)
        } else {
            usize::MAX
        };
        let announce = s.frontier.publish(
            ready.iter().map(|r| &r.file),
            crate::frontier::Publish {
                keep,
                metadata: s
                    .is_metadata
                    .then(|| (st.metadata_committed, st.data.clone())),
                published: st.published,
                closed: st.closed,
            },
        );
        drop(st);
        if announce.new {
            s.session.live.announce(s.id, s.is_metadata, s.clone());
        }
        if announce.closed {
            s.session.live.closed(s.id);
        }
        retired.append(&mut w.retired);
    }
    for (file, end) in work.iter().filter_map(|w| w.whole.as_ref()) {
        file.hold_from(*end);
    }
    drop(retired);
}

/// Gives an undone group's work back to its streams, ahead of what they received meanwhile.
fn give_back(work: Vec<Taken<'_>>) {
    for w in work {
        let mut st = w.stream.lock();
        let mut ready = w.ready;
        ready.append(&mut st.ready);
        st.ready = ready;
        for f in w.files {
            if !st.unsynced.iter().any(|u| Arc::ptr_eq(u, &f)) {
                st.unsynced.push(f);
            }
        }
        let mut retired = w.retired;
        retired.append(&mut st.retired);
        st.retired = retired;
    }
}
