//! The fixed-size session and stream records carried by LIST_SESSIONS, ATTACH_SESSION and
//! GET_NEW_STREAMS replies.
//!
//! Session record, by the live minor both sides negotiated:
//! - `< 15` (339 bytes): `id u64`, `live_timer u32` (µs), `clients u32`, `streams u32`,
//!   `hostname char[64]`, `session_name char[255]`; the trace format does not travel (such a
//!   viewer must never be shown a CTF 2 session);
//! - `>= 15` (32 bytes + names): `id u64`, `live_timer u32`, `clients u32`, `streams u32`,
//!   `hostname_len u32`, `session_name_len u32`, `trace_format u32` (0 = CTF 1.8, 1 = CTF 2), then
//!   the hostname and the session name, each exactly its length, without NUL. Lengths are capped
//!   ([`SESSION_2_15_HOSTNAME_MAX`], [`SESSION_2_15_NAME_MAX`]) and the names may not contain NUL.
//!
//! Stream record (4371 bytes): `id u64`, `ctf_trace_id u64`, `metadata_flag u32`,
//! `path_name char[4096]`, `channel_name char[255]`.
//!
//! A `char[N]` field holds text up to its first NUL; whatever follows the NUL is ignored when
//! decoding (peers need not zero it) and written as zeros when encoding. A field without a NUL is
//! an error. Text longer than `N - 1` bytes is truncated by the encoder: callers that must not
//! truncate (a hostname of 64+ bytes, for instance) check against the `*_LEN` constants first.

use bytes::BufMut;

use crate::codec::{put_fixed_str, str_from_fixed, DecodeError, Decoded, Reader};
use crate::id::{CtfTraceId, SessionId, StreamId};
use crate::lttng::TraceFormat;

/// Size of a session record below minor 15.
pub const SESSION_RECORD_LEN: usize = 339;
/// Size of the fixed part of a 2.15 session record.
pub const SESSION_2_15_FIXED_LEN: usize = 32;
/// Longest hostname a 2.15 session record carries (`LTTNG_HOST_NAME_MAX` less its NUL).
pub const SESSION_2_15_HOSTNAME_MAX: u32 = 255;
/// Longest session name a 2.15 session record carries (`LTTNG_NAME_MAX` less its NUL).
pub const SESSION_2_15_NAME_MAX: u32 = 254;
/// First live minor whose session records carry the trace format (LTTng 2.15).
pub const TRACE_FORMAT_MINOR: u32 = 15;
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
    /// The session's trace format (carried from minor 15; CTF 1.8 when decoded below).
    pub trace_format: TraceFormat,
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
                    trace_format: TraceFormat::Ctf1_8,
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

    /// Size of this record in the 2.15 layout.
    pub fn len_2_15(&self) -> usize {
        SESSION_2_15_FIXED_LEN
            .saturating_add(self.hostname.len())
            .saturating_add(self.session_name.len())
    }

    /// Decodes one 2.15 record from the start of `buf`.
    pub fn decode_2_15(buf: &[u8]) -> Result<Decoded<SessionRecord>, DecodeError> {
        let mut r = Reader::new(buf);
        let fixed = (
            r.u64(),
            r.u32(),
            r.u32(),
            r.u32(),
            r.u32(),
            r.u32(),
            r.u32(),
        );
        let (
            Some(id),
            Some(live_timer),
            Some(clients),
            Some(streams),
            Some(hl),
            Some(nl),
            Some(tf),
        ) = fixed
        else {
            return Ok(Decoded::Incomplete {
                needed: SESSION_2_15_FIXED_LEN,
            });
        };
        let cap = |v: u32, max: u32, field| {
            if v > max {
                Err(DecodeError::TooLong {
                    field,
                    value: u64::from(v),
                    max: u64::from(max),
                })
            } else {
                Ok(v as usize)
            }
        };
        let hl = cap(hl, SESSION_2_15_HOSTNAME_MAX, "session.hostname_len")?;
        let nl = cap(nl, SESSION_2_15_NAME_MAX, "session.session_name_len")?;
        let trace_format = TraceFormat::from_live(tf, "session.trace_format")?;
        let used = SESSION_2_15_FIXED_LEN
            .checked_add(hl)
            .and_then(|n| n.checked_add(nl))
            .ok_or(DecodeError::TooLong {
                field: "session record",
                value: u64::MAX,
                max: u64::MAX,
            })?;
        let (Some(host), Some(name)) = (r.bytes(hl), r.bytes(nl)) else {
            return Ok(Decoded::Incomplete { needed: used });
        };
        Ok(Decoded::Done {
            msg: SessionRecord {
                id: SessionId(id),
                live_timer,
                clients,
                streams,
                hostname: counted_text(host, "session.hostname")?,
                session_name: counted_text(name, "session.session_name")?,
                trace_format,
            },
            used,
        })
    }

    /// Appends the record in the 2.15 layout. Names longer than the caps cannot be decoded by
    /// a peer: callers keep within [`SESSION_2_15_HOSTNAME_MAX`] and [`SESSION_2_15_NAME_MAX`].
    pub fn encode_2_15(&self, buf: &mut impl BufMut) {
        buf.put_u64(self.id.0);
        buf.put_u32(self.live_timer);
        buf.put_u32(self.clients);
        buf.put_u32(self.streams);
        buf.put_u32(u32::try_from(self.hostname.len()).unwrap_or(u32::MAX));
        buf.put_u32(u32::try_from(self.session_name.len()).unwrap_or(u32::MAX));
        buf.put_u32(self.trace_format.to_live());
        buf.put_slice(self.hostname.as_bytes());
        buf.put_slice(self.session_name.as_bytes());
    }

    /// Whether a record fits the layout of live minor `minor` without truncation.
    pub fn fits(&self, minor: u32) -> bool {
        if minor >= TRACE_FORMAT_MINOR {
            self.hostname.len() <= SESSION_2_15_HOSTNAME_MAX as usize
                && self.session_name.len() <= SESSION_2_15_NAME_MAX as usize
        } else {
            self.hostname.len() < HOSTNAME_LEN && self.session_name.len() < NAME_LEN
        }
    }
}

/// A name of a 2.15 record: exactly its bytes, no NUL inside, UTF-8.
fn counted_text(bytes: &[u8], field: &'static str) -> Result<String, DecodeError> {
    if let Some(at) = bytes.iter().position(|&b| b == 0) {
        return Err(DecodeError::InvalidValue {
            field,
            value: at as u64,
        });
    }
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| DecodeError::NotUtf8 { field })
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
