//! The two halves of an index entry, and what the merge table hands back.

use std::time::Duration;
use trelay_proto::ctf::index::IndexEntry;
use trelay_proto::{NetSeq, StreamId};

/// The data half: where the data connection wrote packet `seq` of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DataHalf {
    /// The stream's tracefile counter when the packet was written (see
    /// `session::files`: monotonic, 0 for the first file; the file on disk is
    /// `file_index % tracefile_count` when the count is bounded).
    pub file_index: u64,
    /// Byte offset of the packet in that data file.
    pub offset: u64,
    /// Bytes written: payload plus padding (`packet_size / 8` of the matching index).
    pub size: u64,
}

/// The index half: the fields of a SEND_INDEX message (everything of an index entry but the
/// offset, which only the data side knows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct IndexHalf {
    /// Packet size in bits, padding included.
    pub packet_size: u64,
    /// Content size in bits.
    pub content_size: u64,
    /// Timestamp of the first event.
    pub timestamp_begin: u64,
    /// Timestamp of the last event.
    pub timestamp_end: u64,
    /// Cumulative count of discarded events.
    pub events_discarded: u64,
    /// CTF stream class id.
    pub stream_id: u64,
    /// CTF stream instance id (`u64::MAX` when the peer does not send it).
    pub stream_instance_id: u64,
    /// CTF packet sequence number (`u64::MAX` when the peer does not send it).
    pub packet_seq_num: u64,
}

impl IndexHalf {
    /// The index entry of this half at `offset` of its data file.
    pub fn entry(&self, offset: u64) -> IndexEntry {
        IndexEntry {
            offset,
            packet_size: self.packet_size,
            content_size: self.content_size,
            timestamp_begin: self.timestamp_begin,
            timestamp_end: self.timestamp_end,
            events_discarded: self.events_discarded,
            stream_id: self.stream_id,
            stream_instance_id: self.stream_instance_id,
            packet_seq_num: self.packet_seq_num,
        }
    }

    /// Checks this half against the packet it describes, `bytes` long in the data file (payload
    /// plus padding): its `packet_size` must be exactly those bytes in bits and its
    /// `content_size` within them, or the entry would point past (or short of) its packet.
    pub fn check_against(&self, bytes: u64) -> Result<(), IndexMismatch> {
        let bits = bytes.checked_mul(8);
        if bits == Some(self.packet_size) && self.content_size <= self.packet_size {
            return Ok(());
        }
        Err(IndexMismatch {
            packet_size: self.packet_size,
            content_size: self.content_size,
            bytes,
        })
    }

    /// The lost-packet marker for this half: its entry with offset `u64::MAX` (−1).
    pub fn lost_marker(&self) -> IndexEntry {
        self.entry(u64::MAX)
    }
}

/// An index entry whose sizes disagree with the packet it describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "index entry of packet_size {packet_size} bits, content_size {content_size} bits, for a \
     packet of {bytes} bytes"
)]
pub struct IndexMismatch {
    /// The entry's packet size (bits).
    pub packet_size: u64,
    /// The entry's content size (bits).
    pub content_size: u64,
    /// The packet's bytes in the data file (payload plus padding).
    pub bytes: u64,
}

impl From<&IndexEntry> for IndexHalf {
    fn from(e: &IndexEntry) -> Self {
        IndexHalf {
            packet_size: e.packet_size,
            content_size: e.content_size,
            timestamp_begin: e.timestamp_begin,
            timestamp_end: e.timestamp_end,
            events_discarded: e.events_discarded,
            stream_id: e.stream_id,
            stream_instance_id: e.stream_instance_id,
            packet_seq_num: e.packet_seq_num,
        }
    }
}

/// One half, whichever it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Half {
    /// From the data port.
    Data(DataHalf),
    /// From SEND_INDEX on the control port.
    Index(IndexHalf),
}

impl Half {
    /// Which half this is.
    pub fn kind(&self) -> HalfKind {
        match self {
            Half::Data(_) => HalfKind::Data,
            Half::Index(_) => HalfKind::Index,
        }
    }
}

/// Which half.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HalfKind {
    /// The data half.
    Data,
    /// The index half.
    Index,
}

impl std::fmt::Display for HalfKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HalfKind::Data => "data",
            HalfKind::Index => "index",
        })
    }
}

/// A complete entry: both halves of packet `seq` met. Queue `entry` for the index file of
/// tracefile `file_index` (see `Stream::on_completed` in `session::ingest`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completed {
    /// The stream.
    pub stream: StreamId,
    /// The packet's net_seq_num.
    pub seq: NetSeq,
    /// Tracefile the packet was written to (from the data half).
    pub file_index: u64,
    /// Bytes of the packet in the data file (from the data half).
    pub size: u64,
    /// The entry: offset from the data half, every other field from the index half.
    pub entry: IndexEntry,
}

/// Why a half left the table without its partner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExpiryReason {
    /// Its deadline passed.
    Deadline,
    /// Its stream held the maximum number of pending halves: the oldest went early.
    StreamCap,
    /// The table held the maximum number of pending halves: the oldest went early.
    TotalCap,
    /// Its stream was removed ([`super::MergeTable::remove_stream`]).
    StreamRemoved,
    /// Data-only halves dropped at a close without a last sequence number
    /// ([`super::MergeTable::drop_data_only`]).
    DataOnlyDropped,
}

impl ExpiryReason {
    /// Whether the half went before its deadline because of a cap.
    pub fn is_early(&self) -> bool {
        matches!(self, ExpiryReason::StreamCap | ExpiryReason::TotalCap)
    }
}

/// A half whose partner never came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expired {
    /// The stream.
    pub stream: StreamId,
    /// The packet's net_seq_num.
    pub seq: NetSeq,
    /// The half that waited: an index half is a **lost packet** (described, never written), a
    /// data half an **unindexed packet** (in the data file, not in the index).
    pub half: Half,
    /// Why it left.
    pub reason: ExpiryReason,
    /// How long it waited.
    pub waited: Duration,
}

impl Expired {
    /// Whether this is a lost packet (an index half without data).
    pub fn is_lost(&self) -> bool {
        matches!(self.half, Half::Index(_))
    }
}

/// Per-stream accounting of halves that left without their partner.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub struct LossCounters {
    /// Index halves without data (packets described by the sender, never received).
    pub lost_packets: u64,
    /// Data halves without index (packets in the data file that no index entry points to).
    pub unindexed_packets: u64,
    /// Of the two above, how many were expired before their deadline by a cap.
    pub early_expired: u64,
}

impl LossCounters {
    /// Accounts one expired half.
    pub fn record(&mut self, e: &Expired) {
        match e.half {
            Half::Index(_) => self.lost_packets = self.lost_packets.saturating_add(1),
            Half::Data(_) => self.unindexed_packets = self.unindexed_packets.saturating_add(1),
        }
        if e.reason.is_early() {
            self.early_expired = self.early_expired.saturating_add(1);
        }
    }

    /// Adds `other` to these counters.
    pub fn add(&mut self, other: &LossCounters) {
        self.lost_packets = self.lost_packets.saturating_add(other.lost_packets);
        self.unindexed_packets = self
            .unindexed_packets
            .saturating_add(other.unindexed_packets);
        self.early_expired = self.early_expired.saturating_add(other.early_expired);
    }

    /// Whether nothing was lost.
    pub fn is_zero(&self) -> bool {
        *self == LossCounters::default()
    }
}
