//! The header and context at the start of every CTF data packet LTTng 2.13 writes.
//!
//! Both UST and kernel tracers declare (in their TSDL metadata) a packet header
//! `{ u32 magic; u8 uuid[16]; u32 stream_id; u64 stream_instance_id; }` followed by a packet
//! context `{ u64 timestamp_begin; u64 timestamp_end; u64 content_size; u64 packet_size;
//! u64 packet_seq_num; unsigned long events_discarded; u32 cpu_id; }`. Sizes are in bits for
//! `content_size` and `packet_size`. Every field's offset is a multiple of its natural size, so
//! the layout has no padding whether the tracer declares byte alignment (x86) or natural alignment:
//!
//! | offset | field |
//! | --- | --- |
//! | 0 | magic (`0xC1FC1FC1`) |
//! | 4 | uuid |
//! | 20 | stream_id (CTF stream class) |
//! | 24 | stream_instance_id |
//! | 32 | timestamp_begin |
//! | 40 | timestamp_end |
//! | 48 | content_size |
//! | 56 | packet_size |
//! | 64 | packet_seq_num |
//! | 72 | events_discarded (8 bytes from 64-bit tracers, 4 from 32-bit ones) |
//! | 80 / 76 | cpu_id |
//!
//! The only layout difference between tracers is the width of `unsigned long`, chosen with
//! [`WordSize`] (the TSDL `env.architecture_bit_width`, and the `32-bit`/`64-bit` directory of
//! per-UID UST traces). Integers are in the tracer's byte order, detected from the magic.

use bytes::BufMut;

use super::endian::{ByteOrder, OrderedReader};
use crate::codec::{DecodeError, Decoded};

/// Magic number at the start of every CTF data packet.
pub const PACKET_MAGIC: u32 = 0xC1FC_1FC1;

/// Width of the tracer's `unsigned long`, which sizes `events_discarded`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WordSize {
    /// 32-bit tracer (4-byte `events_discarded`; 80-byte header + context).
    Bits32,
    /// 64-bit tracer (8-byte `events_discarded`; 84-byte header + context).
    Bits64,
}

impl WordSize {
    /// Size of the packet header plus context for this word size.
    pub fn header_len(self) -> usize {
        match self {
            WordSize::Bits32 => 80,
            WordSize::Bits64 => 84,
        }
    }
}

/// The packet header and context of a CTF data packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PacketHeader {
    /// Byte order the packet was written in.
    pub byte_order: ByteOrder,
    /// Trace UUID.
    pub uuid: [u8; 16],
    /// CTF stream class id.
    pub stream_id: u32,
    /// CTF stream instance id (for per-CPU channels, the CPU).
    pub stream_instance_id: u64,
    /// Timestamp of the first event (clock cycles).
    pub timestamp_begin: u64,
    /// Timestamp of the last event (clock cycles).
    pub timestamp_end: u64,
    /// Content size in bits.
    pub content_size: u64,
    /// Packet size in bits, padding included.
    pub packet_size: u64,
    /// Per-stream packet sequence number.
    pub packet_seq_num: u64,
    /// Cumulative count of events discarded on this stream.
    pub events_discarded: u64,
    /// CPU that wrote the packet.
    pub cpu_id: u32,
}

impl PacketHeader {
    /// Decodes the header and context from the start of a packet. The byte order comes from the
    /// magic; anything else is [`DecodeError::BadMagic`]. Sizes are not checked against each
    /// other here.
    pub fn decode(buf: &[u8], word: WordSize) -> Result<Decoded<PacketHeader>, DecodeError> {
        let Some(first) = buf.get(..4).and_then(|b| <[u8; 4]>::try_from(b).ok()) else {
            return Ok(Decoded::Incomplete {
                needed: word.header_len(),
            });
        };
        let Some(byte_order) = ByteOrder::detect(first, PACKET_MAGIC) else {
            return Err(DecodeError::BadMagic {
                what: "CTF packet header",
                expected: PACKET_MAGIC,
                found: u32::from_le_bytes(first),
            });
        };
        let mut r = OrderedReader::new(buf, byte_order);
        let decoded = (|| {
            r.u32()?;
            Some(PacketHeader {
                byte_order,
                uuid: r.array()?,
                stream_id: r.u32()?,
                stream_instance_id: r.u64()?,
                timestamp_begin: r.u64()?,
                timestamp_end: r.u64()?,
                content_size: r.u64()?,
                packet_size: r.u64()?,
                packet_seq_num: r.u64()?,
                events_discarded: match word {
                    WordSize::Bits32 => u64::from(r.u32()?),
                    WordSize::Bits64 => r.u64()?,
                },
                cpu_id: r.u32()?,
            })
        })();
        Ok(match decoded {
            Some(msg) => Decoded::Done {
                msg,
                used: word.header_len(),
            },
            None => Decoded::Incomplete {
                needed: word.header_len(),
            },
        })
    }

    /// Appends the header and context ([`WordSize::header_len`] bytes) in `self.byte_order`.
    /// With [`WordSize::Bits32`], `events_discarded` is written modulo 2^32, as a 32-bit tracer's
    /// counter wraps.
    pub fn encode(&self, word: WordSize, buf: &mut impl BufMut) {
        let o = self.byte_order;
        o.put_u32(buf, PACKET_MAGIC);
        buf.put_slice(&self.uuid);
        o.put_u32(buf, self.stream_id);
        o.put_u64(buf, self.stream_instance_id);
        o.put_u64(buf, self.timestamp_begin);
        o.put_u64(buf, self.timestamp_end);
        o.put_u64(buf, self.content_size);
        o.put_u64(buf, self.packet_size);
        o.put_u64(buf, self.packet_seq_num);
        match word {
            WordSize::Bits32 => o.put_u32(buf, self.events_discarded as u32),
            WordSize::Bits64 => o.put_u64(buf, self.events_discarded),
        }
        o.put_u32(buf, self.cpu_id);
    }
}
