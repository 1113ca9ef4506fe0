//! Viewer requests: the header plus the command's fixed payload.
//!
//! Payloads (big-endian, packed):
//! - CONNECT (20): `viewer_session_id u64`, `major u32`, `minor u32`, `type u32`;
//! - ATTACH_SESSION (20): `session_id u64`, `offset u64` (unused), `seek u32`;
//! - GET_PACKET (20): `stream_id u64`, `offset u64`, `len u32`;
//! - GET_NEXT_INDEX, GET_METADATA (8): `stream_id u64`;
//! - GET_NEW_STREAMS, DETACH_SESSION (8): `session_id u64`;
//! - LIST_SESSIONS, CREATE_SESSION: no payload.
//!
//! The header's `cmd_version` is not kept: [`ViewerRequest::encode`] always writes 0, which is
//! what every known viewer sends.

use bytes::BufMut;

use super::header::{Command, CommandHeader, HEADER_LEN};
use super::status::{ConnectionType, Seek};
use crate::codec::{DecodeError, Decoded, Reader};
use crate::id::{SessionId, StreamId, ViewerSessionId};

/// The CONNECT request payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnectRequest {
    /// Viewer session id (viewers send all ones).
    pub viewer_session_id: ViewerSessionId,
    /// Protocol major (2).
    pub major: u32,
    /// Protocol minor the viewer speaks (babeltrace2 2.0: 4, babeltrace2 2.1: 15).
    pub minor: u32,
    /// Connection type.
    pub conn_type: ConnectionType,
}

/// A request a live viewer sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ViewerRequest {
    /// CONNECT.
    Connect(ConnectRequest),
    /// LIST_SESSIONS.
    ListSessions,
    /// ATTACH_SESSION.
    AttachSession {
        /// Relay session to attach to.
        session_id: SessionId,
        /// Unused by the relay (babeltrace sends 0).
        offset: u64,
        /// Where to start reading.
        seek: Seek,
    },
    /// GET_NEXT_INDEX.
    GetNextIndex {
        /// Viewer stream.
        stream_id: StreamId,
    },
    /// GET_PACKET.
    GetPacket {
        /// Viewer stream.
        stream_id: StreamId,
        /// Byte offset in the stream's current data file.
        offset: u64,
        /// Number of bytes wanted.
        len: u32,
    },
    /// GET_METADATA.
    GetMetadata {
        /// Metadata viewer stream.
        stream_id: StreamId,
    },
    /// GET_NEW_STREAMS.
    GetNewStreams {
        /// Relay session.
        session_id: SessionId,
    },
    /// CREATE_SESSION (the connection's viewer session).
    CreateSession,
    /// DETACH_SESSION.
    DetachSession {
        /// Relay session.
        session_id: SessionId,
    },
}

impl ViewerRequest {
    /// The command of this request.
    pub fn command(&self) -> Command {
        match self {
            ViewerRequest::Connect(_) => Command::Connect,
            ViewerRequest::ListSessions => Command::ListSessions,
            ViewerRequest::AttachSession { .. } => Command::AttachSession,
            ViewerRequest::GetNextIndex { .. } => Command::GetNextIndex,
            ViewerRequest::GetPacket { .. } => Command::GetPacket,
            ViewerRequest::GetMetadata { .. } => Command::GetMetadata,
            ViewerRequest::GetNewStreams { .. } => Command::GetNewStreams,
            ViewerRequest::CreateSession => Command::CreateSession,
            ViewerRequest::DetachSession { .. } => Command::DetachSession,
        }
    }

    /// Appends the header and payload.
    pub fn encode(&self, buf: &mut impl BufMut) {
        CommandHeader::for_command(self.command()).encode(buf);
        match *self {
            ViewerRequest::Connect(c) => {
                buf.put_u64(c.viewer_session_id.0);
                buf.put_u32(c.major);
                buf.put_u32(c.minor);
                buf.put_u32(c.conn_type.to_u32());
            }
            ViewerRequest::ListSessions | ViewerRequest::CreateSession => {}
            ViewerRequest::AttachSession {
                session_id,
                offset,
                seek,
            } => {
                buf.put_u64(session_id.0);
                buf.put_u64(offset);
                buf.put_u32(seek.to_u32());
            }
            ViewerRequest::GetNextIndex { stream_id }
            | ViewerRequest::GetMetadata { stream_id } => buf.put_u64(stream_id.0),
            ViewerRequest::GetPacket {
                stream_id,
                offset,
                len,
            } => {
                buf.put_u64(stream_id.0);
                buf.put_u64(offset);
                buf.put_u32(len);
            }
            ViewerRequest::GetNewStreams { session_id }
            | ViewerRequest::DetachSession { session_id } => buf.put_u64(session_id.0),
        }
    }
}

/// Decodes one request (header and payload) from the start of `buf`.
///
/// Errors: [`DecodeError::UnknownCommand`] for a command number outside 1..=9 (the relay answers
/// it with a 4-byte `LTTNG_ERR_UNK` and drops the connection), [`DecodeError::BadLength`] when the
/// header's `data_size` is not the command's payload size, [`DecodeError::InvalidValue`] for a
/// connection type or seek value outside its domain (lttng-relayd answers an ATTACH_SESSION with
/// a bad seek with `SEEK_ERR`; such an error names the field `attach.seek`).
pub fn decode_request(buf: &[u8]) -> Result<Decoded<ViewerRequest>, DecodeError> {
    let header = match CommandHeader::decode(buf) {
        Decoded::Done { msg, .. } => msg,
        Decoded::Incomplete { needed } => return Ok(Decoded::Incomplete { needed }),
    };
    let cmd = header.command()?;
    let used = HEADER_LEN.saturating_add(cmd.payload_len());
    let Some(payload) = buf.get(HEADER_LEN..used) else {
        return Ok(Decoded::Incomplete { needed: used });
    };
    let msg = decode_payload(cmd, payload)?;
    Ok(Decoded::Done { msg, used })
}

/// Decodes the fixed payload of `cmd`, which must be exactly [`Command::payload_len`] bytes.
pub fn decode_payload(cmd: Command, payload: &[u8]) -> Result<ViewerRequest, DecodeError> {
    let bad_len = || DecodeError::BadLength {
        what: "live request payload",
        expected: cmd.payload_len() as u64,
        actual: payload.len() as u64,
    };
    if payload.len() != cmd.payload_len() {
        return Err(bad_len());
    }
    let mut r = Reader::new(payload);
    let req = match cmd {
        Command::Connect => {
            let (id, major, minor, kind) = (r.u64(), r.u32(), r.u32(), r.u32());
            let (Some(id), Some(major), Some(minor), Some(kind)) = (id, major, minor, kind) else {
                return Err(bad_len());
            };
            ViewerRequest::Connect(ConnectRequest {
                viewer_session_id: ViewerSessionId(id),
                major,
                minor,
                conn_type: ConnectionType::try_from(kind)?,
            })
        }
        Command::ListSessions => ViewerRequest::ListSessions,
        Command::CreateSession => ViewerRequest::CreateSession,
        Command::AttachSession => {
            let (Some(id), Some(offset), Some(seek)) = (r.u64(), r.u64(), r.u32()) else {
                return Err(bad_len());
            };
            ViewerRequest::AttachSession {
                session_id: SessionId(id),
                offset,
                seek: Seek::try_from(seek)?,
            }
        }
        Command::GetPacket => {
            let (Some(id), Some(offset), Some(len)) = (r.u64(), r.u64(), r.u32()) else {
                return Err(bad_len());
            };
            ViewerRequest::GetPacket {
                stream_id: StreamId(id),
                offset,
                len,
            }
        }
        Command::GetNextIndex | Command::GetMetadata => {
            let stream_id = StreamId(r.u64().ok_or_else(bad_len)?);
            if cmd == Command::GetNextIndex {
                ViewerRequest::GetNextIndex { stream_id }
            } else {
                ViewerRequest::GetMetadata { stream_id }
            }
        }
        Command::GetNewStreams | Command::DetachSession => {
            let session_id = SessionId(r.u64().ok_or_else(bad_len)?);
            if cmd == Command::GetNewStreams {
                ViewerRequest::GetNewStreams { session_id }
            } else {
                ViewerRequest::DetachSession { session_id }
            }
        }
    };
    Ok(req)
}
