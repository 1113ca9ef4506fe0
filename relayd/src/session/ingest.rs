//! Data packets and index halves: the merge of the two halves of each index entry, keyed by
//! (stream, net_seq_num), and live beacons.
//!
//! A packet is written in three steps by the data connection that owns the stream:
//! [`Stream::begin_packet`] reserves its place in the current data file (switching tracefiles when
//! the size limit is reached), the caller writes the payload and padding at that offset without
//! holding the lock, and [`Stream::end_packet`] records the data half. SEND_INDEX records the
//! index half ([`Stream::add_index`]). Whichever half completes an entry queues it for the next
//! commit, in net_seq_num order. Entries past a pending rotation's pivot wait until the data side
//! of the rotation moved them into the next chunk.

use super::files::{self, IndexFile};
use super::stream::{seq_before, DataHalf, IndexHalf, Pending, ReadyEntry, Stream, StreamState};
use std::fs::File;
use std::sync::Arc;
use std::time::Instant;
use trelay_proto::ctf::index::IndexEntry;
use trelay_proto::{NetSeq, StreamId};

/// Why a packet or an index was refused (the offending connection is closed).
#[derive(Debug, thiserror::Error)]
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
    /// An index whose number was already received.
    #[error("stream {0}: duplicate index for packet {1}")]
    DuplicateIndex(StreamId, u64),
    /// Size arithmetic overflowed.
    #[error("stream {0}: file size overflow")]
    Overflow(StreamId),
    /// A file operation failed.
    #[error("stream {0}: {1}")]
    Io(StreamId, std::io::Error),
}

/// Where the caller writes a packet.
#[derive(Debug)]
pub struct PacketSlot {
    /// The data file.
    pub file: Arc<File>,
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
    /// Reserves room for packet `seq` of `data_size + padding = total` bytes.
    pub fn begin_packet(
        &self,
        seq: NetSeq,
        data_size: u64,
        total: u64,
    ) -> Result<PacketSlot, IngestError> {
        let id = self.id;
        let mut st = self.lock();
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
        let chunk = st.chunk.clone().ok_or(IngestError::NoChunk(id))?;
        if self.tracefile_size > 0
            && st.size_current > 0
            && st.size_current.saturating_add(data_size) > self.tracefile_size
        {
            let mut next = st.file_no.checked_add(1).ok_or(IngestError::Overflow(id))?;
            if self.tracefile_count > 0 {
                next %= self.tracefile_count;
            }
            let data =
                files::create_data(&chunk, &self.path, &self.name, self.tracefile_size, next)
                    .map_err(|e| IngestError::Io(id, e))?;
            st.data = Some(data);
            st.index = None;
            st.file_no = next;
            st.size_current = 0;
        }
        let file = st.data.clone().ok_or(IngestError::NoChunk(id))?;
        if let (Some(v), None) = (self.index_version, &st.index) {
            let idx = IndexFile::create(
                file.clone(),
                &chunk,
                &self.path,
                &self.name,
                self.tracefile_size,
                st.file_no,
                v,
            )
            .map_err(|e| IngestError::Io(id, e))?;
            st.index = Some(idx);
        }
        let offset = st.size_current;
        st.size_current = offset.checked_add(total).ok_or(IngestError::Overflow(id))?;
        st.writing = true;
        Ok(PacketSlot { file, offset })
    }

    /// Gives up a reserved packet (connection cut mid-packet): the partial bytes are cut off.
    pub fn abort_packet(&self, slot: &PacketSlot) {
        let mut st = self.lock();
        st.writing = false;
        if st.data.as_ref().is_some_and(|d| Arc::ptr_eq(d, &slot.file)) {
            st.size_current = slot.offset;
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
        max_pending: usize,
    ) -> Effects {
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
        if let Some(index) = st.index.clone() {
            if self.index_version.is_some() {
                make_room(&mut st, max_pending, self.id);
                let p = st.pending.entry(seq.0).or_default();
                p.data = Some(DataHalf {
                    offset: slot.offset,
                    size: total,
                    index,
                });
                p.since.get_or_insert_with(Instant::now);
                fx.completed |= self.try_complete(&mut st);
            }
        }
        fx.rotated |= self.try_rotate_data(&mut st);
        fx.close_ready = st.close_requested && !st.closed;
        fx
    }

    /// Records the index half of packet `seq` (or a live beacon when `packet_size` is 0).
    pub fn add_index(
        &self,
        seq: NetSeq,
        half: IndexHalf,
        max_pending: usize,
    ) -> Result<Effects, IngestError> {
        let mut st = self.lock();
        if st.closed {
            return Err(IngestError::Closed(self.id));
        }
        if half.packet_size == 0 {
            // Beacon: the stream is idle up to timestamp_end, if nothing is in flight.
            if st.pending.values().all(|p| p.index.is_none()) {
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
        if !st.prev_index_seq.is_unset() && !seq_before(st.prev_index_seq, seq) {
            return Err(IngestError::DuplicateIndex(self.id, seq.0));
        }
        if st.pending.get(&seq.0).is_some_and(|p| p.index.is_some()) {
            return Err(IngestError::DuplicateIndex(self.id, seq.0));
        }
        make_room(&mut st, max_pending, self.id);
        let p = st.pending.entry(seq.0).or_default();
        p.index = Some(half);
        p.since.get_or_insert_with(Instant::now);
        let mut fx = Effects {
            completed: self.try_complete(&mut st),
            ..Effects::default()
        };
        fx.rotated |= self.try_rotate_data(&mut st);
        fx.close_ready = st.close_requested && !st.closed;
        Ok(fx)
    }

    /// Moves every complete entry of the merge table to the ready list, in net_seq_num order
    /// (halves arrive in order on each socket, so entries complete in order; an entry whose other
    /// half is lost does not hold back later ones). Entries past a pending rotation's pivot wait
    /// for the data side of the rotation.
    pub(super) fn try_complete(&self, st: &mut StreamState) -> bool {
        let mut any = false;
        loop {
            let blocked_after = st
                .rotation
                .as_ref()
                .and_then(|r| (!r.data_rotated).then_some(r.pivot).flatten());
            let key = st.pending.iter().find_map(|(k, p)| {
                let ok = p.index.is_some()
                    && p.data.is_some()
                    && !blocked_after.is_some_and(|piv| seq_before(piv, NetSeq(*k)));
                ok.then_some(*k)
            });
            let Some(key) = key else { break };
            let Some(p) = st.pending.remove(&key) else {
                break;
            };
            let (Some(index), Some(data)) = (p.index, p.data) else {
                break;
            };
            let entry = entry_of(&index, data.offset);
            self.push_ready(st, NetSeq(key), data.index, entry, index.packet_seq_num);
            any = true;
        }
        any
    }

    fn push_ready(
        &self,
        st: &mut StreamState,
        seq: NetSeq,
        file: Arc<IndexFile>,
        entry: IndexEntry,
        psn: u64,
    ) {
        st.ready.push(ReadyEntry { file, entry });
        if st.prev_index_seq.is_unset() || seq_before(st.prev_index_seq, seq) {
            st.prev_index_seq = seq;
        }
        st.index_received = st.index_received.saturating_add(1);
        st.received_psn = Some(psn);
        self.try_rotate_index(st);
    }

    /// Expires half entries older than `deadline`; returns (lost, unindexed) counts.
    pub fn expire(&self, now: Instant, deadline: std::time::Duration) -> (u64, u64) {
        let mut st = self.lock();
        let old: Vec<u64> = st
            .pending
            .iter()
            .filter(|(_, p)| {
                p.since
                    .is_some_and(|t| now.saturating_duration_since(t) >= deadline)
            })
            .filter(|(_, p)| p.index.is_none() || p.data.is_none())
            .map(|(k, _)| *k)
            .collect();
        let (mut lost, mut unindexed) = (0, 0);
        for k in old {
            if let Some(p) = st.pending.remove(&k) {
                if p.data.is_none() {
                    lost += 1;
                } else {
                    unindexed += 1;
                }
            }
        }
        st.lost_packets = st.lost_packets.saturating_add(lost);
        st.unindexed_packets = st.unindexed_packets.saturating_add(unindexed);
        if lost + unindexed > 0 {
            self.try_complete(&mut st);
        }
        (lost, unindexed)
    }
}

impl Stream {
    /// Half entries waiting in this stream's merge table.
    pub fn pending_len(&self) -> usize {
        self.lock().pending.len()
    }

    /// Expires the `n` oldest half entries early (the relay-wide cap was reached).
    pub fn evict_oldest(&self, n: usize) {
        let mut st = self.lock();
        let keep = st.pending.len().saturating_sub(n);
        make_room(&mut st, keep.saturating_add(1), self.id);
    }
}

/// Keeps the merge table of a stream under its cap by expiring the oldest half entries early.
fn make_room(st: &mut StreamState, max: usize, id: StreamId) {
    while st.pending.len() >= max.max(1) {
        let Some((k, p)) = st.pending.pop_first() else {
            break;
        };
        if p.data.is_none() {
            st.lost_packets = st.lost_packets.saturating_add(1);
        } else {
            st.unindexed_packets = st.unindexed_packets.saturating_add(1);
        }
        tracing::warn!(stream = %id, seq = k, "merge table full: oldest half entry expired early");
    }
}

fn entry_of(i: &IndexHalf, offset: u64) -> IndexEntry {
    IndexEntry {
        offset,
        packet_size: i.packet_size,
        content_size: i.content_size,
        timestamp_begin: i.timestamp_begin,
        timestamp_end: i.timestamp_end,
        events_discarded: i.events_discarded,
        stream_id: i.stream_id,
        stream_instance_id: i.stream_instance_id,
        packet_seq_num: i.packet_seq_num,
    }
}

impl Pending {
    /// Whether only the data half is present.
    pub fn data_only(&self) -> bool {
        self.data.is_some() && self.index.is_none()
    }
}
