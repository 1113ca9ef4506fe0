//! Stream rotation (ROTATE_STREAMS): moving a stream's files into the next trace chunk at a packet
//! boundary chosen by the sender.
//!
//! The sender names the first CTF packet sequence number that belongs to the next chunk. The index
//! side rotates once the entry before it was completed; the net_seq_num of that entry becomes the
//! data pivot. The data side rotates once the data file holds exactly the packets up to the pivot;
//! if more data was already written, the bytes past the pivot move to the new file and their
//! pending entries are rebased. Metadata streams switch files at once.
//!
//! No file is created, copied or cut under the stream lock: the step that finds the rotation ready
//! claims the stream (`writing` and `rotating`, so no packet is written and no close happens
//! meanwhile), does the file work with the lock released, and installs the result under it again.

use super::chunk::Chunk;
use super::files;
use super::stream::{seq_before, PendingRotation, Rebase, Stream, StreamState};
use crate::storage::{IndexFile, StorageError, StorageFile};
use std::sync::{Arc, PoisonError};
use trelay_proto::NetSeq;

/// Why a rotation could not start or proceed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RotateError {
    /// A rotation is already pending on the stream.
    #[error("stream {0}: a rotation is already pending")]
    AlreadyPending(trelay_proto::StreamId),
    /// The stream is closed.
    #[error("stream {0} is closed")]
    Closed(trelay_proto::StreamId),
    /// Files of the next chunk could not be created.
    #[error("stream {0}: cannot create files in the next chunk: {1}")]
    Storage(trelay_proto::StreamId, #[source] StorageError),
}

/// The file work of a data-side rotation, claimed under the stream lock and done without it.
#[derive(Debug)]
pub(super) struct DataSwitch {
    old: Option<Arc<StorageFile>>,
    old_size: u64,
    old_generation: u64,
    next: Option<Arc<Chunk>>,
    pivot: NetSeq,
    cut: u64,
    ahead: bool,
}

/// What the file work of a [`DataSwitch`] produced.
struct Switched {
    data: Arc<StorageFile>,
    /// Index of the new data file, when packets moved into it.
    index: Option<Arc<IndexFile>>,
    /// Bytes moved from the old file.
    moved: u64,
}

impl Stream {
    /// Starts a rotation into `next` at CTF packet `packet_seq_num`; returns whether it finished.
    pub fn start_rotation(
        &self,
        next: Option<Arc<Chunk>>,
        packet_seq_num: u64,
    ) -> Result<bool, RotateError> {
        if self.is_metadata {
            return self.rotate_metadata(next);
        }
        let job = {
            let mut st = self.lock();
            self.check_rotatable(&st)?;
            st.rotation = Some(PendingRotation {
                next,
                packet_seq_num,
                pivot: None,
                cut: 0,
                data_rotated: false,
            });
            if self.index_version.is_none() {
                let (pivot, cut) = (st.prev_data_seq, st.size_current);
                if let Some(r) = st.rotation.as_mut() {
                    r.pivot = Some(pivot);
                    r.cut = cut;
                }
            }
            self.try_rotate_index(&mut st);
            self.claim_data_switch(&mut st)
        };
        Ok(self.run_data_switch(job).0)
    }

    fn check_rotatable(&self, st: &StreamState) -> Result<(), RotateError> {
        if st.closed {
            return Err(RotateError::Closed(self.id));
        }
        if st.rotation.is_some() || st.rotating {
            return Err(RotateError::AlreadyPending(self.id));
        }
        Ok(())
    }

    /// Metadata streams switch files at once: the next chunk's file is created first, unlocked
    /// (metadata is written by the same control connection that asks for the rotation).
    fn rotate_metadata(&self, next: Option<Arc<Chunk>>) -> Result<bool, RotateError> {
        self.check_rotatable(&self.lock())?;
        let data = match &next {
            Some(c) => Some(
                files::create_data(c, &self.path, &self.name, self.tracefile_size, 0)
                    .map_err(|e| RotateError::Storage(self.id, e))?,
            ),
            None => None,
        };
        let mut st = self.lock();
        self.check_rotatable(&st)?;
        if let Some(old) = st.data.take() {
            push_unsynced(&mut st, old);
        }
        if next.is_some() {
            st.metadata_received = 0;
            st.metadata_committed = 0;
            st.metadata_units = Default::default();
        }
        st.data = data;
        st.size_current = 0;
        st.switch_chunk(next);
        st.completed_rotations = st.completed_rotations.saturating_add(1);
        Ok(true)
    }

    /// Index side: once the entry before the rotation point is complete, fix the data pivot.
    pub(super) fn try_rotate_index(&self, st: &mut StreamState) {
        let prev_index = st.prev_index_seq;
        let received = st.received_psn;
        // The packet after the pivot starts where the pivot's packet ended, if it is in the
        // current data file; otherwise the whole current file comes after the pivot.
        let cut = match st.last_end {
            Some((generation, end)) if generation == st.generation => end,
            _ => 0,
        };
        let Some(r) = st.rotation.as_mut() else {
            return;
        };
        if r.pivot.is_some() {
            return;
        }
        let reached = match received {
            Some(psn) => psn.saturating_add(1) >= r.packet_seq_num,
            None => r.packet_seq_num == 0,
        };
        if reached {
            r.pivot = Some(prev_index);
            r.cut = cut;
        }
    }

    /// Data side: once the data file holds exactly the packets up to the pivot, claims the file
    /// switch for the caller to run with [`Stream::run_data_switch`] after dropping the lock.
    pub(super) fn claim_data_switch(&self, st: &mut StreamState) -> Option<DataSwitch> {
        if st.writing || st.closed {
            return None;
        }
        let r = st.rotation.as_mut()?;
        let pivot = r.pivot?;
        if r.data_rotated {
            return None;
        }
        let ahead = seq_before(pivot, st.prev_data_seq) && !st.prev_data_seq.is_unset();
        let behind = !ahead && st.prev_data_seq != pivot && !pivot.is_unset();
        if behind {
            return None;
        }
        r.data_rotated = true;
        let (next, cut) = (r.next.clone(), r.cut);
        st.writing = true;
        st.rotating = true;
        Some(DataSwitch {
            old: st.data.clone(),
            old_size: st.size_current,
            old_generation: st.generation,
            next,
            pivot,
            cut,
            ahead,
        })
    }

    /// Runs a claimed data switch (no lock held), then installs it. Returns whether the rotation
    /// finished and whether a requested close may now complete.
    pub(super) fn run_data_switch(&self, job: Option<DataSwitch>) -> (bool, bool) {
        let Some(job) = job else {
            return (false, false);
        };
        let made = self.switch_files(&job);
        let mut st = self.lock();
        st.writing = false;
        st.rotating = false;
        self.moved.notify_all();
        let close_ready = st.close_requested && !st.closed;
        if st.closed {
            return (false, false);
        }
        self.install_switch(&mut st, job, made);
        let Some(r) = st.rotation.take() else {
            return (false, close_ready);
        };
        st.switch_chunk(r.next);
        st.completed_rotations = st.completed_rotations.saturating_add(1);
        self.release_held(&mut st);
        (true, close_ready)
    }

    /// Waits while a rotation moves the stream's files (the guard is released meanwhile).
    pub(super) fn wait_rotation<'a>(
        &self,
        mut st: std::sync::MutexGuard<'a, StreamState>,
    ) -> std::sync::MutexGuard<'a, StreamState> {
        while st.rotating {
            st = self.moved.wait(st).unwrap_or_else(PoisonError::into_inner);
        }
        st
    }

    /// Creates the next chunk's data file and moves the bytes past the pivot into it.
    fn switch_files(&self, job: &DataSwitch) -> Result<Option<Switched>, StorageError> {
        let Some(next) = job.next.as_deref() else {
            return Ok(None);
        };
        let data = files::create_data(next, &self.path, &self.name, self.tracefile_size, 0)?;
        let (true, Some(old)) = (job.ahead && job.cut < job.old_size, job.old.as_ref()) else {
            return Ok(Some(Switched {
                data,
                index: None,
                moved: 0,
            }));
        };
        let len = job.old_size - job.cut;
        let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0)];
        old.read_exact_at(&mut buf, job.cut)?;
        data.write_all_at(&buf, 0)?;
        old.set_len(job.cut)?;
        let index = match self.index_version {
            Some(v) => Some(files::create_index(
                data.clone(),
                next,
                &self.path,
                &self.name,
                self.tracefile_size,
                0,
                v,
            )?),
            None => None,
        };
        Ok(Some(Switched {
            data,
            index,
            moved: len,
        }))
    }

    fn install_switch(
        &self,
        st: &mut StreamState,
        job: DataSwitch,
        made: Result<Option<Switched>, StorageError>,
    ) {
        let old = st.data.take();
        st.index = None;
        st.file_no = 0;
        st.size_current = 0;
        st.generation = st.generation.saturating_add(1);
        let generation = st.generation;
        st.file_nos.insert(generation, 0);
        if let Some(old) = old {
            // Without a next chunk, packets past the pivot stay in the old file and index.
            push_unsynced(st, old);
        }
        let made = match made {
            Ok(Some(m)) => m,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(stream = %self.id, "rotation of the data file failed: {e}");
                return;
            }
        };
        if let Some(index) = made.index {
            st.files.insert(generation, index.clone());
            st.index = Some(index);
        }
        if made.moved > 0 {
            st.rebases.push(Rebase {
                from: job.old_generation,
                after: job.pivot,
                cut: job.cut,
                to: generation,
            });
            st.size_current = made.moved;
        }
        push_unsynced(st, made.data.clone());
        st.data = Some(made.data);
    }
}

fn push_unsynced(st: &mut StreamState, f: Arc<StorageFile>) {
    if !st.unsynced.iter().any(|u| Arc::ptr_eq(u, &f)) {
        st.unsynced.push(f);
    }
}
