//! Stream rotation (ROTATE_STREAMS): moving a stream's files into the next trace chunk at a packet
//! boundary chosen by the sender.
//!
//! The sender names the first CTF packet sequence number that belongs to the next chunk. The index
//! side rotates once the entry before it was completed; the net_seq_num of that entry becomes the
//! data pivot. The data side rotates once the data file holds exactly the packets up to the pivot;
//! if more data was already written, the bytes past the pivot move to the new file and their
//! pending entries are rebased. Metadata streams switch files at once.

use super::chunk::Chunk;
use super::files;
use super::stream::{seq_before, PendingRotation, Rebase, Stream, StreamState};
use crate::storage::{StorageError, StorageFile};
use std::sync::Arc;
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

impl Stream {
    /// Starts a rotation into `next` at CTF packet `packet_seq_num`; returns whether it finished.
    pub fn start_rotation(
        &self,
        next: Option<Arc<Chunk>>,
        packet_seq_num: u64,
    ) -> Result<bool, RotateError> {
        let mut st = self.lock();
        if st.closed {
            return Err(RotateError::Closed(self.id));
        }
        if st.rotation.is_some() {
            return Err(RotateError::AlreadyPending(self.id));
        }
        if self.is_metadata {
            let data = match &next {
                Some(c) => Some(
                    files::create_data(c, &self.path, &self.name, self.tracefile_size, 0)
                        .map_err(|e| RotateError::Storage(self.id, e))?,
                ),
                None => None,
            };
            if let Some(old) = st.data.take() {
                push_unsynced(&mut st, old);
            }
            if next.is_some() {
                st.metadata_received = 0;
                st.metadata_committed = 0;
            }
            st.data = data;
            st.size_current = 0;
            st.switch_chunk(next);
            st.completed_rotations = st.completed_rotations.saturating_add(1);
            return Ok(true);
        }
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
        Ok(self.try_rotate_data(&mut st))
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

    /// Data side: switch the data file once it holds exactly the packets up to the pivot. Returns
    /// whether the whole rotation finished.
    pub(super) fn try_rotate_data(&self, st: &mut StreamState) -> bool {
        if st.writing {
            return false;
        }
        let Some(r) = st.rotation.as_ref() else {
            return false;
        };
        let Some(pivot) = r.pivot else { return false };
        if r.data_rotated {
            return false;
        }
        let ahead = seq_before(pivot, st.prev_data_seq) && !st.prev_data_seq.is_unset();
        let behind = !ahead && st.prev_data_seq != pivot && !pivot.is_unset();
        if behind {
            return false;
        }
        let next = r.next.clone();
        let cut = r.cut;
        if let Err(e) = self.switch_data(st, next.as_deref(), pivot, cut, ahead) {
            tracing::error!(stream = %self.id, "rotation of the data file failed: {e}");
            st.data = None;
            st.index = None;
        }
        let Some(r) = st.rotation.take() else {
            return false;
        };
        st.switch_chunk(r.next);
        st.completed_rotations = st.completed_rotations.saturating_add(1);
        self.release_held(st);
        true
    }

    fn switch_data(
        &self,
        st: &mut StreamState,
        next: Option<&Chunk>,
        pivot: NetSeq,
        cut: u64,
        ahead: bool,
    ) -> Result<(), StorageError> {
        let old = st.data.take();
        let old_size = st.size_current;
        let old_generation = st.generation;
        st.index = None;
        st.file_no = 0;
        st.size_current = 0;
        st.generation = st.generation.saturating_add(1);
        let generation = st.generation;
        st.file_nos.insert(generation, 0);
        if let Some(r) = st.rotation.as_mut() {
            r.data_rotated = true;
        }
        let Some(next) = next else {
            // No next chunk: packets past the pivot (if any) stay in the old file and index.
            if let Some(old) = old {
                push_unsynced(st, old);
            }
            return Ok(());
        };
        let data = files::create_data(next, &self.path, &self.name, self.tracefile_size, 0)?;
        if let (true, Some(old)) = (ahead && cut < old_size, old.as_ref()) {
            // Packets past the pivot were written to the old file: move them.
            let len = old_size - cut;
            let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0)];
            old.read_exact_at(&mut buf, cut)?;
            data.write_all_at(&buf, 0)?;
            old.set_len(cut)?;
            if let Some(v) = self.index_version {
                let index = files::create_index(
                    data.clone(),
                    next,
                    &self.path,
                    &self.name,
                    self.tracefile_size,
                    0,
                    v,
                )?;
                let generation = st.generation;
                st.files.insert(generation, index.clone());
                st.index = Some(index);
            }
            st.rebases.push(Rebase {
                from: old_generation,
                after: pivot,
                cut,
                to: st.generation,
            });
            st.size_current = len;
        }
        if let Some(old) = old {
            push_unsynced(st, old);
        }
        push_unsynced(st, data.clone());
        st.data = Some(data);
        Ok(())
    }
}

fn push_unsynced(st: &mut StreamState, f: Arc<StorageFile>) {
    if !st.unsynced.iter().any(|u| Arc::ptr_eq(u, &f)) {
        st.unsynced.push(f);
    }
}
