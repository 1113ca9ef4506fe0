//! Fixed-size replies and the fixed parts of the replies that carry bulk data.
//!
//! - CONNECT reply (20): `viewer_session_id u64`, `major u32`, `minor u32`, `type u32`
//!   (lttng-relayd answers type 0).
//! - Index reply (64): `offset u64`, `packet_size u64` (bits), `content_size u64` (bits),
//!   `timestamp_begin u64`, `timestamp_end u64`, `events_discarded u64`, `stream_id u64` (CTF
//!   stream class), `status u32`, `flags u32`.
//! - Trace packet reply head (12): `status u32`, `len u32`, `flags u32`, then `len` bytes.
//! - Metadata reply head (12): `len u64`, `status u32`, then `len` bytes.
//!
//! The two heads can be encoded and decoded on their own so that a server can send the bytes from
//! a file (sendfile) and a client can read them into its own buffer.

use bytes::BufMut;

use super::status::{GetMetadataStatus, GetPacketStatus, NextIndexStatus, ViewerFlags};
use super::{MAX_METADATA_LEN, MAX_PACKET_LEN};
use crate::codec::{DecodeError, Decoded, Reader};
use crate::ctf::index::IndexEntry;
use crate::id::ViewerSessionId;

/// Size of the CONNECT reply.
pub const CONNECT_REPLY_LEN: usize = 20;
/// Size of the GET_NEXT_INDEX reply.
pub const INDEX_REPLY_LEN: usize = 64;
/// Size of the GET_PACKET reply head.
pub const PACKET_HEAD_LEN: usize = 12;
/// Size of the GET_METADATA reply head.
pub const METADATA_HEAD_LEN: usize = 12;

/// Decodes a fixed-size structure of `len` bytes with `f`, or reports how much is needed.
fn fixed<T>(
    buf: &[u8],
    len: usize,
    f: impl FnOnce(&mut Reader<'_>) -> Option<Result<T, DecodeError>>,
) -> Result<Decoded<T>, DecodeError> {
    let Some(bytes) = buf.get(..len) else {
        return Ok(Decoded::Incomplete { needed: len });
    };
    match f(&mut Reader::new(bytes)) {
        Some(Ok(msg)) => Ok(Decoded::Done { msg, used: len }),
        Some(Err(e)) => Err(e),
        None => Ok(Decoded::Incomplete { needed: len }),
    }
}

/// The CONNECT reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnectReply {
    /// Viewer session id assigned by the relay (0 for notification connections).
    pub viewer_session_id: ViewerSessionId,
    /// Relay protocol major (2).
    pub major: u32,
    /// Relay protocol minor (13 for lttng-relayd 2.13, 15 for 2.15 and trelayd).
    pub minor: u32,
    /// Connection type echoed by the relay (lttng-relayd sends 0); kept raw.
    pub conn_type: u32,
}

impl ConnectReply {
    /// Decodes the 20-byte reply.
    pub fn decode(buf: &[u8]) -> Result<Decoded<ConnectReply>, DecodeError> {
        fixed(buf, CONNECT_REPLY_LEN, |r| {
            Some(Ok(ConnectReply {
                viewer_session_id: ViewerSessionId(r.u64()?),
                major: r.u32()?,
                minor: r.u32()?,
                conn_type: r.u32()?,
            }))
        })
    }

    /// Appends the 20-byte reply.
    pub fn encode(&self, buf: &mut impl BufMut) {
        buf.put_u64(self.viewer_session_id.0);
        buf.put_u32(self.major);
        buf.put_u32(self.minor);
        buf.put_u32(self.conn_type);
    }
}

/// The GET_NEXT_INDEX reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IndexReply {
    /// Byte offset of the packet in the stream's current data file.
    pub offset: u64,
    /// Packet size in bits, padding included.
    pub packet_size: u64,
    /// Content size in bits.
    pub content_size: u64,
    /// Timestamp of the packet's first event.
    pub timestamp_begin: u64,
    /// Timestamp of the packet's last event; for INACTIVE, the time until which the stream is
    /// quiet.
    pub timestamp_end: u64,
    /// Cumulative count of discarded events.
    pub events_discarded: u64,
    /// CTF stream class id.
    pub stream_id: u64,
    /// Status.
    pub status: NextIndexStatus,
    /// Flags.
    pub flags: ViewerFlags,
}

impl IndexReply {
    /// An OK reply describing the packet of an index entry.
    pub fn from_entry(entry: &IndexEntry, flags: ViewerFlags) -> IndexReply {
        IndexReply {
            offset: entry.offset,
            packet_size: entry.packet_size,
            content_size: entry.content_size,
            timestamp_begin: entry.timestamp_begin,
            timestamp_end: entry.timestamp_end,
            events_discarded: entry.events_discarded,
            stream_id: entry.stream_id,
            status: NextIndexStatus::Ok,
            flags,
        }
    }

    /// A reply with `status`, `flags` and every other field 0 (RETRY, HUP, ERR).
    pub fn bare(status: NextIndexStatus, flags: ViewerFlags) -> IndexReply {
        IndexReply {
            offset: 0,
            packet_size: 0,
            content_size: 0,
            timestamp_begin: 0,
            timestamp_end: 0,
            events_discarded: 0,
            stream_id: 0,
            status,
            flags,
        }
    }

    /// An INACTIVE reply: quiet until `timestamp_end`, for CTF stream class `stream_id`.
    pub fn inactive(timestamp_end: u64, stream_id: u64, flags: ViewerFlags) -> IndexReply {
        IndexReply {
            timestamp_end,
            stream_id,
            ..IndexReply::bare(NextIndexStatus::Inactive, flags)
        }
    }

    /// Decodes the 64-byte reply; an unknown status is an error.
    pub fn decode(buf: &[u8]) -> Result<Decoded<IndexReply>, DecodeError> {
        fixed(buf, INDEX_REPLY_LEN, |r| {
            let (offset, packet_size, content_size) = (r.u64()?, r.u64()?, r.u64()?);
            let (timestamp_begin, timestamp_end) = (r.u64()?, r.u64()?);
            let (events_discarded, stream_id) = (r.u64()?, r.u64()?);
            let (status, flags) = (r.u32()?, r.u32()?);
            Some(NextIndexStatus::try_from(status).map(|status| IndexReply {
                offset,
                packet_size,
                content_size,
                timestamp_begin,
                timestamp_end,
                events_discarded,
                stream_id,
                status,
                flags: ViewerFlags(flags),
            }))
        })
    }

    /// Appends the 64-byte reply.
    pub fn encode(&self, buf: &mut impl BufMut) {
        buf.put_u64(self.offset);
        buf.put_u64(self.packet_size);
        buf.put_u64(self.content_size);
        buf.put_u64(self.timestamp_begin);
        buf.put_u64(self.timestamp_end);
        buf.put_u64(self.events_discarded);
        buf.put_u64(self.stream_id);
        buf.put_u32(self.status.to_u32());
        buf.put_u32(self.flags.0);
    }
}

/// The fixed part of a GET_PACKET reply; `len` bytes of data follow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PacketReplyHead {
    /// Status.
    pub status: GetPacketStatus,
    /// Number of data bytes that follow.
    pub len: u32,
    /// Flags (always 0 from 2.13).
    pub flags: ViewerFlags,
}

impl PacketReplyHead {
    /// Decodes the 12-byte head. Errors on an unknown status or a `len` above
    /// [`MAX_PACKET_LEN`].
    pub fn decode(buf: &[u8]) -> Result<Decoded<PacketReplyHead>, DecodeError> {
        fixed(buf, PACKET_HEAD_LEN, |r| {
            let (status, len, flags) = (r.u32()?, r.u32()?, r.u32()?);
            Some(decode_packet_head(status, len, flags))
        })
    }

    /// Appends the 12-byte head (the caller then sends `len` bytes).
    pub fn encode(&self, buf: &mut impl BufMut) {
        buf.put_u32(self.status.to_u32());
        buf.put_u32(self.len);
        buf.put_u32(self.flags.0);
    }
}

fn decode_packet_head(status: u32, len: u32, flags: u32) -> Result<PacketReplyHead, DecodeError> {
    if u64::from(len) > MAX_PACKET_LEN {
        return Err(DecodeError::TooLong {
            field: "packet.len",
            value: u64::from(len),
            max: MAX_PACKET_LEN,
        });
    }
    Ok(PacketReplyHead {
        status: GetPacketStatus::try_from(status)?,
        len,
        flags: ViewerFlags(flags),
    })
}

/// The fixed part of a GET_METADATA reply; `len` bytes of metadata follow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MetadataReplyHead {
    /// Number of metadata bytes that follow.
    pub len: u64,
    /// Status.
    pub status: GetMetadataStatus,
}

impl MetadataReplyHead {
    /// Decodes the 12-byte head. Errors on an unknown status or a `len` above
    /// [`MAX_METADATA_LEN`].
    pub fn decode(buf: &[u8]) -> Result<Decoded<MetadataReplyHead>, DecodeError> {
        fixed(buf, METADATA_HEAD_LEN, |r| {
            let (len, status) = (r.u64()?, r.u32()?);
            if len > MAX_METADATA_LEN {
                return Some(Err(DecodeError::TooLong {
                    field: "metadata.len",
                    value: len,
                    max: MAX_METADATA_LEN,
                }));
            }
            Some(
                GetMetadataStatus::try_from(status).map(|status| MetadataReplyHead { len, status }),
            )
        })
    }

    /// Appends the 12-byte head (the caller then sends `len` bytes).
    pub fn encode(&self, buf: &mut impl BufMut) {
        buf.put_u64(self.len);
        buf.put_u32(self.status.to_u32());
    }
}
