//! Packetized CTF metadata, as LTTng writes it to the `metadata` file and serves it to viewers.
//!
//! The metadata stream is a sequence of packets. Each starts with a 37-byte header, in the
//! tracer's byte order and packed:
//!
//! | offset | field |
//! | --- | --- |
//! | 0 | magic u32 (`0x75D11D57`) |
//! | 4 | uuid `u8[16]` |
//! | 20 | checksum u32 |
//! | 24 | content_size u32 (bits, header included) |
//! | 28 | packet_size u32 (bits, header and padding included) |
//! | 32 | compression_scheme u8 (0 = none) |
//! | 33 | encryption_scheme u8 (0 = none) |
//! | 34 | checksum_scheme u8 (0 = none) |
//! | 35 | major u8 (1) |
//! | 36 | minor u8 (8) |
//!
//! followed by TSDL text up to `content_size`, then padding up to `packet_size`. The TSDL of a
//! trace is the concatenation of the text parts of all its packets.

use bytes::BufMut;

use super::endian::{ByteOrder, OrderedReader};
use crate::codec::{DecodeError, Decoded};

/// Magic number at the start of every metadata packet.
pub const METADATA_MAGIC: u32 = 0x75D1_1D57;
/// Size of a metadata packet header.
pub const METADATA_HEADER_LEN: usize = 37;

/// A metadata packet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MetadataPacketHeader {
    /// Byte order the packet was written in.
    pub byte_order: ByteOrder,
    /// Trace UUID.
    pub uuid: [u8; 16],
    /// Checksum (0 when `checksum_scheme` is 0).
    pub checksum: u32,
    /// Bits of header and text.
    pub content_size: u32,
    /// Bits of the whole packet, padding included.
    pub packet_size: u32,
    /// Compression scheme (0 = none).
    pub compression_scheme: u8,
    /// Encryption scheme (0 = none).
    pub encryption_scheme: u8,
    /// Checksum scheme (0 = none).
    pub checksum_scheme: u8,
    /// CTF major version.
    pub major: u8,
    /// CTF minor version.
    pub minor: u8,
}

impl MetadataPacketHeader {
    /// Bytes of TSDL text in the packet.
    pub fn text_len(&self) -> usize {
        ((self.content_size / 8) as usize).saturating_sub(METADATA_HEADER_LEN)
    }

    /// Bytes occupied by the whole packet.
    pub fn packet_len(&self) -> usize {
        (self.packet_size / 8) as usize
    }

    /// Decodes a header from the start of `buf`. Errors: bad magic; sizes that are not whole
    /// bytes, smaller than the header, or with content larger than the packet.
    pub fn decode(buf: &[u8]) -> Result<Decoded<MetadataPacketHeader>, DecodeError> {
        let Some(first) = buf.get(..4).and_then(|b| <[u8; 4]>::try_from(b).ok()) else {
            return Ok(Decoded::Incomplete {
                needed: METADATA_HEADER_LEN,
            });
        };
        let Some(byte_order) = ByteOrder::detect(first, METADATA_MAGIC) else {
            return Err(DecodeError::BadMagic {
                what: "CTF metadata packet header",
                expected: METADATA_MAGIC,
                found: u32::from_le_bytes(first),
            });
        };
        let mut r = OrderedReader::new(buf, byte_order);
        let decoded = (|| {
            r.u32()?;
            Some(MetadataPacketHeader {
                byte_order,
                uuid: r.array()?,
                checksum: r.u32()?,
                content_size: r.u32()?,
                packet_size: r.u32()?,
                compression_scheme: r.u8()?,
                encryption_scheme: r.u8()?,
                checksum_scheme: r.u8()?,
                major: r.u8()?,
                minor: r.u8()?,
            })
        })();
        let Some(h) = decoded else {
            return Ok(Decoded::Incomplete {
                needed: METADATA_HEADER_LEN,
            });
        };
        let min_bits = (METADATA_HEADER_LEN * 8) as u32;
        if h.content_size % 8 != 0 || h.content_size < min_bits {
            return Err(DecodeError::InvalidValue {
                field: "metadata packet content_size",
                value: u64::from(h.content_size),
            });
        }
        if h.packet_size % 8 != 0 || h.packet_size < h.content_size {
            return Err(DecodeError::InvalidValue {
                field: "metadata packet packet_size",
                value: u64::from(h.packet_size),
            });
        }
        Ok(Decoded::Done {
            msg: h,
            used: METADATA_HEADER_LEN,
        })
    }

    /// Appends the 37-byte header in `self.byte_order`.
    pub fn encode(&self, buf: &mut impl BufMut) {
        let o = self.byte_order;
        o.put_u32(buf, METADATA_MAGIC);
        buf.put_slice(&self.uuid);
        o.put_u32(buf, self.checksum);
        o.put_u32(buf, self.content_size);
        o.put_u32(buf, self.packet_size);
        buf.put_slice(&[
            self.compression_scheme,
            self.encryption_scheme,
            self.checksum_scheme,
            self.major,
            self.minor,
        ]);
    }
}

/// TSDL text extracted from packetized metadata.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tsdl {
    /// The concatenated text of every complete packet.
    pub text: Vec<u8>,
    /// Bytes of input consumed (whole packets); the rest is an incomplete packet to retry with
    /// more bytes.
    pub used: usize,
}

/// Extracts the TSDL text of every complete packet at the start of `buf`.
pub fn extract_tsdl(buf: &[u8]) -> Result<Tsdl, DecodeError> {
    let mut text = Vec::new();
    let used = append_tsdl(buf, &mut text)?;
    Ok(Tsdl { text, used })
}

/// Appends the TSDL text of every complete packet at the start of `buf` to `out`; returns the
/// number of bytes consumed. Packets that are compressed or encrypted are refused.
pub fn append_tsdl(buf: &[u8], out: &mut Vec<u8>) -> Result<usize, DecodeError> {
    let mut used = 0usize;
    loop {
        let rest = buf.get(used..).unwrap_or(&[]);
        if rest.is_empty() {
            return Ok(used);
        }
        let header = match MetadataPacketHeader::decode(rest)? {
            Decoded::Done { msg, .. } => msg,
            Decoded::Incomplete { .. } => return Ok(used),
        };
        if header.compression_scheme != 0 || header.encryption_scheme != 0 {
            return Err(DecodeError::InvalidValue {
                field: "metadata packet compression/encryption scheme",
                value: u64::from(header.compression_scheme.max(header.encryption_scheme)),
            });
        }
        let Some(packet) = rest.get(..header.packet_len()) else {
            return Ok(used);
        };
        let text_end = METADATA_HEADER_LEN.saturating_add(header.text_len());
        out.extend_from_slice(packet.get(METADATA_HEADER_LEN..text_end).unwrap_or(&[]));
        used = used.saturating_add(header.packet_len());
    }
}
