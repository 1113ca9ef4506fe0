//! The 16-byte header in front of every viewer request, and the command numbers.
//!
//! Layout (big-endian): `data_size u64` (bytes of payload after the header), `cmd u32`,
//! `cmd_version u32` (always 0). Each command has a fixed payload size, given by
//! [`Command::payload_len`]; lttng-relayd ignores `data_size` and reads that many bytes, trelay
//! checks that the two agree.

use bytes::BufMut;

use crate::codec::{DecodeError, Decoded, Reader};

/// Size of the viewer command header.
pub const HEADER_LEN: usize = 16;

/// A live protocol command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// Version handshake; must come first.
    Connect = 1,
    /// List the relay sessions.
    ListSessions = 2,
    /// Attach to a relay session and learn its streams.
    AttachSession = 3,
    /// Ask for the next packet index of a stream.
    GetNextIndex = 4,
    /// Read bytes of a packet.
    GetPacket = 5,
    /// Read the unread metadata of a trace.
    GetMetadata = 6,
    /// Learn streams that appeared since the last call.
    GetNewStreams = 7,
    /// Create the connection's viewer session.
    CreateSession = 8,
    /// Detach from a relay session.
    DetachSession = 9,
}

impl Command {
    /// Every command, in wire order.
    pub const ALL: [Command; 9] = [
        Command::Connect,
        Command::ListSessions,
        Command::AttachSession,
        Command::GetNextIndex,
        Command::GetPacket,
        Command::GetMetadata,
        Command::GetNewStreams,
        Command::CreateSession,
        Command::DetachSession,
    ];

    /// The command number on the wire.
    pub fn to_u32(self) -> u32 {
        self as u32
    }

    /// Size of the request payload that follows the header for this command.
    pub fn payload_len(self) -> usize {
        match self {
            Command::ListSessions | Command::CreateSession => 0,
            Command::GetNextIndex
            | Command::GetMetadata
            | Command::GetNewStreams
            | Command::DetachSession => 8,
            Command::Connect | Command::AttachSession | Command::GetPacket => 20,
        }
    }
}

impl TryFrom<u32> for Command {
    type Error = DecodeError;

    fn try_from(value: u32) -> Result<Self, DecodeError> {
        Command::ALL
            .into_iter()
            .find(|c| c.to_u32() == value)
            .ok_or(DecodeError::UnknownCommand(value))
    }
}

impl From<Command> for u32 {
    fn from(c: Command) -> u32 {
        c.to_u32()
    }
}

/// The viewer command header, with the command number kept raw (it may be unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CommandHeader {
    /// Declared payload size.
    pub data_size: u64,
    /// Command number.
    pub cmd: u32,
    /// Command version (0; ignored).
    pub cmd_version: u32,
}

impl CommandHeader {
    /// The header a request for `cmd` carries: exact payload size, version 0.
    pub fn for_command(cmd: Command) -> Self {
        CommandHeader {
            data_size: cmd.payload_len() as u64,
            cmd: cmd.to_u32(),
            cmd_version: 0,
        }
    }

    /// Decodes the header from the start of `buf`. Never fails: every bit pattern is a header.
    pub fn decode(buf: &[u8]) -> Decoded<CommandHeader> {
        let mut r = Reader::new(buf);
        match (r.u64(), r.u32(), r.u32()) {
            (Some(data_size), Some(cmd), Some(cmd_version)) => Decoded::Done {
                msg: CommandHeader {
                    data_size,
                    cmd,
                    cmd_version,
                },
                used: HEADER_LEN,
            },
            _ => Decoded::Incomplete { needed: HEADER_LEN },
        }
    }

    /// The command, checking that it is known and that `data_size` is the size its payload
    /// must have.
    pub fn command(&self) -> Result<Command, DecodeError> {
        let cmd = Command::try_from(self.cmd)?;
        let expected = cmd.payload_len() as u64;
        if self.data_size != expected {
            return Err(DecodeError::BadLength {
                what: "live request payload (header data_size)",
                expected,
                actual: self.data_size,
            });
        }
        Ok(cmd)
    }

    /// Appends the 16-byte header.
    pub fn encode(&self, buf: &mut impl BufMut) {
        buf.put_u64(self.data_size);
        buf.put_u32(self.cmd);
        buf.put_u32(self.cmd_version);
    }
}
