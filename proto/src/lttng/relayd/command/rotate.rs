//! ROTATE_STREAMS (minor ≥ 11): move streams to a new trace chunk (or to none) at given packet
//! positions.
//!
//! Header: `stream_count u32`, `new_chunk_id.is_set u8`, padding, `new_chunk_id.value u64`, then
//! `stream_count` positions of `stream_id u64`, `rotate_at_seq_num u64`. Senders lay the optional
//! chunk id out with their ABI's alignment, so the header is 13 bytes (packed), 16 (3 padding
//! bytes, 4-byte alignment) or 20 (7 padding bytes, 8-byte alignment, what x86-64 senders send).
//! The header size is chosen by the payload length, which must be exactly header + 16 × count;
//! padding bytes are ignored (2.13 senders leave them uninitialized). The encoder writes the
//! 20-byte form with zero padding. `stream_count` is capped at [`MAX_ROTATE_POSITIONS`] before the
//! positions are collected.

use bytes::BufMut;

use super::super::wire::{bool_from, check_cap, Fields};
use crate::codec::DecodeError;
use crate::id::StreamId;

/// Maximum number of positions in one ROTATE_STREAMS (senders send one message per channel).
pub const MAX_ROTATE_POSITIONS: u32 = 65_536;
/// Header size written by the encoder (x86-64 layout).
pub const ROTATE_STREAMS_HEADER_LEN: usize = 20;
/// Size of one position.
pub const ROTATE_POSITION_LEN: usize = 16;
/// Accepted header sizes and the padding each carries between `is_set` and the chunk id.
const HEADER_FORMS: [(usize, usize); 3] = [(13, 0), (16, 3), (20, 7)];

/// Where one stream switches chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RotatePosition {
    /// Stream handle.
    pub stream_id: StreamId,
    /// CTF packet sequence number of the first packet belonging to the new chunk (ignored for
    /// metadata streams).
    pub rotate_at_seq_num: u64,
}

/// ROTATE_STREAMS request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct RotateStreams {
    /// The chunk to rotate into; `None` = no chunk (destroy, clear of a stopped session).
    pub new_chunk_id: Option<u64>,
    /// One entry per stream.
    pub positions: Vec<RotatePosition>,
}

impl RotateStreams {
    /// Payload size (20-byte header).
    pub fn payload_len(&self) -> usize {
        ROTATE_POSITION_LEN
            .saturating_mul(self.positions.len())
            .saturating_add(ROTATE_STREAMS_HEADER_LEN)
    }

    pub(crate) fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut f = Fields::new(payload);
        let count = f.u32("rotate stream count")?;
        check_cap(
            u64::from(count),
            u64::from(MAX_ROTATE_POSITIONS),
            "rotate stream count",
        )?;
        let positions_len = usize::try_from(count)
            .ok()
            .and_then(|c| c.checked_mul(ROTATE_POSITION_LEN))
            .unwrap_or(usize::MAX);
        let padding = HEADER_FORMS
            .iter()
            .find(|(header, _)| header.checked_add(positions_len) == Some(payload.len()))
            .map(|&(_, padding)| padding)
            .ok_or(DecodeError::BadLength {
                what: "ROTATE_STREAMS payload",
                expected: (positions_len as u64).saturating_add(ROTATE_STREAMS_HEADER_LEN as u64),
                actual: payload.len() as u64,
            })?;
        let is_set = bool_from(
            u64::from(f.u8("new chunk id is_set")?),
            "new chunk id is_set",
        )?;
        f.bytes(padding, "rotate header padding")?;
        let chunk = f.u64("new chunk id")?;
        let mut positions = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
        while f.remaining() > 0 {
            positions.push(RotatePosition {
                stream_id: StreamId(f.u64("rotate position stream id")?),
                rotate_at_seq_num: f.u64("rotate position seq num")?,
            });
        }
        Ok(RotateStreams {
            new_chunk_id: is_set.then_some(chunk),
            positions,
        })
    }

    /// Encodes the 20-byte header form. The count saturates at `u32::MAX` (callers keep to
    /// [`MAX_ROTATE_POSITIONS`]).
    pub(crate) fn encode(&self, buf: &mut impl BufMut) {
        buf.put_u32(u32::try_from(self.positions.len()).unwrap_or(u32::MAX));
        buf.put_u8(u8::from(self.new_chunk_id.is_some()));
        buf.put_bytes(0, 7);
        buf.put_u64(self.new_chunk_id.unwrap_or(0));
        for p in &self.positions {
            buf.put_u64(p.stream_id.0);
            buf.put_u64(p.rotate_at_seq_num);
        }
    }
}
