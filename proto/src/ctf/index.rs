//! CTF index files (v1.0, v1.1), big-endian throughout.
//!
//! A file is a 16-byte header (magic `0xC1F1DCC1`, major 1, minor 0 or 1, entry length) followed
//! by fixed-size entries, one per packet of the matching data file, in packet order. v1.0 entries
//! are 56 bytes; v1.1 entries add `stream_instance_id` and `packet_seq_num` (72 bytes). Readers
//! honour the header's entry length.

use bytes::BufMut;

/// Magic number at the start of every index file.
pub const INDEX_MAGIC: u32 = 0xC1F1_DCC1;
/// Size of the index file header.
pub const HEADER_LEN: usize = 16;
/// Size of a v1.0 entry.
pub const ENTRY_LEN_V1_0: u32 = 56;
/// Size of a v1.1 entry.
pub const ENTRY_LEN_V1_1: u32 = 72;

/// Index file version: which entry layout the file uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IndexVersion {
    /// v1.0, 56-byte entries (peers with negotiated minor < 8).
    V1_0,
    /// v1.1, 72-byte entries (peers with negotiated minor >= 8).
    V1_1,
}

impl IndexVersion {
    /// The version a relay writes for a peer with the given negotiated protocol minor.
    pub fn for_minor(minor: u32) -> Self {
        if minor >= 8 {
            IndexVersion::V1_1
        } else {
            IndexVersion::V1_0
        }
    }

    /// The index minor version number written in the header.
    pub fn minor(self) -> u32 {
        match self {
            IndexVersion::V1_0 => 0,
            IndexVersion::V1_1 => 1,
        }
    }

    /// Entry length in bytes.
    pub fn entry_len(self) -> u32 {
        match self {
            IndexVersion::V1_0 => ENTRY_LEN_V1_0,
            IndexVersion::V1_1 => ENTRY_LEN_V1_1,
        }
    }
}

/// One index entry: where a packet sits in its data file and what its context says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct IndexEntry {
    /// Byte offset of the packet in the data file (`u64::MAX` marks a lost packet).
    pub offset: u64,
    /// Packet size in bits, padding included.
    pub packet_size: u64,
    /// Content size in bits.
    pub content_size: u64,
    /// Timestamp of the first event (clock cycles).
    pub timestamp_begin: u64,
    /// Timestamp of the last event (clock cycles).
    pub timestamp_end: u64,
    /// Cumulative count of events the tracer discarded.
    pub events_discarded: u64,
    /// CTF stream class id.
    pub stream_id: u64,
    /// CTF stream instance id (v1.1; `u64::MAX` when unknown).
    pub stream_instance_id: u64,
    /// CTF packet sequence number (v1.1; `u64::MAX` when unknown).
    pub packet_seq_num: u64,
}

impl IndexEntry {
    /// Appends the entry in the layout of `version`.
    pub fn encode(&self, version: IndexVersion, buf: &mut impl BufMut) {
        buf.put_u64(self.offset);
        buf.put_u64(self.packet_size);
        buf.put_u64(self.content_size);
        buf.put_u64(self.timestamp_begin);
        buf.put_u64(self.timestamp_end);
        buf.put_u64(self.events_discarded);
        buf.put_u64(self.stream_id);
        if version == IndexVersion::V1_1 {
            buf.put_u64(self.stream_instance_id);
            buf.put_u64(self.packet_seq_num);
        }
    }
}

/// Appends an index file header for `version`.
pub fn encode_header(version: IndexVersion, buf: &mut impl BufMut) {
    buf.put_u32(INDEX_MAGIC);
    buf.put_u32(1);
    buf.put_u32(version.minor());
    buf.put_u32(version.entry_len());
}
