//! The 24-byte header in front of every control-port command, and the command numbers.
//!
//! Layout (big-endian, packed): `circuit_id u64` (always 0, ignored), `data_size u64` (payload
//! bytes after the header), `cmd u32`, `cmd_version u32` (always 0, ignored). A `data_size` above
//! [`MAX_CONTROL_PAYLOAD`] is refused when the header is decoded, before the caller reads or
//! allocates anything for the payload. The command number is kept raw: an unknown command must
//! still have its payload skipped and be answered.

use bytes::BufMut;

use super::MAX_CONTROL_PAYLOAD;
use crate::codec::{DecodeError, Decoded, Reader};

/// Size of the control header.
pub const CONTROL_HEADER_LEN: usize = 24;

/// A control-port command number this crate knows (`enum lttcomm_relayd_command`).
///
/// The numbers 4 (UPDATE_SYNC_INFO), 12 (ADD_INDEX), 14 (CLOSE_INDEX) and 15 (LIST_SESSIONS) were
/// declared by LTTng but are never sent and are handled like any unknown number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommandKind {
    /// Announce a stream, get its handle.
    AddStream = 1,
    /// Create the connection's relay session.
    CreateSession = 2,
    /// Declared but never sent; answered OK.
    StartData = 3,
    /// Version handshake.
    Version = 5,
    /// Metadata bytes for a metadata stream (no reply).
    SendMetadata = 6,
    /// Close a stream once its last packet is in.
    CloseStream = 7,
    /// Whether a stream's data is all in.
    DataPending = 8,
    /// Mark a (metadata) stream as checked in a data-pending round.
    QuiescentControl = 9,
    /// Start a data-pending round for a session.
    BeginDataPending = 10,
    /// End a data-pending round: whether anything is still pending.
    EndDataPending = 11,
    /// The control half of a packet's index entry, or a live beacon.
    SendIndex = 13,
    /// Publish the announced streams to viewers.
    StreamsSent = 16,
    /// Truncate a metadata stream (metadata regeneration).
    ResetMetadata = 17,
    /// Move streams to another trace chunk at given packet positions.
    RotateStreams = 18,
    /// Create a trace chunk and make it current.
    CreateTraceChunk = 19,
    /// Close a trace chunk.
    CloseTraceChunk = 20,
    /// Whether a trace chunk still exists.
    TraceChunkExists = 21,
    /// The relay's configuration flags.
    GetConfiguration = 22,
}

impl CommandKind {
    /// Every known command, in wire order.
    pub const ALL: [CommandKind; 18] = [
        CommandKind::AddStream,
        CommandKind::CreateSession,
        CommandKind::StartData,
        CommandKind::Version,
        CommandKind::SendMetadata,
        CommandKind::CloseStream,
        CommandKind::DataPending,
        CommandKind::QuiescentControl,
        CommandKind::BeginDataPending,
        CommandKind::EndDataPending,
        CommandKind::SendIndex,
        CommandKind::StreamsSent,
        CommandKind::ResetMetadata,
        CommandKind::RotateStreams,
        CommandKind::CreateTraceChunk,
        CommandKind::CloseTraceChunk,
        CommandKind::TraceChunkExists,
        CommandKind::GetConfiguration,
    ];

    /// The command number on the wire.
    pub fn to_u32(self) -> u32 {
        self as u32
    }

    /// Whether the relay answers this command. Only SEND_METADATA goes unanswered; getting this
    /// wrong desynchronizes the connection.
    pub fn expects_reply(self) -> bool {
        self != CommandKind::SendMetadata
    }

    /// The LTTng name of the command.
    pub fn name(self) -> &'static str {
        match self {
            CommandKind::AddStream => "ADD_STREAM",
            CommandKind::CreateSession => "CREATE_SESSION",
            CommandKind::StartData => "START_DATA",
            CommandKind::Version => "VERSION",
            CommandKind::SendMetadata => "SEND_METADATA",
            CommandKind::CloseStream => "CLOSE_STREAM",
            CommandKind::DataPending => "DATA_PENDING",
            CommandKind::QuiescentControl => "QUIESCENT_CONTROL",
            CommandKind::BeginDataPending => "BEGIN_DATA_PENDING",
            CommandKind::EndDataPending => "END_DATA_PENDING",
            CommandKind::SendIndex => "SEND_INDEX",
            CommandKind::StreamsSent => "STREAMS_SENT",
            CommandKind::ResetMetadata => "RESET_METADATA",
            CommandKind::RotateStreams => "ROTATE_STREAMS",
            CommandKind::CreateTraceChunk => "CREATE_TRACE_CHUNK",
            CommandKind::CloseTraceChunk => "CLOSE_TRACE_CHUNK",
            CommandKind::TraceChunkExists => "TRACE_CHUNK_EXISTS",
            CommandKind::GetConfiguration => "GET_CONFIGURATION",
        }
    }
}

impl std::fmt::Display for CommandKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl TryFrom<u32> for CommandKind {
    type Error = DecodeError;

    fn try_from(value: u32) -> Result<Self, DecodeError> {
        CommandKind::ALL
            .into_iter()
            .find(|c| c.to_u32() == value)
            .ok_or(DecodeError::UnknownCommand(value))
    }
}

impl From<CommandKind> for u32 {
    fn from(c: CommandKind) -> u32 {
        c.to_u32()
    }
}

/// The control header, command number kept raw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ControlHeader {
    /// Circuit id (0; ignored).
    pub circuit_id: u64,
    /// Payload bytes following the header (at most [`MAX_CONTROL_PAYLOAD`]).
    pub data_size: u64,
    /// Command number (see [`CommandKind`]).
    pub cmd: u32,
    /// Command version (0; ignored).
    pub cmd_version: u32,
}

impl ControlHeader {
    /// The header a sender puts in front of a `cmd` payload of `data_size` bytes.
    pub fn new(cmd: CommandKind, data_size: u64) -> Self {
        ControlHeader {
            circuit_id: 0,
            data_size,
            cmd: cmd.to_u32(),
            cmd_version: 0,
        }
    }

    /// Decodes the header from the start of `buf` (24 bytes used). Allocates nothing.
    ///
    /// A `data_size` above [`MAX_CONTROL_PAYLOAD`] is a [`DecodeError::TooLong`]; the command
    /// number is not checked here (see [`ControlHeader::kind`]).
    pub fn decode(buf: &[u8]) -> Result<Decoded<ControlHeader>, DecodeError> {
        let mut r = Reader::new(buf);
        let (Some(circuit_id), Some(data_size), Some(cmd), Some(cmd_version)) =
            (r.u64(), r.u64(), r.u32(), r.u32())
        else {
            return Ok(Decoded::Incomplete {
                needed: CONTROL_HEADER_LEN,
            });
        };
        if data_size > MAX_CONTROL_PAYLOAD {
            return Err(DecodeError::TooLong {
                field: "control header data_size",
                value: data_size,
                max: MAX_CONTROL_PAYLOAD,
            });
        }
        Ok(Decoded::Done {
            msg: ControlHeader {
                circuit_id,
                data_size,
                cmd,
                cmd_version,
            },
            used: CONTROL_HEADER_LEN,
        })
    }

    /// The command, or [`DecodeError::UnknownCommand`].
    pub fn kind(&self) -> Result<CommandKind, DecodeError> {
        CommandKind::try_from(self.cmd)
    }

    /// `data_size` as a `usize` (always fits: it is capped at decode time).
    pub fn payload_len(&self) -> usize {
        usize::try_from(self.data_size).unwrap_or(usize::MAX)
    }

    /// Appends the 24-byte header.
    pub fn encode(&self, buf: &mut impl BufMut) {
        buf.put_u64(self.circuit_id);
        buf.put_u64(self.data_size);
        buf.put_u32(self.cmd);
        buf.put_u32(self.cmd_version);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_numbers() {
        for c in CommandKind::ALL {
            assert_eq!(CommandKind::try_from(c.to_u32()), Ok(c));
        }
        for n in [0, 4, 12, 14, 15, 23, 10_000, u32::MAX] {
            assert_eq!(
                CommandKind::try_from(n),
                Err(DecodeError::UnknownCommand(n))
            );
        }
        assert!(!CommandKind::SendMetadata.expects_reply());
        assert!(CommandKind::SendIndex.expects_reply());
    }

    #[test]
    fn header_round_trip_and_cap() {
        let h = ControlHeader::new(CommandKind::Version, 8);
        let mut v = Vec::new();
        h.encode(&mut v);
        assert_eq!(v.len(), CONTROL_HEADER_LEN);
        assert_eq!(
            ControlHeader::decode(&v),
            Ok(Decoded::Done { msg: h, used: 24 })
        );
        assert_eq!(
            ControlHeader::decode(&v[..23]),
            Ok(Decoded::Incomplete { needed: 24 })
        );
        let big = ControlHeader::new(CommandKind::SendMetadata, MAX_CONTROL_PAYLOAD + 1);
        let mut v = Vec::new();
        big.encode(&mut v);
        assert!(matches!(
            ControlHeader::decode(&v),
            Err(DecodeError::TooLong { .. })
        ));
    }
}
