//! Control-port replies. They carry no header: their shape follows from the command they answer
//! (and, for CREATE_SESSION, from the negotiated minor), so [`decode_reply`] takes both.
//!
//! Shapes (big-endian, packed): generic 4 bytes (`ret_code u32`); VERSION 8 (`major u32`,
//! `minor u32`, the relay's own version); GET_CONFIGURATION 12; CREATE_SESSION 16 + path from
//! minor 11, else 12; ADD_STREAM 12; DATA_PENDING and END_DATA_PENDING 4 (a boolean code, −1 for
//! an unknown stream); CLOSE_TRACE_CHUNK 8 + path when OK; TRACE_CHUNK_EXISTS 5. SEND_METADATA
//! gets no reply. See [`types`] for the fields.
//!
//! A sender reads replies off a byte stream, so the decoder returns [`Decoded::Incomplete`] until
//! the whole reply is there; a path length is checked against its cap (below 4096) as soon as it
//! is read, before waiting for or allocating the path.

pub mod types;

pub use types::{
    AddStreamReply, CloseTraceChunkReply, ConfigurationFlags, ConfigurationReply,
    CreateSessionReply, PendingReply, TraceChunkExistsReply,
};

use bytes::BufMut;

use super::code::ReturnCode;
use super::command::Version;
use super::header::CommandKind;
use super::version::ProtocolMinor;
use super::wire::{check_cap, counted_len, counted_len_u32, put_counted};
use super::PATH_MAX;
use crate::codec::{str_from_counted, DecodeError, Decoded, Reader};
use crate::id::{SessionId, StreamId};

/// Largest accepted path length in a reply, NUL included (senders refuse 4096 and more).
pub const MAX_REPLY_PATH_LEN: u32 = PATH_MAX as u32 - 1;

/// A reply on the control port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reply {
    /// Generic reply: a return code (every command without a dedicated shape).
    Generic(ReturnCode),
    /// VERSION reply.
    Version(Version),
    /// GET_CONFIGURATION reply.
    Configuration(ConfigurationReply),
    /// CREATE_SESSION reply.
    CreateSession(CreateSessionReply),
    /// ADD_STREAM reply.
    AddStream(AddStreamReply),
    /// DATA_PENDING or END_DATA_PENDING reply.
    Pending(PendingReply),
    /// CLOSE_TRACE_CHUNK reply.
    CloseTraceChunk(CloseTraceChunkReply),
    /// TRACE_CHUNK_EXISTS reply.
    TraceChunkExists(TraceChunkExistsReply),
}

/// Decodes the reply to `cmd` from the start of `buf`, with the layouts of `minor`.
///
/// SEND_METADATA has no reply: asking for one is [`DecodeError::InvalidValue`].
pub fn decode_reply(
    cmd: CommandKind,
    minor: ProtocolMinor,
    buf: &[u8],
) -> Result<Decoded<Reply>, DecodeError> {
    let mut r = Reader::new(buf);
    let incomplete = |needed| Ok(Decoded::Incomplete { needed });
    let code = |v: u32| ReturnCode(v);
    let reply = match cmd {
        CommandKind::SendMetadata => {
            return Err(DecodeError::InvalidValue {
                field: "command without reply",
                value: u64::from(cmd.to_u32()),
            })
        }
        CommandKind::Version => match (r.u32(), r.u32()) {
            (Some(major), Some(minor)) => Reply::Version(Version { major, minor }),
            _ => return incomplete(8),
        },
        CommandKind::GetConfiguration => match (r.u32(), r.u64()) {
            (Some(rc), Some(flags)) => Reply::Configuration(ConfigurationReply {
                ret_code: code(rc),
                flags: ConfigurationFlags(flags),
            }),
            _ => return incomplete(12),
        },
        CommandKind::AddStream => match (r.u64(), r.u32()) {
            (Some(handle), Some(rc)) => Reply::AddStream(AddStreamReply {
                handle: StreamId(handle),
                ret_code: code(rc),
            }),
            _ => return incomplete(12),
        },
        CommandKind::DataPending | CommandKind::EndDataPending => match r.u32() {
            Some(v) => Reply::Pending(PendingReply(v)),
            None => return incomplete(4),
        },
        CommandKind::TraceChunkExists => match (r.u32(), r.u8()) {
            (Some(rc), Some(exists)) => Reply::TraceChunkExists(TraceChunkExistsReply {
                ret_code: code(rc),
                exists: types::flag(exists, "trace chunk exists")?,
            }),
            _ => return incomplete(5),
        },
        CommandKind::CreateSession => return decode_create_session(&mut r, minor),
        CommandKind::CloseTraceChunk => return decode_close_trace_chunk(&mut r),
        _ => match r.u32() {
            Some(v) => Reply::Generic(code(v)),
            None => return incomplete(4),
        },
    };
    Ok(Decoded::Done {
        msg: reply,
        used: r.position(),
    })
}

/// Reads a counted path of `len` bytes after a fixed part of `fixed` bytes, or says how many
/// bytes are needed. The cap is checked first.
fn path_after(
    r: &mut Reader<'_>,
    fixed: usize,
    len: u32,
    field: &'static str,
) -> Result<Result<String, usize>, DecodeError> {
    check_cap(u64::from(len), u64::from(MAX_REPLY_PATH_LEN), field)?;
    let n = len as usize;
    match r.bytes(n) {
        Some(b) => str_from_counted(b, field).map(Ok),
        None => Ok(Err(fixed.saturating_add(n))),
    }
}

fn decode_create_session(
    r: &mut Reader<'_>,
    minor: ProtocolMinor,
) -> Result<Decoded<Reply>, DecodeError> {
    let (Some(id), Some(rc)) = (r.u64(), r.u32()) else {
        let needed = if minor.has_trace_chunks() { 16 } else { 12 };
        return Ok(Decoded::Incomplete { needed });
    };
    let mut reply = CreateSessionReply {
        session_id: SessionId(id),
        ret_code: ReturnCode(rc),
        output_path: None,
    };
    if minor.has_trace_chunks() {
        let Some(len) = r.u32() else {
            return Ok(Decoded::Incomplete { needed: 16 });
        };
        if len > 0 {
            match path_after(r, 16, len, "session output path")? {
                Ok(path) => reply.output_path = Some(path),
                Err(needed) => return Ok(Decoded::Incomplete { needed }),
            }
        }
    }
    Ok(Decoded::Done {
        msg: Reply::CreateSession(reply),
        used: r.position(),
    })
}

fn decode_close_trace_chunk(r: &mut Reader<'_>) -> Result<Decoded<Reply>, DecodeError> {
    let (Some(rc), Some(len)) = (r.u32(), r.u32()) else {
        return Ok(Decoded::Incomplete { needed: 8 });
    };
    let ret_code = ReturnCode(rc);
    let reply = if ret_code.is_ok() {
        match path_after(r, 8, len, "closed chunk path")? {
            Ok(path) => CloseTraceChunkReply::Closed { path },
            Err(needed) => return Ok(Decoded::Incomplete { needed }),
        }
    } else {
        CloseTraceChunkReply::Failed {
            ret_code,
            path_length: len,
        }
    };
    Ok(Decoded::Done {
        msg: Reply::CloseTraceChunk(reply),
        used: r.position(),
    })
}

impl Reply {
    /// The generic OK reply.
    pub const OK: Reply = Reply::Generic(ReturnCode::OK);

    /// Size of this reply on the wire with the layouts of `minor`.
    pub fn encoded_len(&self, minor: ProtocolMinor) -> usize {
        match self {
            Reply::Generic(_) | Reply::Pending(_) => 4,
            Reply::TraceChunkExists(_) => 5,
            Reply::Version(_) => 8,
            Reply::Configuration(_) | Reply::AddStream(_) => 12,
            Reply::CreateSession(c) if minor.has_trace_chunks() => {
                16usize.saturating_add(c.output_path.as_deref().map_or(0, counted_len))
            }
            Reply::CreateSession(_) => 12,
            Reply::CloseTraceChunk(CloseTraceChunkReply::Closed { path }) => {
                8usize.saturating_add(counted_len(path))
            }
            Reply::CloseTraceChunk(CloseTraceChunkReply::Failed { .. }) => 8,
        }
    }

    /// Appends the reply, laid out for `minor`.
    pub fn encode(&self, minor: ProtocolMinor, buf: &mut impl BufMut) {
        match self {
            Reply::Generic(rc) => buf.put_u32(rc.0),
            Reply::Pending(p) => buf.put_u32(p.0),
            Reply::Version(v) => v.encode(buf),
            Reply::Configuration(c) => {
                buf.put_u32(c.ret_code.0);
                buf.put_u64(c.flags.0);
            }
            Reply::AddStream(a) => {
                buf.put_u64(a.handle.0);
                buf.put_u32(a.ret_code.0);
            }
            Reply::TraceChunkExists(t) => {
                buf.put_u32(t.ret_code.0);
                buf.put_u8(u8::from(t.exists));
            }
            Reply::CreateSession(c) => {
                buf.put_u64(c.session_id.0);
                buf.put_u32(c.ret_code.0);
                if minor.has_trace_chunks() {
                    let path = c.output_path.as_deref();
                    buf.put_u32(path.map_or(0, counted_len_u32));
                    if let Some(path) = path {
                        put_counted(buf, path);
                    }
                }
            }
            Reply::CloseTraceChunk(CloseTraceChunkReply::Closed { path }) => {
                buf.put_u32(ReturnCode::OK.0);
                buf.put_u32(counted_len_u32(path));
                put_counted(buf, path);
            }
            Reply::CloseTraceChunk(CloseTraceChunkReply::Failed {
                ret_code,
                path_length,
            }) => {
                buf.put_u32(ret_code.0);
                buf.put_u32(*path_length);
            }
        }
    }
}
