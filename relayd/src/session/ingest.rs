//! Data packets and index halves: each packet's entry is merged from its two halves in the
//! relay's [`MergeTable`](crate::merge::MergeTable), keyed by (stream, net_seq_num); live beacons.
//!
//! A packet is written in three steps by the data connection that owns the stream:
//! [`Stream::begin_packet`] reserves its place in the current data file (switching tracefiles when
//! the size limit is reached), the caller writes the payload and padding at that offset without
//! holding the lock, and [`Stream::end_packet`] records the data half (file generation, offset,
//! size). SEND_INDEX records the index half ([`Stream::add_index`]). Whichever half completes an
//! entry queues it for the next commit (`Stream::on_completed`); entries past a pending
//! rotation's pivot wait until the data side of the rotation moved their packets into the next
//! chunk, and are then translated ([`super::stream::Rebase`]). The stream lock is taken before the
//! table's, never the other way round.

use super::chunk::Chunk;
use super::files;
pub use super::loss_log::log_expired;
use super::stream::{seq_before, IndexHalf, ReadyEntry, Stream, StreamState};
use crate::merge::{Completed, DataHalf, Expired, IndexMismatch, Inserted, MergeError};
use crate::storage::{IndexFile, StorageError, StorageFile};
use crate::telemetry::SessionCounters;
use std::sync::Arc;
use std::time::Instant;
use trelay_proto::ctf::index::IndexEntry;
use trelay_proto::{NetSeq, StreamId};

/// Why a packet or an index was refused (the offending connection is closed, except on a full
/// disk, where the caller waits for space and tries again).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// The stream is closed.
    #[error("stream {0} is closed")]
    Closed(StreamId),
    /// The stream has no trace chunk (rotated into none).
    #[error("stream {0} has no trace chunk")]
    NoChunk(StreamId),
    /// Data packet for a metadata stream.
    #[error("stream {0} is a metadata stream: no data packets")]
    Metadata(StreamId),
    /// Two packets of one stream at once (two data connections).
    #[error("stream {0}: a packet is already being written")]
    Busy(StreamId),
    /// A data packet whose number was already written.
    #[error("stream {0}: duplicate or out-of-order data packet {1}")]
    DuplicateData(StreamId, u64),
    /// The merge table refused a half (duplicate, out of order).
    #[error(transparent)]
    Merge(#[from] MergeError),
    /// An index entry whose sizes disagree with its packet: refused, the packet stays in the
    /// data file unindexed (counted in `trelay_invalid_index_total`).
    #[error("stream {0}: packet {1}: {2}")]
    IndexMismatch(StreamId, u64, #[source] IndexMismatch),
    /// Size arithmetic overflowed.
    #[error("stream {0}: file size overflow")]
    Overflow(StreamId),
    /// A file operation failed.
    #[error("stream {0}: {1}")]
    Storage(StreamId, #[source] StorageError),
}

impl IngestError {
    /// The storage failure behind this error, if that is what it is.
    pub fn storage(&self) -> Option<&StorageError> {
        match self {
            IngestError::Storage(_, e) => Some(e),
            _ => None,
        }
    }
}

/// Files a packet needs before it can be reserved, created outside the stream lock.
#[derive(Debug)]
struct FilePlan {
    chunk: Arc<Chunk>,
    /// Generation the plan was made at (the stream cannot change it meanwhile: it is marked
    /// `writing`).
    generation: u64,
    /// Switch to this tracefile number (size limit reached).
    next_file: Option<u64>,
    /// The current data file (when no switch).
    data: Option<Arc<StorageFile>>,
    /// Tracefile number of the data file the index goes with.
    file_no: u64,
    /// An index file is needed.
    index: Option<trelay_proto::ctf::index::IndexVersion>,
}

/// Where the caller writes a packet.
#[derive(Debug)]
pub struct PacketSlot {
    /// The data file.
    pub file: Arc<StorageFile>,
    /// Offset of the packet.
    pub offset: u64,
}

/// What the caller should do after recording a half.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Effects {
    /// Entries were completed (a commit of this stream can publish them).
    pub completed: bool,
    /// This was the stream's first data packet (viewers get NEW_STREAM).
    pub first_packet: bool,
    /// A close was requested and may now complete.
    pub close_ready: bool,
    /// The stream rotated and released a chunk.
    pub rotated: bool,
}

impl Stream {
    /// Reserves room for packet `seq` of `data_size + padding = total` bytes. A tracefile switch
    /// or a missing index file is created first, outside the stream lock (the stream is marked
    /// `writing` meanwhile, so no rotation or other writer moves it).
    pub fn begin_packet(
        &self,
        seq: NetSeq,
        data_size: u64,
        total: u64,
    ) -> Result<PacketSlot, IngestError> {
        let id = self.id;
        let plan = {
            let mut st = self.wait_rotation(self.lock());
            self.check_packet(&st, seq)?;
            match self.plan_files(&st, data_size)? {
                None => return self.reserve(&mut st, total),
                Some(plan) => {
                    st.writing = true;
                    plan
                }
            }
        };
        let made = self.make_files(&plan);
        let mut st = self.lock();
        st.writing = false;
        let (data, index) = made.map_err(|e| IngestError::Storage(id, e))?;
        if st.generation != plan.generation || st.closed {
            return Err(IngestError::Closed(id));
        }
        if let Some(next) = plan.next_file {
            st.data = Some(data.clone());
            st.index = None;
            st.file_no = next;
            st.generation = st.generation.saturating_add(1);
            let generation = st.generation;
            st.file_nos.insert(generation, next);
            st.size_current = 0;
        }
        if let Some(idx) = index {
            let generation = st.generation;
            st.files.insert(generation, idx.clone());
            st.index = Some(idx);
        }
        self.reserve(&mut st, total)
    }

    fn check_packet(&self, st: &StreamState, seq: NetSeq) -> Result<(), IngestError> {
        let id = self.id;
        if st.closed {
            return Err(IngestError::Closed(id));
        }
        if self.is_metadata {
            return Err(IngestError::Metadata(id));
        }
        if st.writing {
            return Err(IngestError::Busy(id));
        }
        if !st.prev_data_seq.is_unset() && !seq_before(st.prev_data_seq, seq) {
            return Err(IngestError::DuplicateData(id, seq.0));
        }
        Ok(())
    }

    /// Which files must exist before a packet of `data_size` bytes can be reserved.
    fn plan_files(
        &self,
        st: &StreamState,
        data_size: u64,
    ) -> Result<Option<FilePlan>, IngestError> {
        let id = self.id;
        let chunk = st.chunk.clone().ok_or(IngestError::NoChunk(id))?;
        let mut plan = FilePlan {
            chunk,
            generation: st.generation,
            next_file: None,
            data: st.data.clone(),
            file_no: st.file_no,
            index: None,
        };
        if self.tracefile_size > 0
            && st.size_current > 0
            && st.size_current.saturating_add(data_size) > self.tracefile_size
        {
            let mut next = st.file_no.checked_add(1).ok_or(IngestError::Overflow(id))?;
            if self.tracefile_count > 0 {
                next %= self.tracefile_count;
            }
            plan.next_file = Some(next);
            plan.file_no = next;
            plan.data = None;
            plan.index = self.index_version;
            return Ok(Some(plan));
        }
        if st.data.is_none() {
            return Err(IngestError::NoChunk(id));
        }
        if let (Some(v), None) = (self.index_version, &st.index) {
            plan.index = Some(v);
            return Ok(Some(plan));
        }
        Ok(None)
    }

    /// Creates the files of `plan` (no lock held).
    fn make_files(
        &self,
        plan: &FilePlan,
    ) -> Result<(Arc<StorageFile>, Option<Arc<IndexFile>>), StorageError> {
        let data = match (&plan.data, plan.next_file) {
            (Some(d), None) => d.clone(),
            _ => files::create_data(
                &plan.chunk,
                &self.path,
                &self.name,
                self.tracefile_size,
                plan.file_no,
            )?,
        };
        let index = match plan.index {
            Some(v) => Some(files::create_index(
                data.clone(),
                &plan.chunk,
                &self.path,
                &self.name,
                self.tracefile_size,
                plan.file_no,
                v,
            )?),
            None => None,
        };
        Ok((data, index))
    }

    fn reserve(&self, st: &mut StreamState, total: u64) -> Result<PacketSlot, IngestError> {
        let id = self.id;
        let file = st.data.clone().ok_or(IngestError::NoChunk(id))?;
        let offset = st.size_current;
        st.size_current = offset.checked_add(total).ok_or(IngestError::Overflow(id))?;
        st.writing = true;
        Ok(PacketSlot { file, offset })
    }

    /// Gives up a reserved packet (connection cut mid-packet): the partial bytes are cut off.
    pub fn abort_packet(&self, slot: &PacketSlot) {
        let cut = {
            let mut st = self.lock();
            st.writing = false;
            let current = st.data.as_ref().is_some_and(|d| Arc::ptr_eq(d, &slot.file));
            if current {
                st.size_current = slot.offset;
            }
            current
        };
        if cut {
            if let Err(e) = slot.file.set_len(slot.offset) {
                tracing::warn!(stream = %self.id, "cannot cut a partial packet: {e}");
            }
        }
    }

    /// Records that packet `seq` of `total` bytes is in the file at `slot`.
    pub fn end_packet(
        &self,
        seq: NetSeq,
        slot: PacketSlot,
        total: u64,
    ) -> Result<Effects, IngestError> {
        let mut st = self.lock();
        st.writing = false;
        let mut fx = Effects {
            first_packet: st.prev_data_seq.is_unset(),
            ..Effects::default()
        };
        st.prev_data_seq = seq;
        if !st
            .unsynced
            .last()
            .is_some_and(|f| Arc::ptr_eq(f, &slot.file))
        {
            st.unsynced.push(slot.file.clone());
        }
        if self.index_version.is_some() && st.index.is_some() {
            let half = DataHalf {
                file_index: st.generation,
                offset: slot.offset,
                size: total,
            };
            let r = self.merge.insert_data(self.id, seq, half, Instant::now())?;
            // A mismatch found here (the index came first) is logged and counted; the data
            // port has no reply to carry it.
            fx.completed |= self.on_inserted(&mut st, r).unwrap_or(false);
        }
        fx.close_ready = st.close_requested && !st.closed;
        let job = self.claim_data_switch(&mut st);
        drop(st);
        let (rotated, close_ready) = self.run_data_switch(job);
        fx.rotated |= rotated;
        fx.close_ready |= close_ready;
        Ok(fx)
    }

    /// Records the index half of packet `seq` (or a live beacon when `packet_size` is 0).
    pub fn add_index(&self, seq: NetSeq, half: IndexHalf) -> Result<Effects, IngestError> {
        let mut st = self.lock();
        if st.closed {
            return Err(IngestError::Closed(self.id));
        }
        if half.packet_size == 0 {
            // Beacon: the stream is idle up to timestamp_end, if no index waits for its data.
            if self.merge.index_pending(self.id) == 0 {
                st.beacon_ts_end = half.timestamp_end;
                if st.ctf_stream_id == u64::MAX {
                    st.ctf_stream_id = half.stream_id;
                }
            }
            return Ok(Effects::default());
        }
        st.beacon_ts_end = u64::MAX;
        st.ctf_stream_id = half.stream_id;
        if self.index_version.is_none() {
            return Ok(Effects::default());
        }
        let r = self
            .merge
            .insert_index(self.id, seq, half, Instant::now())?;
        let completed = self
            .on_inserted(&mut st, r)
            .map_err(|m| IngestError::IndexMismatch(self.id, seq.0, m))?;
        let mut fx = Effects {
            completed,
            ..Effects::default()
        };
        fx.close_ready = st.close_requested && !st.closed;
        let job = self.claim_data_switch(&mut st);
        drop(st);
        let (rotated, close_ready) = self.run_data_switch(job);
        fx.rotated |= rotated;
        fx.close_ready |= close_ready;
        Ok(fx)
    }

    /// Accounts an insert: whether it completed an entry, or the mismatch that refused it.
    fn on_inserted(&self, st: &mut StreamState, r: Inserted) -> Result<bool, IndexMismatch> {
        if let Some(e) = r.evicted {
            if e.stream == self.id {
                self.record_loss(st, &e);
            } else if let Err(e) = self.merge.defer(e) {
                // A half of another stream pushed out by the relay-wide cap: its own stream
                // records it at the next expiry tick (here only when too many already wait).
                log_expired(&e);
            }
        }
        match r.completed {
            Some(c) => {
                self.check_completed(st, &c)?;
                self.on_completed(st, c);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Refuses an entry whose sizes disagree with its packet: it is never queued (an index
    /// never points past or short of its data), the packet counts as unindexed, the refusal
    /// is counted and logged.
    fn check_completed(&self, st: &mut StreamState, c: &Completed) -> Result<(), IndexMismatch> {
        let half = IndexHalf::from(&c.entry);
        let Err(m) = half.check_against(c.size) else {
            return Ok(());
        };
        tracing::warn!(
            stream = %self.id,
            seq = c.seq.0,
            session = %self.session.rel_dir.display(),
            "index entry refused: {m}"
        );
        let counters = &self.session.counters;
        SessionCounters::add(&counters.invalid_indexes, 1);
        SessionCounters::add(&counters.unindexed_packets, 1);
        st.unindexed_packets = st.unindexed_packets.saturating_add(1);
        if st.prev_index_seq.is_unset() || seq_before(st.prev_index_seq, c.seq) {
            st.prev_index_seq = c.seq;
        }
        st.last_end = Some((c.file_index, c.entry.offset.saturating_add(c.size)));
        Err(m)
    }

    /// Queues a complete entry for the next commit (or holds it behind a pending rotation).
    pub(super) fn on_completed(&self, st: &mut StreamState, mut c: Completed) {
        for r in &st.rebases {
            if c.file_index == r.from && seq_before(r.after, c.seq) {
                c.file_index = r.to;
                c.entry.offset = c.entry.offset.saturating_sub(r.cut);
            }
        }
        if let Some(r) = &st.rotation {
            let blocked = !r.data_rotated
                && r.pivot
                    .is_some_and(|p| p.is_unset() || seq_before(p, c.seq));
            if blocked {
                st.held.push(c);
                return;
            }
        }
        let Some(file) = st.files.get(&c.file_index).cloned() else {
            tracing::error!(stream = %self.id, seq = c.seq.0, generation = c.file_index, "entry for a data file no longer open: dropped");
            st.unindexed_packets = st.unindexed_packets.saturating_add(1);
            return;
        };
        // Entries complete in net_seq_num order: older generations are done.
        let generation = c.file_index;
        st.files.retain(|g, _| *g >= generation);
        st.file_nos.retain(|g, _| *g >= generation);
        st.ready.push(ReadyEntry {
            file,
            entry: c.entry,
        });
        if st.prev_index_seq.is_unset() || seq_before(st.prev_index_seq, c.seq) {
            st.prev_index_seq = c.seq;
        }
        st.index_received = st.index_received.saturating_add(1);
        self.count_tracer_losses(st, &c.entry);
        st.received_psn = Some(c.entry.packet_seq_num);
        st.last_end = Some((c.file_index, c.entry.offset.saturating_add(c.size)));
        self.try_rotate_index(st);
    }

    /// Logs a half that left the merge table without its partner and records it for the loss
    /// sidecar written by the next commit (data halves name their tracefile number).
    pub fn record_loss(&self, st: &StreamState, e: &Expired) {
        log_expired(e);
        let mut e = *e;
        if let crate::merge::Half::Data(d) = &mut e.half {
            d.file_index = st
                .file_nos
                .get(&d.file_index)
                .copied()
                .unwrap_or(st.file_no);
        }
        self.session.commit.losses.record(&e);
        let c = &self.session.counters;
        match e.half {
            crate::merge::Half::Index(_) => SessionCounters::add(&c.lost_packets, 1),
            crate::merge::Half::Data(_) => SessionCounters::add(&c.unindexed_packets, 1),
        }
    }

    /// Sequence gaps and discarded events the tracer reports in a completed entry (the packet
    /// sequence number and the discarded-event count are cumulative per stream).
    fn count_tracer_losses(&self, st: &mut StreamState, e: &IndexEntry) {
        let c = &self.session.counters;
        if let Some(prev) = st.received_psn.filter(|p| *p != u64::MAX) {
            if e.packet_seq_num != u64::MAX && e.packet_seq_num > prev {
                SessionCounters::add(&c.sequence_gaps, e.packet_seq_num - prev - 1);
            }
        }
        if e.events_discarded > st.events_discarded {
            SessionCounters::add(
                &c.discarded_events,
                e.events_discarded - st.events_discarded,
            );
            st.events_discarded = e.events_discarded;
        }
    }

    /// Releases entries held behind a rotation that finished.
    pub(super) fn release_held(&self, st: &mut StreamState) {
        for c in std::mem::take(&mut st.held) {
            self.on_completed(st, c);
        }
    }
}
