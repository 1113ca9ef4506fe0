//! A relay stream: one data (or metadata) file series of one trace, and its per-stream state.
//!
//! All mutable state sits behind one `std::sync::Mutex` that is never held across an `.await`:
//! the data connection takes it twice per packet (reserve, then record), and writes the payload
//! between the two without it. Only one packet of a stream is in flight at a time (`writing`).

use super::chunk::{lock, Chunk};
use super::Session;
use crate::merge::{Completed, MergeTable};
use crate::storage::{IndexFile, StorageError, StorageFile};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use trelay_proto::ctf::index::{IndexEntry, IndexVersion};
use trelay_proto::{CtfTraceId, NetSeq, StreamId};

pub use crate::merge::IndexHalf;

/// A complete entry waiting for the next commit.
#[derive(Debug, Clone)]
pub struct ReadyEntry {
    /// The index file it goes to.
    pub file: Arc<IndexFile>,
    /// The entry.
    pub entry: IndexEntry,
}

/// How completed entries of packets moved by a rotation are translated: packets after `after`
/// that were in file generation `from` now start `cut` bytes earlier in generation `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rebase {
    /// File generation the packets were written to.
    pub from: u64,
    /// Packets after this net_seq_num moved.
    pub after: NetSeq,
    /// Bytes cut from the front.
    pub cut: u64,
    /// File generation they moved to.
    pub to: u64,
}

/// A rotation requested by ROTATE_STREAMS and not finished yet.
#[derive(Debug)]
pub struct PendingRotation {
    /// The chunk to move to (`None`: close the files, no new chunk).
    pub next: Option<Arc<Chunk>>,
    /// First CTF packet sequence number belonging to the next chunk.
    pub packet_seq_num: u64,
    /// Index side done; the data side rotates once `prev_data_seq` reaches this pivot.
    pub pivot: Option<NetSeq>,
    /// Where the packet after the pivot starts in the current data file.
    pub cut: u64,
    /// Data side done.
    pub data_rotated: bool,
}

/// Mutable state of a stream.
#[derive(Debug)]
pub struct StreamState {
    /// Chunk the stream writes into (`None` after rotating into no chunk).
    pub(super) chunk: Option<Arc<Chunk>>,
    /// Current data file.
    pub(super) data: Option<Arc<StorageFile>>,
    /// Current index file (created on the first packet of each data file).
    pub(super) index: Option<Arc<IndexFile>>,
    /// Current tracefile number.
    pub(super) file_no: u64,
    /// Generation of the current data file: bumped at every new data file (tracefile switch,
    /// rotation), it names the file in the data halves of the merge table.
    pub(super) generation: u64,
    /// Index files by generation, for entries still to complete.
    pub(super) files: BTreeMap<u64, Arc<IndexFile>>,
    /// Tracefile number of each recent generation (for loss records).
    pub(super) file_nos: BTreeMap<u64, u64>,
    /// Generation and end offset of the last completed entry.
    pub(super) last_end: Option<(u64, u64)>,
    /// Complete entries past a pending rotation's pivot, waiting for the data side.
    pub(super) held: Vec<Completed>,
    /// Translations of entries whose packets a rotation moved.
    pub(super) rebases: Vec<Rebase>,
    /// Bytes in the current data file.
    pub(super) size_current: u64,
    /// Last net_seq_num written to the data file.
    pub(super) prev_data_seq: NetSeq,
    /// Last net_seq_num whose index entry was completed.
    pub(super) prev_index_seq: NetSeq,
    /// Last packet the sender says it sent (CLOSE_STREAM), unset until then.
    pub(super) last_net_seq: NetSeq,
    /// CLOSE_STREAM (or session close) seen.
    pub(super) close_requested: bool,
    /// Closed: files released, no longer in the registry.
    pub(super) closed: bool,
    /// Visible to viewers (STREAMS_SENT).
    pub(super) published: bool,
    /// A packet is being written outside the lock.
    pub(super) writing: bool,
    /// A rotation moves the files outside the lock (packets wait on `Stream::moved`).
    pub(super) rotating: bool,
    /// Complete entries not yet committed.
    pub(super) ready: Vec<ReadyEntry>,
    /// Data files written since the last commit.
    pub(super) unsynced: Vec<Arc<StorageFile>>,
    /// Chunks the stream left (rotation, close): released by the next commit, once what the
    /// stream wrote into them is durable, so an archived chunk is complete when it is released.
    pub(super) retired: Vec<Arc<Chunk>>,
    /// Entries completed so far (viewer packet count once committed).
    pub(super) index_received: u64,
    /// Entries committed so far.
    pub(super) index_committed: u64,
    /// packet_seq_num of the last completed entry.
    pub(super) received_psn: Option<u64>,
    /// The tracer's cumulative discarded-event count in the last completed entry.
    pub(super) events_discarded: u64,
    /// Live beacon: the stream is inactive up to this timestamp (`u64::MAX`: active).
    pub(super) beacon_ts_end: u64,
    /// CTF stream class id (from indexes or beacons).
    pub(super) ctf_stream_id: u64,
    /// Metadata bytes received (padding included).
    pub(super) metadata_received: u64,
    /// Metadata bytes committed.
    pub(super) metadata_committed: u64,
    /// Where the metadata file's whole units end (CTF 2: whole JSON records).
    pub(super) metadata_units: crate::storage::json_seq::Units,
    /// Rotation in progress.
    pub(super) rotation: Option<PendingRotation>,
    /// Rotations completed.
    pub(super) completed_rotations: u64,
    /// Data pending protocol: checked since BEGIN_DATA_PENDING.
    pub(super) checked: bool,
    /// Index halves that never got their data (lost packets), final once closed.
    pub(super) lost_packets: u64,
    /// Data halves that never got their index (unindexed packets), final once closed.
    pub(super) unindexed_packets: u64,
}

/// A relay stream.
#[derive(Debug)]
pub struct Stream {
    /// Handle given to the sender.
    pub id: StreamId,
    /// Its session.
    pub session: Arc<Session>,
    /// Its CTF trace.
    pub trace_id: CtfTraceId,
    /// Stream name (`channel0_0`, `metadata`).
    pub name: String,
    /// Trace directory relative to the chunk (`ust/uid/0/64-bit`).
    pub path: String,
    /// Whether this is the metadata stream of its trace.
    pub is_metadata: bool,
    /// Tracefile size limit (0 = unlimited).
    pub tracefile_size: u64,
    /// Tracefile count limit (0 = unlimited).
    pub tracefile_count: u64,
    /// Index version, `None` when the session keeps no index (snapshot, old peers, metadata).
    pub index_version: Option<IndexVersion>,
    /// The relay's merge table (data and index halves of this stream's packets).
    pub merge: Arc<MergeTable>,
    /// What viewers may see of it (published by the commit group).
    pub frontier: crate::frontier::Frontier,
    /// When its last data packet was received (milliseconds since the Unix epoch, 0: none yet):
    /// one relaxed store per packet, read by the status page.
    last_packet_ms: AtomicU64,
    state: Mutex<StreamState>,
    /// Signalled when a rotation finished moving the files.
    pub(super) moved: Condvar,
}

impl Stream {
    /// Records that a data packet was received now (a clock read and one relaxed store: no
    /// lock, no allocation).
    pub fn packet_received(&self) {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.last_packet_ms.store(ms, Ordering::Relaxed);
    }

    /// When its last data packet was received (milliseconds since the Unix epoch), `None`
    /// before the first.
    pub fn last_packet_ms(&self) -> Option<u64> {
        match self.last_packet_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(ms),
        }
    }

    /// A new stream writing its first data file into `chunk`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: StreamId,
        session: Arc<Session>,
        trace_id: CtfTraceId,
        name: String,
        path: String,
        tracefile_size: u64,
        tracefile_count: u64,
        chunk: Arc<Chunk>,
        merge: Arc<MergeTable>,
    ) -> Result<Arc<Stream>, StorageError> {
        let is_metadata = name == "metadata";
        let index_version =
            (!is_metadata && session.uses_index()).then(|| IndexVersion::for_minor(session.minor));
        let data = super::files::create_data(&chunk, &path, &name, tracefile_size, 0)?;
        Ok(Self::assemble(
            id,
            session,
            trace_id,
            name,
            path,
            (tracefile_size, tracefile_count),
            (is_metadata, index_version),
            chunk,
            merge,
            data,
        ))
    }

    /// Reopens a stream whose files survived a restart of the relay (a trelay:// session
    /// resumed: crash recovery already cut them to what was committed), to go on appending.
    #[allow(clippy::too_many_arguments)]
    pub fn reopen(
        id: StreamId,
        session: Arc<Session>,
        trace_id: CtfTraceId,
        name: String,
        path: String,
        chunk: Arc<Chunk>,
        merge: Arc<MergeTable>,
    ) -> Result<Arc<Stream>, StorageError> {
        let is_metadata = name == "metadata";
        let index_version =
            (!is_metadata && session.uses_index()).then(|| IndexVersion::for_minor(session.minor));
        let data = super::files::reopen_data(&chunk, &path, &name)?;
        let len = data.len()?;
        let first = if is_metadata && len > 0 {
            let mut b = [0u8; 1];
            data.read_exact_at(&mut b, 0)?;
            Some(b[0])
        } else {
            None
        };
        let index = match index_version {
            Some(v) => Some(super::files::reopen_index(
                data.clone(),
                &chunk,
                &path,
                &name,
                v,
            )?),
            None => None,
        };
        let last = match &index {
            Some((idx, n)) if *n > 0 => Some(idx.read_entry(n - 1)?),
            _ => None,
        };
        let s = Self::assemble(
            id,
            session,
            trace_id,
            name,
            path,
            (0, 0),
            (is_metadata, index_version),
            chunk,
            merge,
            data,
        );
        {
            let mut st = s.lock();
            st.size_current = len;
            st.published = true;
            if is_metadata {
                st.metadata_received = len;
                st.metadata_committed = len;
                st.metadata_units = crate::storage::json_seq::Units::resumed(len, first);
            }
            if let Some((idx, n)) = index {
                st.files.insert(0, idx.clone());
                st.index = Some(idx);
                st.index_received = n;
                st.index_committed = n;
                if n > 0 {
                    st.prev_data_seq = NetSeq(n - 1);
                    st.prev_index_seq = NetSeq(n - 1);
                }
                if let Some(e) = last {
                    st.received_psn = Some(e.packet_seq_num);
                    st.events_discarded = e.events_discarded;
                    st.last_end = Some((0, e.offset.saturating_add(e.packet_size / 8)));
                }
            }
        }
        Ok(s)
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        id: StreamId,
        session: Arc<Session>,
        trace_id: CtfTraceId,
        name: String,
        path: String,
        (tracefile_size, tracefile_count): (u64, u64),
        (is_metadata, index_version): (bool, Option<IndexVersion>),
        chunk: Arc<Chunk>,
        merge: Arc<MergeTable>,
        data: Arc<StorageFile>,
    ) -> Arc<Stream> {
        Arc::new(Stream {
            id,
            session,
            trace_id,
            name,
            path,
            is_metadata,
            tracefile_size,
            tracefile_count,
            index_version,
            merge,
            frontier: crate::frontier::Frontier::default(),
            last_packet_ms: AtomicU64::new(0),
            moved: Condvar::new(),
            state: Mutex::new(StreamState {
                chunk: Some(chunk),
                data: Some(data),
                index: None,
                file_no: 0,
                generation: 0,
                files: BTreeMap::new(),
                file_nos: BTreeMap::from([(0, 0)]),
                last_end: None,
                held: Vec::new(),
                rebases: Vec::new(),
                size_current: 0,
                prev_data_seq: NetSeq::UNSET,
                prev_index_seq: NetSeq::UNSET,
                last_net_seq: NetSeq::UNSET,
                close_requested: false,
                closed: false,
                published: false,
                writing: false,
                rotating: false,
                ready: Vec::new(),
                unsynced: Vec::new(),
                retired: Vec::new(),
                index_received: 0,
                index_committed: 0,
                received_psn: None,
                events_discarded: 0,
                beacon_ts_end: u64::MAX,
                ctf_stream_id: u64::MAX,
                metadata_received: 0,
                metadata_committed: 0,
                metadata_units: Default::default(),
                rotation: None,
                completed_rotations: 0,
                checked: false,
                lost_packets: 0,
                unindexed_packets: 0,
            }),
        })
    }

    /// Locks the stream state (never hold the guard across an `.await`).
    pub fn lock(&self) -> MutexGuard<'_, StreamState> {
        lock(&self.state)
    }
}

impl StreamState {
    /// Leaves the current chunk for `next`; the old one is released by the next commit.
    pub fn switch_chunk(&mut self, next: Option<Arc<Chunk>>) {
        if let Some(old) = std::mem::replace(&mut self.chunk, next) {
            if !self.retired.iter().any(|c| Arc::ptr_eq(c, &old)) {
                self.retired.push(old);
            }
        }
    }

    /// The last packet both halves of which are in (the data half only without an index):
    /// what DATA_PENDING compares against.
    pub fn last_complete_seq(&self, indexed: bool) -> NetSeq {
        if indexed {
            NetSeq(self.prev_data_seq.0.min(self.prev_index_seq.0))
        } else {
            self.prev_data_seq
        }
    }

    /// Marks the stream as checked by the data-pending protocol (`false`: check again).
    pub fn set_checked(&mut self, checked: bool) {
        self.checked = checked;
    }

    /// Whether the stream still owes data to a data-pending check: open and not checked.
    pub fn awaits_check(&self) -> bool {
        !self.checked && !self.closed
    }

    /// Makes the stream visible to viewers; `true` if it was not yet.
    pub fn publish(&mut self) -> bool {
        !std::mem::replace(&mut self.published, true)
    }

    /// Metadata bytes received (padding included).
    pub fn metadata_received(&self) -> u64 {
        self.metadata_received
    }

    /// Metadata bytes committed.
    pub fn metadata_committed(&self) -> u64 {
        self.metadata_committed
    }

    /// Metadata bytes received that end a whole unit: what a commit may publish (all of them
    /// for CTF 1.8; for CTF 2 up to the end of the last whole JSON record).
    pub fn metadata_whole(&self) -> u64 {
        self.metadata_units.whole().min(self.metadata_received)
    }

    /// Index entries committed.
    pub fn entries_committed(&self) -> u64 {
        self.index_committed
    }

    /// Whether everything received (index entries and metadata) is committed.
    pub fn all_committed(&self) -> bool {
        self.index_received == self.index_committed
            && self.metadata_whole() == self.metadata_committed
    }

    /// The live beacon's end timestamp while the stream is inactive and fully committed.
    pub fn quiet_until(&self) -> Option<u64> {
        (self.beacon_ts_end != u64::MAX && self.all_committed()).then_some(self.beacon_ts_end)
    }

    /// CTF stream class id (`u64::MAX` until an index or a beacon told it).
    pub fn ctf_stream_id(&self) -> u64 {
        self.ctf_stream_id
    }

    /// Whether the stream is closed (files released, out of the registry).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The figures the status page shows: bytes in the current data file (metadata: bytes
    /// received), entries completed, entries committed, tracefile number, lost and unindexed
    /// packets.
    pub fn figures(&self) -> [u64; 6] {
        [
            self.size_current.max(self.metadata_received),
            self.index_received,
            self.index_committed,
            self.file_no,
            self.lost_packets,
            self.unindexed_packets,
        ]
    }

    /// Packets complete but not committed yet.
    pub fn uncommitted(&self) -> u64 {
        self.index_received.saturating_sub(self.index_committed)
    }

    /// Whether a commit has something to do.
    pub fn has_commit_work(&self) -> bool {
        !self.ready.is_empty() || !self.unsynced.is_empty() || !self.retired.is_empty()
    }
}

/// `(i64)(a - b) < 0` on sequence numbers, as the protocol compares them.
pub fn seq_before(a: NetSeq, b: NetSeq) -> bool {
    (a.0.wrapping_sub(b.0) as i64) < 0
}
