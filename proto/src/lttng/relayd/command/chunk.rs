//! Trace chunk commands (minor ≥ 11): CREATE_TRACE_CHUNK, CLOSE_TRACE_CHUNK and
//! TRACE_CHUNK_EXISTS.
//!
//! - CREATE_TRACE_CHUNK (20 + name): `chunk_id u64`, `creation_timestamp u64`,
//!   `override_name_length u32` (counting its NUL; 0 = no override), then the name.
//! - CLOSE_TRACE_CHUNK (21): `chunk_id u64`, `close_timestamp u64`, `close_command.is_set u8`,
//!   `close_command.value u32`. Senders express "no operation" as `is_set = 0`.
//! - TRACE_CHUNK_EXISTS (8): `chunk_id u64`.

use bytes::BufMut;

use super::super::wire::{counted_len, counted_len_u32, put_counted, Fields};
use super::super::NAME_MAX;
use crate::codec::DecodeError;

/// Size of the fixed part of CREATE_TRACE_CHUNK.
pub const CREATE_TRACE_CHUNK_FIXED_LEN: usize = 20;
/// Size of CLOSE_TRACE_CHUNK.
pub const CLOSE_TRACE_CHUNK_LEN: usize = 21;

/// CREATE_TRACE_CHUNK request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CreateTraceChunk {
    /// Chunk id assigned by the session daemon (0 first, then +1 per rotation or clear).
    pub chunk_id: u64,
    /// Creation time, seconds since the epoch.
    pub creation_timestamp: u64,
    /// A name replacing the generated one (< 255 bytes of text, no NUL).
    pub override_name: Option<String>,
}

impl CreateTraceChunk {
    /// Payload size.
    pub fn payload_len(&self) -> usize {
        CREATE_TRACE_CHUNK_FIXED_LEN
            .saturating_add(self.override_name.as_deref().map_or(0, counted_len))
    }

    pub(crate) fn decode(f: &mut Fields<'_>) -> Result<Self, DecodeError> {
        let chunk_id = f.u64("chunk id")?;
        let creation_timestamp = f.u64("chunk creation timestamp")?;
        let name_len = f.u32("chunk override name length")?;
        let override_name = match name_len {
            0 => None,
            n => Some(f.counted_str(n, NAME_MAX as u32, "chunk override name")?),
        };
        Ok(CreateTraceChunk {
            chunk_id,
            creation_timestamp,
            override_name,
        })
    }

    pub(crate) fn encode(&self, buf: &mut impl BufMut) {
        buf.put_u64(self.chunk_id);
        buf.put_u64(self.creation_timestamp);
        match &self.override_name {
            None => buf.put_u32(0),
            Some(name) => {
                buf.put_u32(counted_len_u32(name));
                put_counted(buf, name);
            }
        }
    }
}

/// What happens to a trace chunk's files once it is closed and released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseCommand {
    /// Rename the chunk directory into `archives/`.
    MoveToCompleted = 0,
    /// Nothing (senders send "unset" instead).
    NoOperation = 1,
    /// Delete the chunk's files (`lttng clear`).
    Delete = 2,
}

impl CloseCommand {
    /// The wire value.
    pub fn to_u32(self) -> u32 {
        self as u32
    }
}

impl TryFrom<u32> for CloseCommand {
    type Error = DecodeError;

    fn try_from(v: u32) -> Result<Self, DecodeError> {
        match v {
            0 => Ok(CloseCommand::MoveToCompleted),
            1 => Ok(CloseCommand::NoOperation),
            2 => Ok(CloseCommand::Delete),
            value => Err(DecodeError::InvalidValue {
                field: "close command",
                value: u64::from(value),
            }),
        }
    }
}

/// CLOSE_TRACE_CHUNK request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CloseTraceChunk {
    /// Chunk id.
    pub chunk_id: u64,
    /// Close time, seconds since the epoch.
    pub close_timestamp: u64,
    /// What to do with the chunk's files; `None` when unset (the usual "no operation").
    pub close_command: Option<CloseCommand>,
}

impl CloseTraceChunk {
    /// Decodes; the command value is ignored when `is_set` is 0.
    pub(crate) fn decode(f: &mut Fields<'_>) -> Result<Self, DecodeError> {
        let chunk_id = f.u64("chunk id")?;
        let close_timestamp = f.u64("chunk close timestamp")?;
        let is_set = f.flag("close command is_set")?;
        let value = f.u32("close command")?;
        let close_command = match is_set {
            true => Some(CloseCommand::try_from(value)?),
            false => None,
        };
        Ok(CloseTraceChunk {
            chunk_id,
            close_timestamp,
            close_command,
        })
    }

    pub(crate) fn encode(&self, buf: &mut impl BufMut) {
        buf.put_u64(self.chunk_id);
        buf.put_u64(self.close_timestamp);
        buf.put_u8(u8::from(self.close_command.is_some()));
        buf.put_u32(self.close_command.map_or(0, CloseCommand::to_u32));
    }
}
