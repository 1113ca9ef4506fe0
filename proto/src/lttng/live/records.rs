//! The fixed-size session and stream records carried by LIST_SESSIONS, ATTACH_SESSION and
//! GET_NEW_STREAMS replies.
//!
//! Session record (339 bytes): `id u64`, `live_timer u32` (µs), `clients u32`, `streams u32`,
//! `hostname char[64]`, `session_name char[255]`.
//!
//! Stream record (4371 bytes): `id u64`, `ctf_trace_id u64`, `metadata_flag u32`,
//! `path_name char[4096]`, `channel_name char[255]`.
//!
//! A `char[N]` field holds text up to its first NUL; whatever follows the NUL is ignored when
//! decoding (peers need not zero it) and written as zeros when encoding. A field without a NUL is
//! an error. Text longer than `N - 1` bytes is truncated by the encoder: callers that must not
//! truncate (a hostname of 64+ bytes, for instance) check against the `*_LEN` constants first.

use bytes::BufMut;

use crate::codec::{put_fixed_str, str_from_fixed, DecodeError, Reader};
use crate::id::{CtfTraceId, SessionId, StreamId};

/// Size of a session record.
pub const SESSION_RECORD_LEN: usize = 339;
/// Size of a stream record.
pub const STREAM_RECORD_LEN: usize = 4371;
/// Width of the session record's hostname field.
pub const HOSTNAME_LEN: usize = 64;
/// Width of the session name and channel name fields.
pub const NAME_LEN: usize = 255;
/// Width of the stream record's path field.
pub const PATH_LEN: usize = 4096;

/// One relay session as LIST_SESSIONS describes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct SessionRecord {
    /// Relay session id.
    pub id: SessionId,
    /// Live timer period, in microseconds.
    pub live_timer: u32,
    /// Number of viewers attached (0 or 1).
    pub clients: u32,
    /// Number of streams of the session, metadata included.
    pub streams: u32,
    /// Host the session traces (at most 63 bytes).
    pub hostname: String,
    /// Tracing session name (at most 254 bytes).
    pub session_name: String,
}

impl SessionRecord {
    /// Decodes a record from exactly [`SESSION_RECORD_LEN`] bytes.
    pub fn decode(rec: &[u8]) -> Result<SessionRecord, DecodeError> {
        let short = || DecodeError::BadLength {
            what: "session record",
            expected: SESSION_RECORD_LEN as u64,
            actual: rec.len() as u64,
        };
        if rec.len() != SESSION_RECORD_LEN {
            return Err(short());
        }
        let mut r = Reader::new(rec);
        let (id, live_timer, clients, streams) = (r.u64(), r.u32(), r.u32(), r.u32());
        let (host, name) = (r.bytes(HOSTNAME_LEN), r.bytes(NAME_LEN));
        match (id, live_timer, clients, streams, host, name) {
            (Some(id), Some(live_timer), Some(clients), Some(streams), Some(host), Some(name)) => {
                Ok(SessionRecord {
                    id: SessionId(id),
                    live_timer,
                    clients,
                    streams,
                    hostname: str_from_fixed(host, "session.hostname")?,
                    session_name: str_from_fixed(name, "session.session_name")?,
                })
            }
            _ => Err(short()),
        }
    }

    /// Appends the 339-byte record (text fields truncated to fit, zero padded).
    pub fn encode(&self, buf: &mut impl BufMut) {
        buf.put_u64(self.id.0);
        buf.put_u32(self.live_timer);
        buf.put_u32(self.clients);
        buf.put_u32(self.streams);
        put_fixed_str(buf, &self.hostname, HOSTNAME_LEN);
        put_fixed_str(buf, &self.session_name, NAME_LEN);
    }
}

/// One stream as ATTACH_SESSION and GET_NEW_STREAMS announce it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct StreamRecord {
    /// Viewer stream id (the relay's stream handle).
    pub id: StreamId,
    /// Trace the stream belongs to; ties data streams to their metadata stream.
    pub ctf_trace_id: CtfTraceId,
    /// Non-zero for the metadata stream (LTTng sends 1).
    pub metadata_flag: u32,
    /// Stream directory relative to the trace chunk, e.g. `ust/uid/0/64-bit`.
    pub path_name: String,
    /// Channel (file) name, e.g. `channel0_0` or `metadata`.
    pub channel_name: String,
}

impl StreamRecord {
    /// Whether this is a metadata stream.
    pub fn is_metadata(&self) -> bool {
        self.metadata_flag != 0
    }

    /// Decodes a record from exactly [`STREAM_RECORD_LEN`] bytes.
    pub fn decode(rec: &[u8]) -> Result<StreamRecord, DecodeError> {
        let short = || DecodeError::BadLength {
            what: "stream record",
            expected: STREAM_RECORD_LEN as u64,
            actual: rec.len() as u64,
        };
        if rec.len() != STREAM_RECORD_LEN {
            return Err(short());
        }
        let mut r = Reader::new(rec);
        let (id, trace, flag) = (r.u64(), r.u64(), r.u32());
        let (path, channel) = (r.bytes(PATH_LEN), r.bytes(NAME_LEN));
        match (id, trace, flag, path, channel) {
            (Some(id), Some(trace), Some(metadata_flag), Some(path), Some(channel)) => {
                Ok(StreamRecord {
                    id: StreamId(id),
                    ctf_trace_id: CtfTraceId(trace),
                    metadata_flag,
                    path_name: str_from_fixed(path, "stream.path_name")?,
                    channel_name: str_from_fixed(channel, "stream.channel_name")?,
                })
            }
            _ => Err(short()),
        }
    }

    /// Appends the 4371-byte record (text fields truncated to fit, zero padded).
    pub fn encode(&self, buf: &mut impl BufMut) {
        buf.put_u64(self.id.0);
        buf.put_u64(self.ctf_trace_id.0);
        buf.put_u32(self.metadata_flag);
        put_fixed_str(buf, &self.path_name, PATH_LEN);
        put_fixed_str(buf, &self.channel_name, NAME_LEN);
    }
}
