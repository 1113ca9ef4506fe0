//! SEND_INDEX: the control half of a packet's index entry, or a live beacon.
//!
//! Layout (big-endian, packed): `relay_stream_id u64`, `net_seq_num u64`, `packet_size u64`
//! (bits), `content_size u64` (bits), `timestamp_begin u64`, `timestamp_end u64`,
//! `events_discarded u64`, `stream_id u64` (CTF stream class), then from minor 8 on
//! `stream_instance_id u64` and `packet_seq_num u64`: 64 bytes before minor 8, 80 from it. A
//! `packet_size` of 0 marks a beacon: "nothing new on this stream up to `timestamp_end`".
//! Decoding allocates nothing.

use bytes::BufMut;

use super::super::wire::Fields;
use crate::codec::DecodeError;
use crate::id::{NetSeq, StreamId};
use crate::lttng::relayd::version::ProtocolMinor;

/// Size of SEND_INDEX before minor 8.
pub const SEND_INDEX_V1_0_LEN: usize = 64;
/// Size of SEND_INDEX from minor 8 on.
pub const SEND_INDEX_V1_1_LEN: usize = 80;

/// SEND_INDEX request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SendIndex {
    /// Relay stream handle.
    pub relay_stream_id: StreamId,
    /// Data packet this index belongs to (for a beacon: the last packet sent, or unset).
    pub net_seq: NetSeq,
    /// Packet size in bits, padding included; 0 for a beacon.
    pub packet_size: u64,
    /// Content size in bits.
    pub content_size: u64,
    /// First timestamp of the packet (clock cycles).
    pub timestamp_begin: u64,
    /// Last timestamp of the packet; for a beacon, the time up to which the stream is idle.
    pub timestamp_end: u64,
    /// Cumulative count of discarded events.
    pub events_discarded: u64,
    /// CTF stream class id.
    pub stream_class_id: u64,
    /// CTF stream instance id (minor ≥ 8; all ones before).
    pub stream_instance_id: u64,
    /// CTF packet sequence number (minor ≥ 8; all ones before).
    pub packet_seq_num: u64,
}

impl SendIndex {
    /// Whether this is a live beacon (`packet_size == 0`) rather than a packet's index.
    pub fn is_beacon(&self) -> bool {
        self.packet_size == 0
    }

    /// Payload size for `minor` (80 from minor 8, else 64).
    pub fn payload_len(minor: ProtocolMinor) -> usize {
        if minor.has_extended_index() {
            SEND_INDEX_V1_1_LEN
        } else {
            SEND_INDEX_V1_0_LEN
        }
    }

    pub(crate) fn decode(f: &mut Fields<'_>, minor: ProtocolMinor) -> Result<Self, DecodeError> {
        let mut idx = SendIndex {
            relay_stream_id: StreamId(f.u64("index relay stream id")?),
            net_seq: NetSeq(f.u64("index net_seq_num")?),
            packet_size: f.u64("index packet size")?,
            content_size: f.u64("index content size")?,
            timestamp_begin: f.u64("index timestamp begin")?,
            timestamp_end: f.u64("index timestamp end")?,
            events_discarded: f.u64("index events discarded")?,
            stream_class_id: f.u64("index stream id")?,
            stream_instance_id: u64::MAX,
            packet_seq_num: u64::MAX,
        };
        if minor.has_extended_index() {
            idx.stream_instance_id = f.u64("index stream instance id")?;
            idx.packet_seq_num = f.u64("index packet seq num")?;
        }
        Ok(idx)
    }

    pub(crate) fn encode(&self, minor: ProtocolMinor, buf: &mut impl BufMut) {
        buf.put_u64(self.relay_stream_id.0);
        buf.put_u64(self.net_seq.0);
        buf.put_u64(self.packet_size);
        buf.put_u64(self.content_size);
        buf.put_u64(self.timestamp_begin);
        buf.put_u64(self.timestamp_end);
        buf.put_u64(self.events_discarded);
        buf.put_u64(self.stream_class_id);
        if minor.has_extended_index() {
            buf.put_u64(self.stream_instance_id);
            buf.put_u64(self.packet_seq_num);
        }
    }
}
