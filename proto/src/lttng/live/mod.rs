//! The live viewer protocol (port 5344): requests, replies and the records they carry.
//!
//! A viewer sends a 16-byte [header] (`data_size u64`, `cmd u32`, `cmd_version u32`)
//! followed by a fixed payload whose size depends only on the command ([request]). The relay
//! answers each request in order; the shape of the reply depends on the command it answers, so
//! [`decode_reply`] takes the command ([reply]). Some replies carry a fixed-size part and then a
//! variable part whose size the fixed part announces: session or stream [records], or packet and
//! metadata bytes ([`reply_fixed`]). Every integer is big-endian and structures are packed.
//!
//! Both sides keep `min(viewer's minor, relay's minor)`. The only layout that depends on it is
//! the session record of LIST_SESSIONS: from 15 on (LTTng 2.15, babeltrace2 2.1) it has
//! variable-length names and the trace format ([`records`]). A viewer below 15 cannot tell CTF 2
//! from CTF 1.8, so a relay never lists CTF 2 sessions to it and refuses to attach it to one
//! (unknown session). Nothing else changed on this port between 2.13 and 2.15.
//!
//! Peer-declared sizes are capped before use: [`MAX_RECORDS`] records per reply,
//! [`MAX_PACKET_LEN`] bytes of packet data, [`MAX_METADATA_LEN`] bytes of metadata. Unknown
//! commands, statuses and enum values decode to typed errors.

pub mod header;
pub mod records;
pub mod reply;
pub mod reply_fixed;
pub mod request;
pub mod status;

pub use header::{Command, CommandHeader, HEADER_LEN};
pub use records::{
    SessionRecord, StreamRecord, SESSION_2_15_FIXED_LEN, SESSION_RECORD_LEN, STREAM_RECORD_LEN,
    TRACE_FORMAT_MINOR,
};
pub use reply::{decode_reply, decode_reply_at, ViewerReply};
pub use reply_fixed::{ConnectReply, IndexReply, MetadataReplyHead, PacketReplyHead};
pub use request::{decode_request, ConnectRequest, ViewerRequest};
pub use status::{
    AttachStatus, ConnectionType, CreateSessionStatus, DetachStatus, GetMetadataStatus,
    GetPacketStatus, NewStreamsStatus, NextIndexStatus, Seek, ViewerFlags, ERR_UNKNOWN_COMMAND,
};

/// Maximum number of session or stream records accepted in one reply.
pub const MAX_RECORDS: u32 = 65_536;
/// Maximum packet data accepted in one GET_PACKET reply (64 MiB).
pub const MAX_PACKET_LEN: u64 = 64 * 1024 * 1024;
/// Maximum metadata accepted in one GET_METADATA reply (128 MiB).
pub const MAX_METADATA_LEN: u64 = 128 * 1024 * 1024;
/// Protocol major version of the live protocol.
pub const PROTOCOL_MAJOR: u32 = 2;
/// Protocol minor version trelay's relay advertises (the one of LTTng 2.15's relay).
pub const PROTOCOL_MINOR: u32 = 15;
