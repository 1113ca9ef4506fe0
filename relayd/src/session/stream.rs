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
use std::sync::{Arc, Mutex, MutexGuard};
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
    pub chunk: Option<Arc<Chunk>>,
    /// Current data file.
    pub data: Option<Arc<StorageFile>>,
    /// Current index file (created on the first packet of each data file).
    pub index: Option<Arc<IndexFile>>,
    /// Current tracefile number.
    pub file_no: u64,
    /// Generation of the current data file: bumped at every new data file (tracefile switch,
    /// rotation), it names the file in the data halves of the merge table.
    pub generation: u64,
    /// Index files by generation, for entries still to complete.
    pub files: BTreeMap<u64, Arc<IndexFile>>,
    /// Tracefile number of each recent generation (for loss records).
    pub file_nos: BTreeMap<u64, u64>,
    /// Generation and end offset of the last completed entry.
    pub last_end: Option<(u64, u64)>,
    /// Complete entries past a pending rotation's pivot, waiting for the data side.
    pub held: Vec<Completed>,
    /// Translations of entries whose packets a rotation moved.
    pub rebases: Vec<Rebase>,
    /// Bytes in the current data file.
    pub size_current: u64,
    /// Last net_seq_num written to the data file.
    pub prev_data_seq: NetSeq,
    /// Last net_seq_num whose index entry was completed.
    pub prev_index_seq: NetSeq,
    /// Last packet the sender says it sent (CLOSE_STREAM), unset until then.
    pub last_net_seq: NetSeq,
    /// CLOSE_STREAM (or session close) seen.
    pub close_requested: bool,
    /// Closed: files released, no longer in the registry.
    pub closed: bool,
    /// Visible to viewers (STREAMS_SENT).
    pub published: bool,
    /// A packet is being written outside the lock.
    pub writing: bool,
    /// Complete entries not yet committed.
    pub ready: Vec<ReadyEntry>,
    /// Data files written since the last commit.
    pub unsynced: Vec<Arc<StorageFile>>,
    /// Chunks the stream left (rotation, close): released by the next commit, once what the
    /// stream wrote into them is durable, so an archived chunk is complete when it is released.
    pub retired: Vec<Arc<Chunk>>,
    /// Entries completed so far (viewer packet count once committed).
    pub index_received: u64,
    /// Entries committed so far.
    pub index_committed: u64,
    /// packet_seq_num of the last completed entry.
    pub received_psn: Option<u64>,
    /// Live beacon: the stream is inactive up to this timestamp (`u64::MAX`: active).
    pub beacon_ts_end: u64,
    /// CTF stream class id (from indexes or beacons).
    pub ctf_stream_id: u64,
    /// Metadata bytes received (padding included).
    pub metadata_received: u64,
    /// Metadata bytes committed.
    pub metadata_committed: u64,
    /// Rotation in progress.
    pub rotation: Option<PendingRotation>,
    /// Rotations completed.
    pub completed_rotations: u64,
    /// Data pending protocol: checked since BEGIN_DATA_PENDING.
    pub checked: bool,
    /// Index halves that never got their data (lost packets), final once closed.
    pub lost_packets: u64,
    /// Data halves that never got their index (unindexed packets), final once closed.
    pub unindexed_packets: u64,
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
    state: Mutex<StreamState>,
}

impl Stream {
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
        Ok(Arc::new(Stream {
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
                ready: Vec::new(),
                unsynced: Vec::new(),
                retired: Vec::new(),
                index_received: 0,
                index_committed: 0,
                received_psn: None,
                beacon_ts_end: u64::MAX,
                ctf_stream_id: u64::MAX,
                metadata_received: 0,
                metadata_committed: 0,
                rotation: None,
                completed_rotations: 0,
                checked: false,
                lost_packets: 0,
                unindexed_packets: 0,
            }),
        }))
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

    /// Whether a commit has something to do.
    pub fn has_commit_work(&self) -> bool {
        !self.ready.is_empty() || !self.unsynced.is_empty() || !self.retired.is_empty()
    }
}

/// `(i64)(a - b) < 0` on sequence numbers, as the protocol compares them.
pub fn seq_before(a: NetSeq, b: NetSeq) -> bool {
    (a.0.wrapping_sub(b.0) as i64) < 0
}
