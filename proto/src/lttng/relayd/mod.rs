//! The control port (5342) and data port (5343) of the LTTng relay protocol, as LTTng 2.1 to
//! 2.15 session and consumer daemons speak it (2.15 adds the trace format to CREATE_SESSION;
//! nothing else changed on these ports since 2.13).
//!
//! Control port: each command is a 24-byte [`ControlHeader`] (`data_size` = payload length,
//! capped at [`MAX_CONTROL_PAYLOAD`]) and a payload whose layout depends on the command and, for
//! a few commands, on the protocol minor both sides negotiated with VERSION ([`ProtocolMinor`]).
//! [`decode_command`] turns a framed payload into a [`Command`]. The relay answers every command
//! but SEND_METADATA with a reply whose shape is implied by the command ([`decode_reply`],
//! [`Reply`]); replies carry no header.
//!
//! Data port: no handshake and no reply; each packet is a 32-byte [`DataHeader`] and
//! `data_size` payload bytes, to which the relay appends `padding_size` zeros.
//!
//! All integers are big-endian; structures are packed, except the header of ROTATE_STREAMS
//! whose padding depends on the sender's ABI ([`command`] describes every layout). Decoders check
//! lengths against the caps below before allocating, refuse strings without their NUL, lengths
//! reaching past the payload, and bytes left over where a layout is exact. They do not judge
//! names as paths: that is the relay's job.

pub mod code;
pub mod command;
pub mod data;
pub mod header;
pub mod reply;
pub mod version;
mod wire;

pub use code::ReturnCode;
pub use command::{
    decode_command, decode_framed, AddStream, CloseCommand, CloseStream, CloseTraceChunk, Command,
    CreateSession, CreateTraceChunk, DataPending, GetConfiguration, MetadataHeader, ResetMetadata,
    RotatePosition, RotateStreams, SendIndex, SendMetadata, Version, MAX_ROTATE_POSITIONS,
};
pub use data::{DataHeader, DATA_HEADER_LEN};
pub use header::{CommandKind, ControlHeader, CONTROL_HEADER_LEN};
pub use reply::{
    decode_reply, AddStreamReply, CloseTraceChunkReply, ConfigurationFlags, ConfigurationReply,
    CreateSessionReply, PendingReply, Reply, TraceChunkExistsReply, MAX_REPLY_PATH_LEN,
};
pub use version::{
    AddStreamLayout, CreateSessionLayout, Era, ProtocolMinor, RELAYD_MAJOR, RELAYD_MINOR,
    TRACE_FORMAT_MINOR,
};

/// Default control port.
pub const CONTROL_PORT: u16 = 5342;
/// Default data port.
pub const DATA_PORT: u16 = 5343;
/// Default live (viewer) port.
pub const LIVE_PORT: u16 = 5344;

/// Largest control payload (`data_size`) accepted: 128 MiB.
pub const MAX_CONTROL_PAYLOAD: u64 = 128 * 1024 * 1024;
/// `LTTNG_NAME_MAX`: session names and chunk names, NUL included.
pub const NAME_MAX: usize = 255;
/// `LTTNG_HOST_NAME_MAX`: hostnames, NUL included.
pub const HOST_NAME_MAX: usize = 256;
/// Hostname field of the 2.4 CREATE_SESSION layout.
pub const HOST_NAME_MAX_2_4: usize = 64;
/// `LTTNG_PATH_MAX`: paths, NUL included.
pub const PATH_MAX: usize = 4096;
/// Stream (channel) names, NUL included: 256 + 8.
pub const STREAM_NAME_MAX: usize = 264;
/// Size of a UUID.
pub const UUID_LEN: usize = 16;
