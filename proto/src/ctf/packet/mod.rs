//! CTF packet headers as LTTng 2.13 lays them out: data packets ([`data`]) and packetized
//! metadata ([`metadata`]).
//!
//! Packet contents are in the tracer's byte order, not network order. Both kinds of packet start
//! with a magic number whose byte pattern tells the order: `c1 1f fc c1` is a little-endian data
//! packet (x86), `c1 fc 1f c1` a big-endian one; metadata packets read `57 1d d1 75` (little) or
//! `75 d1 1d 57` (big).

pub mod data;
mod endian;
pub mod metadata;

pub use data::{PacketHeader, WordSize, PACKET_MAGIC};
pub use endian::ByteOrder;
pub use metadata::{append_tsdl, extract_tsdl, MetadataPacketHeader, Tsdl, METADATA_MAGIC};
