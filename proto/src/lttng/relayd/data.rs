//! The 32-byte header in front of every data-port packet.
//!
//! Layout (big-endian, packed): `circuit_id u64` (0, ignored), `stream_id u64` (the relay stream
//! handle), `net_seq_num u64` (per-stream packet counter from 0), `data_size u32` (payload bytes
//! that follow), `padding_size u32` (zero bytes the relay appends after the payload; they are not
//! sent). The data port has no handshake and no reply: the stream is header, payload, header,
//! payload, … Decoding allocates nothing and cannot fail.

use bytes::BufMut;

use crate::codec::Decoded;
use crate::id::{NetSeq, StreamId};

/// Size of the data header.
pub const DATA_HEADER_LEN: usize = 32;

/// A data-port packet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DataHeader {
    /// Circuit id (0; ignored).
    pub circuit_id: u64,
    /// Relay stream handle (from ADD_STREAM).
    pub stream_id: StreamId,
    /// Packet number within the stream.
    pub net_seq: NetSeq,
    /// Payload bytes following the header.
    pub data_size: u32,
    /// Zero bytes to append after the payload on disk.
    pub padding_size: u32,
}

impl DataHeader {
    /// Decodes the header from exactly 32 bytes.
    pub fn from_bytes(b: &[u8; DATA_HEADER_LEN]) -> DataHeader {
        let [c0, c1, c2, c3, c4, c5, c6, c7, s0, s1, s2, s3, s4, s5, s6, s7, n0, n1, n2, n3, n4, n5, n6, n7, d0, d1, d2, d3, p0, p1, p2, p3] =
            *b;
        DataHeader {
            circuit_id: u64::from_be_bytes([c0, c1, c2, c3, c4, c5, c6, c7]),
            stream_id: StreamId(u64::from_be_bytes([s0, s1, s2, s3, s4, s5, s6, s7])),
            net_seq: NetSeq(u64::from_be_bytes([n0, n1, n2, n3, n4, n5, n6, n7])),
            data_size: u32::from_be_bytes([d0, d1, d2, d3]),
            padding_size: u32::from_be_bytes([p0, p1, p2, p3]),
        }
    }

    /// Decodes the header from the start of `buf` (32 bytes used).
    pub fn decode(buf: &[u8]) -> Decoded<DataHeader> {
        match buf.first_chunk::<DATA_HEADER_LEN>() {
            Some(b) => Decoded::Done {
                msg: DataHeader::from_bytes(b),
                used: DATA_HEADER_LEN,
            },
            None => Decoded::Incomplete {
                needed: DATA_HEADER_LEN,
            },
        }
    }

    /// Bytes the packet occupies on disk: payload plus padding, in 64-bit arithmetic (two
    /// `u32`s cannot overflow a `u64`).
    pub fn total_len(&self) -> u64 {
        u64::from(self.data_size).saturating_add(u64::from(self.padding_size))
    }

    /// The header as its 32 wire bytes.
    pub fn to_bytes(&self) -> [u8; DATA_HEADER_LEN] {
        let mut out = [0u8; DATA_HEADER_LEN];
        let mut w = out.as_mut_slice();
        self.encode(&mut w);
        out
    }

    /// Appends the 32-byte header.
    pub fn encode(&self, buf: &mut impl BufMut) {
        buf.put_u64(self.circuit_id);
        buf.put_u64(self.stream_id.0);
        buf.put_u64(self.net_seq.0);
        buf.put_u32(self.data_size);
        buf.put_u32(self.padding_size);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_total() {
        let h = DataHeader {
            circuit_id: 0,
            stream_id: StreamId(2),
            net_seq: NetSeq(7),
            data_size: u32::MAX,
            padding_size: u32::MAX,
        };
        let b = h.to_bytes();
        assert_eq!(DataHeader::from_bytes(&b), h);
        assert_eq!(DataHeader::decode(&b), Decoded::Done { msg: h, used: 32 });
        assert_eq!(
            DataHeader::decode(&b[..31]),
            Decoded::Incomplete { needed: 32 }
        );
        assert_eq!(h.total_len(), 2 * u64::from(u32::MAX));
    }
}
