//! Connection setup: VERSION, GET_CONFIGURATION and CREATE_SESSION.
//!
//! - VERSION (8 bytes): `major u32`, `minor u32`.
//! - GET_CONFIGURATION (8 bytes): `query_flags u64` (senders send 0).
//! - CREATE_SESSION, by negotiated minor:
//!   - `>= 15` (63 + names): the 59-byte fixed part of 2.11, then `trace_format u32` (1 = CTF
//!     1.8, 2 = CTF 2, anything else refused), then the three strings as in 2.11;
//!   - `11..=14` (59 + names): `session_name_len u32`, `hostname_len u32`, `base_path_len u32`
//!     (each counting its NUL; base path 0 = none), `live_timer u32` (µs), `snapshot u8`,
//!     `session_name_contains_creation_time u8`, `sessiond_uuid [16]`, `sessiond_session_id u64`,
//!     `creation_time u64`, `current_chunk_id.is_set u8`, `current_chunk_id.value u64`, then the
//!     three strings back to back, each exactly its declared length and ending in NUL;
//!   - `4..=10` (327 bytes): `session_name char[255]`, `hostname char[64]`, `live_timer u32`,
//!     `snapshot u32`;
//!   - `< 4`: no payload.

use bytes::BufMut;

use super::super::wire::{bool_from, counted_len, counted_len_u32, put_counted, Fields};
use super::super::{HOST_NAME_MAX, HOST_NAME_MAX_2_4, NAME_MAX, PATH_MAX, UUID_LEN};
use crate::codec::{put_fixed_str, str_from_fixed, DecodeError};
use crate::lttng::relayd::version::{CreateSessionLayout, ProtocolMinor};
use crate::lttng::TraceFormat;

/// VERSION request (and reply): a protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Version {
    /// Protocol major (2).
    pub major: u32,
    /// Protocol minor (13 for LTTng 2.13, 14 for 2.14, 15 for 2.15).
    pub minor: u32,
}

impl Version {
    /// Payload size.
    pub const LEN: usize = 8;

    pub(crate) fn decode(f: &mut Fields<'_>) -> Result<Self, DecodeError> {
        Ok(Version {
            major: f.u32("version major")?,
            minor: f.u32("version minor")?,
        })
    }

    pub(crate) fn encode(&self, buf: &mut impl BufMut) {
        buf.put_u32(self.major);
        buf.put_u32(self.minor);
    }
}

/// GET_CONFIGURATION request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct GetConfiguration {
    /// Query flags (senders send 0; the relay refuses anything else).
    pub query_flags: u64,
}

impl GetConfiguration {
    /// Payload size.
    pub const LEN: usize = 8;
}

/// CREATE_SESSION request, in one shape for every layout.
///
/// Fields a layout does not carry decode to their default and are not encoded: before 2.15 the
/// trace format does not travel (CTF 1.8), before 2.11 only the names, `live_timer_us` and
/// `snapshot` do, and before 2.4 nothing does (the relay then
/// sees empty names). In the 327-byte layout names are truncated to their field on encoding
/// (254 and 63 bytes of text). Names must not contain NUL bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct CreateSession {
    /// Session name (≤ 254 bytes of text).
    pub session_name: String,
    /// Hostname of the traced machine (≤ 255 bytes of text).
    pub hostname: String,
    /// Base path under the relay's output root; `None` when the length field is 0 (2.13
    /// senders send `Some("")` for "no base path").
    pub base_path: Option<String>,
    /// Live timer period in µs; 0 for a non-live session.
    pub live_timer_us: u32,
    /// Snapshot session.
    pub snapshot: bool,
    /// The session name already ends with its creation time.
    pub name_contains_creation_time: bool,
    /// The session daemon's UUID (raw bytes).
    pub sessiond_uuid: [u8; UUID_LEN],
    /// The session daemon's own id for the session (not the relay session id).
    pub sessiond_session_id: u64,
    /// Creation time, seconds since the epoch (sessiond clock).
    pub creation_time: u64,
    /// The chunk already current in the session daemon, when a consumer joins a started session.
    pub current_chunk_id: Option<u64>,
    /// The session's trace format (minor 15 and later; CTF 1.8 below).
    pub trace_format: TraceFormat,
}

/// Size of the fixed part of the 2.11 layout.
pub const CREATE_SESSION_2_11_FIXED_LEN: usize = 59;
/// Size of the fixed part of the 2.15 layout (the 2.11 one and the trace format).
pub const CREATE_SESSION_2_15_FIXED_LEN: usize = 63;
/// Size of the 2.4 layout.
pub const CREATE_SESSION_2_4_LEN: usize = 327;

impl CreateSession {
    /// Payload size with the layout `minor` selects.
    pub fn payload_len(&self, minor: ProtocolMinor) -> usize {
        match minor.create_session_layout() {
            CreateSessionLayout::Empty => 0,
            CreateSessionLayout::V2_4 => CREATE_SESSION_2_4_LEN,
            CreateSessionLayout::V2_11 => self.names_len(CREATE_SESSION_2_11_FIXED_LEN),
            CreateSessionLayout::V2_15 => self.names_len(CREATE_SESSION_2_15_FIXED_LEN),
        }
    }

    fn names_len(&self, fixed: usize) -> usize {
        fixed
            .saturating_add(counted_len(&self.session_name))
            .saturating_add(counted_len(&self.hostname))
            .saturating_add(self.base_path.as_deref().map_or(0, counted_len))
    }

    pub(crate) fn decode(
        f: &mut Fields<'_>,
        minor: ProtocolMinor,
    ) -> Result<CreateSession, DecodeError> {
        match minor.create_session_layout() {
            CreateSessionLayout::Empty => Ok(CreateSession::default()),
            CreateSessionLayout::V2_4 => Self::decode_2_4(f),
            CreateSessionLayout::V2_11 => Self::decode_2_11(f, false),
            CreateSessionLayout::V2_15 => Self::decode_2_11(f, true),
        }
    }

    fn decode_2_4(f: &mut Fields<'_>) -> Result<CreateSession, DecodeError> {
        let name = f.bytes(NAME_MAX, "session name")?;
        let host = f.bytes(HOST_NAME_MAX_2_4, "hostname")?;
        Ok(CreateSession {
            session_name: str_from_fixed(name, "session name")?,
            hostname: str_from_fixed(host, "hostname")?,
            live_timer_us: f.u32("live timer")?,
            snapshot: bool_from(u64::from(f.u32("snapshot")?), "snapshot")?,
            ..CreateSession::default()
        })
    }

    /// The 2.11 layout, with the trace format between the fixed part and the names when
    /// `with_format` (2.15).
    fn decode_2_11(f: &mut Fields<'_>, with_format: bool) -> Result<CreateSession, DecodeError> {
        let name_len = f.u32("session name length")?;
        let host_len = f.u32("hostname length")?;
        let base_len = f.u32("base path length")?;
        let live_timer_us = f.u32("live timer")?;
        let snapshot = f.flag("snapshot")?;
        let name_contains_creation_time = f.flag("name contains creation time")?;
        let sessiond_uuid = f.array("sessiond uuid")?;
        let sessiond_session_id = f.u64("sessiond session id")?;
        let creation_time = f.u64("creation time")?;
        let chunk_set = f.flag("current chunk id is_set")?;
        let chunk = f.u64("current chunk id")?;
        let trace_format = if with_format {
            TraceFormat::from_control(f.u32("trace format")?, "trace format")?
        } else {
            TraceFormat::Ctf1_8
        };
        let session_name = f.counted_str(name_len, NAME_MAX as u32, "session name")?;
        let hostname = f.counted_str(host_len, HOST_NAME_MAX as u32, "hostname")?;
        let base_path = match base_len {
            0 => None,
            n => Some(f.counted_str(n, PATH_MAX as u32, "base path")?),
        };
        Ok(CreateSession {
            session_name,
            hostname,
            base_path,
            live_timer_us,
            snapshot,
            name_contains_creation_time,
            sessiond_uuid,
            sessiond_session_id,
            creation_time,
            current_chunk_id: chunk_set.then_some(chunk),
            trace_format,
        })
    }

    pub(crate) fn encode(&self, minor: ProtocolMinor, buf: &mut impl BufMut) {
        match minor.create_session_layout() {
            CreateSessionLayout::Empty => {}
            CreateSessionLayout::V2_4 => {
                put_fixed_str(buf, &self.session_name, NAME_MAX);
                put_fixed_str(buf, &self.hostname, HOST_NAME_MAX_2_4);
                buf.put_u32(self.live_timer_us);
                buf.put_u32(u32::from(self.snapshot));
            }
            CreateSessionLayout::V2_11 => self.encode_2_11(buf, false),
            CreateSessionLayout::V2_15 => self.encode_2_11(buf, true),
        }
    }

    fn encode_2_11(&self, buf: &mut impl BufMut, with_format: bool) {
        buf.put_u32(counted_len_u32(&self.session_name));
        buf.put_u32(counted_len_u32(&self.hostname));
        buf.put_u32(self.base_path.as_deref().map_or(0, counted_len_u32));
        buf.put_u32(self.live_timer_us);
        buf.put_u8(u8::from(self.snapshot));
        buf.put_u8(u8::from(self.name_contains_creation_time));
        buf.put_slice(&self.sessiond_uuid);
        buf.put_u64(self.sessiond_session_id);
        buf.put_u64(self.creation_time);
        buf.put_u8(u8::from(self.current_chunk_id.is_some()));
        buf.put_u64(self.current_chunk_id.unwrap_or(0));
        if with_format {
            buf.put_u32(self.trace_format.to_control());
        }
        put_counted(buf, &self.session_name);
        put_counted(buf, &self.hostname);
        if let Some(base) = &self.base_path {
            put_counted(buf, base);
        }
    }
}
