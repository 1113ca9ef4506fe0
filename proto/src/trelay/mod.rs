//! trelay:// — trelay's own framed, batched, resumable protocol, on the control port.
//!
//! A connection starts with the 8-byte [`MAGIC`] (never the start of an LTTng control message,
//! whose first 8 bytes are a zero circuit id), then both ends exchange a [`hello::Hello`] frame
//! and use the smaller of their maximum frame sizes from then on. Everything after is frames
//! ([`frame`]): an 8-byte header (kind, flags with an end-of-message bit, a reserved zero, payload
//! length) and at most the agreed number of payload bytes.
//!
//! A message is a run of frames ending with one that carries [`frame::END`]: `Header` frames hold
//! a typed message ([`message`], serde-encoded), `Data` frames the raw bytes it announces (trace
//! packets or metadata, never re-encoded). `Ack` and `Error` frames are whole messages of their
//! own; `Reset` abandons the message in progress. [`assembler::Assembler`] turns frames back
//! into messages under a size cap.

pub mod assembler;
pub mod frame;
pub mod hello;
pub mod message;

/// The first bytes of every trelay:// connection.
pub const MAGIC: [u8; 8] = *b"TRELAY\r\n";

/// Whether the first bytes of a control-port connection announce trelay://.
pub fn is_magic(first: &[u8]) -> bool {
    first.get(..MAGIC.len()) == Some(&MAGIC[..])
}
