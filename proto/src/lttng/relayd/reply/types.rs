//! The reply structures that are more than a bare return code.

use crate::codec::DecodeError;
use crate::id::{SessionId, StreamId};
use crate::lttng::relayd::code::ReturnCode;

/// The relay's configuration flags (GET_CONFIGURATION reply).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ConfigurationFlags(pub u64);

impl ConfigurationFlags {
    /// The relay allows `lttng clear`.
    pub const CLEAR_ALLOWED: ConfigurationFlags = ConfigurationFlags(1);

    /// Whether the relay allows `lttng clear`.
    pub fn clear_allowed(self) -> bool {
        self.0 & Self::CLEAR_ALLOWED.0 != 0
    }
}

/// GET_CONFIGURATION reply (12 bytes): `ret_code u32`, `flags u64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConfigurationReply {
    /// Outcome.
    pub ret_code: ReturnCode,
    /// Configuration flags.
    pub flags: ConfigurationFlags,
}

/// CREATE_SESSION reply.
///
/// From minor 11: `session_id u64`, `ret_code u32`, `output_path_length u32` (counting its NUL,
/// 0 on failure, below 4096), then the path. Before: the first 12 bytes only, and
/// `output_path` is `None`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CreateSessionReply {
    /// The relay session id (0 on failure).
    pub session_id: SessionId,
    /// Outcome (OK or FATAL).
    pub ret_code: ReturnCode,
    /// The session directory relative to the relay's output root; `None` when the length is 0
    /// or the layout has no path.
    pub output_path: Option<String>,
}

/// ADD_STREAM reply (12 bytes): `handle u64`, `ret_code u32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddStreamReply {
    /// The new stream handle (all ones on failure).
    pub handle: StreamId,
    /// Outcome (OK or UNK).
    pub ret_code: ReturnCode,
}

/// DATA_PENDING and END_DATA_PENDING reply: a 4-byte code read as a boolean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PendingReply(pub u32);

impl PendingReply {
    /// Everything is in.
    pub const NOT_PENDING: PendingReply = PendingReply(0);
    /// Data is still expected.
    pub const PENDING: PendingReply = PendingReply(1);
    /// DATA_PENDING named an unknown stream (−1); the relay then drops the connection.
    pub const UNKNOWN_STREAM: PendingReply = PendingReply(u32::MAX);

    /// The reply for a boolean outcome.
    pub fn from_pending(pending: bool) -> Self {
        if pending {
            Self::PENDING
        } else {
            Self::NOT_PENDING
        }
    }

    /// Whether data is still pending (code 1).
    pub fn is_pending(self) -> bool {
        self == Self::PENDING
    }

    /// Whether the code is negative as a signed value: the sender treats it as a fatal error.
    pub fn is_error(self) -> bool {
        self.0 > i32::MAX as u32
    }
}

/// CLOSE_TRACE_CHUNK reply: `ret_code u32`, `path_length u32`, then the path only when the code
/// is OK.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CloseTraceChunkReply {
    /// The chunk was closed; its directory relative to the relay's output root.
    Closed {
        /// The path (below 4096 bytes with its NUL).
        path: String,
    },
    /// An error; no path follows. `ret_code` must not be OK.
    Failed {
        /// The error code.
        ret_code: ReturnCode,
        /// The path length field as sent (normally 0).
        path_length: u32,
    },
}

impl CloseTraceChunkReply {
    /// The reply's return code.
    pub fn ret_code(&self) -> ReturnCode {
        match self {
            CloseTraceChunkReply::Closed { .. } => ReturnCode::OK,
            CloseTraceChunkReply::Failed { ret_code, .. } => *ret_code,
        }
    }
}

/// TRACE_CHUNK_EXISTS reply (5 bytes): `ret_code u32`, `exists u8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceChunkExistsReply {
    /// Outcome.
    pub ret_code: ReturnCode,
    /// Whether the chunk still exists.
    pub exists: bool,
}

/// A flag byte that must be 0 or 1.
pub(super) fn flag(v: u8, field: &'static str) -> Result<bool, DecodeError> {
    crate::lttng::relayd::wire::bool_from(u64::from(v), field)
}
