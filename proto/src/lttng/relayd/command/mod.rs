//! Control-port commands: one typed struct per command, gathered in [`Command`].
//!
//! [`decode_command`] takes a decoded [`ControlHeader`], the payload it frames (exactly
//! `data_size` bytes) and the negotiated minor, which selects the layout of CREATE_SESSION,
//! ADD_STREAM and SEND_INDEX. Fixed-size payloads must have exactly their size and variable ones
//! exactly the size their length fields declare; strings must end with their NUL; lengths are
//! capped before anything is allocated. Commands that did not exist at the negotiated minor are
//! [`DecodeError::NotInVersion`]: STREAMS_SENT and SEND_INDEX before 4, RESET_METADATA before 8,
//! the chunk and rotation commands before 11. GET_CONFIGURATION is accepted at any minor, as
//! LTTng's relay answers it even before VERSION.
//!
//! [`decode_framed`] does the framing too, for callers holding a byte stream.
//!
//! [`Command::encode`] writes the header (with the computed `data_size`) and the payload.
//! Names are only checked for framing here; whether they are acceptable path components is the
//! relay's business.

mod chunk;
mod index;
mod pending;
mod rotate;
mod session;
mod stream;

pub use chunk::{
    CloseCommand, CloseTraceChunk, CreateTraceChunk, CLOSE_TRACE_CHUNK_LEN,
    CREATE_TRACE_CHUNK_FIXED_LEN,
};
pub use index::{SendIndex, SEND_INDEX_V1_0_LEN, SEND_INDEX_V1_1_LEN};
pub use pending::DataPending;
pub use rotate::{
    RotatePosition, RotateStreams, MAX_ROTATE_POSITIONS, ROTATE_POSITION_LEN,
    ROTATE_STREAMS_HEADER_LEN,
};
pub use session::{
    CreateSession, GetConfiguration, Version, CREATE_SESSION_2_11_FIXED_LEN,
    CREATE_SESSION_2_15_FIXED_LEN, CREATE_SESSION_2_4_LEN,
};
pub use stream::{
    AddStream, CloseStream, MetadataHeader, ResetMetadata, SendMetadata, ADD_STREAM_2_11_FIXED_LEN,
    ADD_STREAM_2_1_LEN, ADD_STREAM_2_2_LEN,
};

use bytes::BufMut;

use super::header::{CommandKind, ControlHeader, CONTROL_HEADER_LEN};
use super::version::ProtocolMinor;
use super::wire::{exact_len, no_trailing, Fields};
use crate::codec::{DecodeError, Decoded};
use crate::id::{NetSeq, SessionId, StreamId};

/// A control-port command, as a sender sends it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Command<'a> {
    /// ADD_STREAM.
    AddStream(AddStream),
    /// CREATE_SESSION.
    CreateSession(CreateSession),
    /// START_DATA (never sent by 2.13 senders; no payload).
    StartData,
    /// VERSION.
    Version(Version),
    /// SEND_METADATA.
    SendMetadata(SendMetadata<'a>),
    /// CLOSE_STREAM.
    CloseStream(CloseStream),
    /// DATA_PENDING.
    DataPending(DataPending),
    /// QUIESCENT_CONTROL: the stream handle (the metadata stream's).
    QuiescentControl(StreamId),
    /// BEGIN_DATA_PENDING: the relay session id.
    BeginDataPending(SessionId),
    /// END_DATA_PENDING: the relay session id.
    EndDataPending(SessionId),
    /// SEND_INDEX.
    SendIndex(SendIndex),
    /// STREAMS_SENT (no payload).
    StreamsSent,
    /// RESET_METADATA.
    ResetMetadata(ResetMetadata),
    /// ROTATE_STREAMS.
    RotateStreams(RotateStreams),
    /// CREATE_TRACE_CHUNK.
    CreateTraceChunk(CreateTraceChunk),
    /// CLOSE_TRACE_CHUNK.
    CloseTraceChunk(CloseTraceChunk),
    /// TRACE_CHUNK_EXISTS: the chunk id.
    TraceChunkExists(u64),
    /// GET_CONFIGURATION.
    GetConfiguration(GetConfiguration),
}

/// The first minor at which `kind` exists, for the commands that came later.
fn first_minor(kind: CommandKind) -> u32 {
    match kind {
        CommandKind::SendIndex | CommandKind::StreamsSent => 4,
        CommandKind::ResetMetadata => 8,
        CommandKind::RotateStreams
        | CommandKind::CreateTraceChunk
        | CommandKind::CloseTraceChunk
        | CommandKind::TraceChunkExists => 11,
        _ => 0,
    }
}

/// Decodes the payload framed by `header` (exactly `header.data_size` bytes) with the layouts of
/// the negotiated `minor`. Only SEND_METADATA borrows from `payload`; nothing is allocated for
/// fixed-size commands.
pub fn decode_command<'a>(
    header: &ControlHeader,
    payload: &'a [u8],
    minor: ProtocolMinor,
) -> Result<Command<'a>, DecodeError> {
    if payload.len() as u64 != header.data_size {
        return Err(DecodeError::BadLength {
            what: "control payload (header data_size)",
            expected: header.data_size,
            actual: payload.len() as u64,
        });
    }
    let kind = header.kind()?;
    if minor.0 < first_minor(kind) {
        return Err(DecodeError::NotInVersion {
            cmd: kind.to_u32(),
            minor: minor.0,
        });
    }
    let what = kind.name();
    let fixed = |len: usize| exact_len(what, payload, len).map(|()| Fields::new(payload));
    let cmd = match kind {
        CommandKind::SendMetadata => {
            return SendMetadata::decode(payload).map(Command::SendMetadata)
        }
        CommandKind::RotateStreams => {
            return RotateStreams::decode(payload).map(Command::RotateStreams)
        }
        CommandKind::StartData => fixed(0).map(|_| Command::StartData)?,
        CommandKind::StreamsSent => fixed(0).map(|_| Command::StreamsSent)?,
        CommandKind::Version => Command::Version(Version::decode(&mut fixed(Version::LEN)?)?),
        CommandKind::GetConfiguration => Command::GetConfiguration(GetConfiguration {
            query_flags: fixed(GetConfiguration::LEN)?.u64("query flags")?,
        }),
        CommandKind::CloseStream => {
            let mut f = fixed(16)?;
            Command::CloseStream(CloseStream {
                stream_id: StreamId(f.u64("stream id")?),
                last_net_seq: NetSeq(f.u64("last net_seq_num")?),
            })
        }
        CommandKind::DataPending => {
            let mut f = fixed(16)?;
            Command::DataPending(DataPending {
                stream_id: StreamId(f.u64("stream id")?),
                last_net_seq: NetSeq(f.u64("last net_seq_num")?),
            })
        }
        CommandKind::ResetMetadata => {
            let mut f = fixed(16)?;
            Command::ResetMetadata(ResetMetadata {
                stream_id: StreamId(f.u64("stream id")?),
                version: f.u64("metadata version")?,
            })
        }
        CommandKind::QuiescentControl => {
            Command::QuiescentControl(StreamId(fixed(8)?.u64("stream id")?))
        }
        CommandKind::BeginDataPending => {
            Command::BeginDataPending(SessionId(fixed(8)?.u64("session id")?))
        }
        CommandKind::EndDataPending => {
            Command::EndDataPending(SessionId(fixed(8)?.u64("session id")?))
        }
        CommandKind::TraceChunkExists => Command::TraceChunkExists(fixed(8)?.u64("chunk id")?),
        CommandKind::SendIndex => {
            let mut f = fixed(SendIndex::payload_len(minor))?;
            Command::SendIndex(SendIndex::decode(&mut f, minor)?)
        }
        CommandKind::CloseTraceChunk => {
            let mut f = fixed(CLOSE_TRACE_CHUNK_LEN)?;
            Command::CloseTraceChunk(CloseTraceChunk::decode(&mut f)?)
        }
        CommandKind::CreateSession => variable(payload, what, |f| {
            CreateSession::decode(f, minor).map(Command::CreateSession)
        })?,
        CommandKind::AddStream => variable(payload, what, |f| {
            AddStream::decode(f, minor).map(Command::AddStream)
        })?,
        CommandKind::CreateTraceChunk => variable(payload, what, |f| {
            CreateTraceChunk::decode(f).map(Command::CreateTraceChunk)
        })?,
    };
    Ok(cmd)
}

/// Decodes one whole message (header and payload) from the start of a byte stream: incomplete
/// until the header and all `data_size` payload bytes are there. A header whose `data_size`
/// exceeds the cap is refused before waiting for the payload. Meant for small commands; a relay
/// streams SEND_METADATA bytes instead (see [`MetadataHeader`]).
pub fn decode_framed(
    buf: &[u8],
    minor: ProtocolMinor,
) -> Result<Decoded<Command<'_>>, DecodeError> {
    let Decoded::Done { msg: header, used } = ControlHeader::decode(buf)? else {
        return Ok(Decoded::Incomplete {
            needed: CONTROL_HEADER_LEN,
        });
    };
    let end = used.saturating_add(header.payload_len());
    let Some(payload) = buf.get(used..end) else {
        return Ok(Decoded::Incomplete { needed: end });
    };
    decode_command(&header, payload, minor).map(|msg| Decoded::Done { msg, used: end })
}

/// Runs a decoder over the whole payload and refuses bytes it left over.
fn variable<'a, T>(
    payload: &'a [u8],
    what: &'static str,
    decode: impl FnOnce(&mut Fields<'a>) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    let mut f = Fields::new(payload);
    let out = decode(&mut f)?;
    no_trailing(what, &f)?;
    Ok(out)
}

impl Command<'_> {
    /// The command number of this command.
    pub fn kind(&self) -> CommandKind {
        match self {
            Command::AddStream(_) => CommandKind::AddStream,
            Command::CreateSession(_) => CommandKind::CreateSession,
            Command::StartData => CommandKind::StartData,
            Command::Version(_) => CommandKind::Version,
            Command::SendMetadata(_) => CommandKind::SendMetadata,
            Command::CloseStream(_) => CommandKind::CloseStream,
            Command::DataPending(_) => CommandKind::DataPending,
            Command::QuiescentControl(_) => CommandKind::QuiescentControl,
            Command::BeginDataPending(_) => CommandKind::BeginDataPending,
            Command::EndDataPending(_) => CommandKind::EndDataPending,
            Command::SendIndex(_) => CommandKind::SendIndex,
            Command::StreamsSent => CommandKind::StreamsSent,
            Command::ResetMetadata(_) => CommandKind::ResetMetadata,
            Command::RotateStreams(_) => CommandKind::RotateStreams,
            Command::CreateTraceChunk(_) => CommandKind::CreateTraceChunk,
            Command::CloseTraceChunk(_) => CommandKind::CloseTraceChunk,
            Command::TraceChunkExists(_) => CommandKind::TraceChunkExists,
            Command::GetConfiguration(_) => CommandKind::GetConfiguration,
        }
    }

    /// Size of the payload this command encodes to with the layouts of `minor`.
    pub fn payload_len(&self, minor: ProtocolMinor) -> usize {
        match self {
            Command::StartData | Command::StreamsSent => 0,
            Command::Version(_) => Version::LEN,
            Command::GetConfiguration(_) => GetConfiguration::LEN,
            Command::QuiescentControl(_)
            | Command::BeginDataPending(_)
            | Command::EndDataPending(_)
            | Command::TraceChunkExists(_) => 8,
            Command::CloseStream(_) | Command::DataPending(_) | Command::ResetMetadata(_) => 16,
            Command::CloseTraceChunk(_) => CLOSE_TRACE_CHUNK_LEN,
            Command::SendIndex(_) => SendIndex::payload_len(minor),
            Command::CreateSession(c) => c.payload_len(minor),
            Command::AddStream(c) => c.payload_len(minor),
            Command::SendMetadata(c) => c.payload_len(),
            Command::RotateStreams(c) => c.payload_len(),
            Command::CreateTraceChunk(c) => c.payload_len(),
        }
    }

    /// The header a sender puts in front of this command.
    pub fn header(&self, minor: ProtocolMinor) -> ControlHeader {
        ControlHeader::new(self.kind(), self.payload_len(minor) as u64)
    }

    /// Appends the 24-byte header and the payload, laid out for `minor`.
    pub fn encode(&self, minor: ProtocolMinor, buf: &mut impl BufMut) {
        self.header(minor).encode(buf);
        self.encode_payload(minor, buf);
    }

    /// Appends the payload only, laid out for `minor`.
    pub fn encode_payload(&self, minor: ProtocolMinor, buf: &mut impl BufMut) {
        match self {
            Command::StartData | Command::StreamsSent => {}
            Command::Version(v) => v.encode(buf),
            Command::GetConfiguration(c) => buf.put_u64(c.query_flags),
            Command::QuiescentControl(id) => buf.put_u64(id.0),
            Command::BeginDataPending(id) | Command::EndDataPending(id) => buf.put_u64(id.0),
            Command::TraceChunkExists(id) => buf.put_u64(*id),
            Command::CloseStream(c) => {
                buf.put_u64(c.stream_id.0);
                buf.put_u64(c.last_net_seq.0);
            }
            Command::DataPending(c) => {
                buf.put_u64(c.stream_id.0);
                buf.put_u64(c.last_net_seq.0);
            }
            Command::ResetMetadata(c) => {
                buf.put_u64(c.stream_id.0);
                buf.put_u64(c.version);
            }
            Command::CloseTraceChunk(c) => c.encode(buf),
            Command::SendIndex(c) => c.encode(minor, buf),
            Command::CreateSession(c) => c.encode(minor, buf),
            Command::AddStream(c) => c.encode(minor, buf),
            Command::SendMetadata(c) => c.encode(buf),
            Command::RotateStreams(c) => c.encode(buf),
            Command::CreateTraceChunk(c) => c.encode(buf),
        }
    }
}
