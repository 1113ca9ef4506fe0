//! Stream commands: ADD_STREAM, SEND_METADATA, CLOSE_STREAM and RESET_METADATA.
//!
//! - ADD_STREAM, by negotiated minor:
//!   - `>= 11` (32 + names): `channel_name_len u32`, `pathname_len u32` (each counting its NUL),
//!     `tracefile_size u64`, `tracefile_count u64`, `trace_chunk_id u64`, then the two strings;
//!   - `0`, `2..=10` (4376 bytes): `channel_name char[264]`, `pathname char[4096]`,
//!     `tracefile_size u64`, `tracefile_count u64`;
//!   - `1` (4360 bytes): the two names only.
//! - SEND_METADATA (12 + n): `stream_id u64`, `padding_size u32`, then the n metadata bytes
//!   (n = `data_size` − 12). [`MetadataHeader`] decodes the 12-byte part alone so that a relay
//!   can copy the bytes to disk as they arrive instead of buffering them.
//! - CLOSE_STREAM (16): `stream_id u64`, `last_net_seq_num u64`.
//! - RESET_METADATA (16): `stream_id u64`, `version u64`.
//!
//! The stream path may hold up to [`PATH_MAX`] bytes in every layout. LTTng 2.13's relay caps the
//! 2.11 `pathname_len` at 255 (its name limit, though the field is a multi-component path); the
//! decoder accepts the larger bound, which is still a fixed cap, and leaves path policy to the
//! relay.

use bytes::BufMut;

use super::super::wire::{counted_len, counted_len_u32, put_counted, Fields};
use super::super::{PATH_MAX, STREAM_NAME_MAX};
use crate::codec::{put_fixed_str, str_from_fixed, DecodeError, Decoded, Reader};
use crate::id::{NetSeq, StreamId};
use crate::lttng::relayd::version::{AddStreamLayout, ProtocolMinor};

/// Size of the fixed part of the 2.11 ADD_STREAM layout.
pub const ADD_STREAM_2_11_FIXED_LEN: usize = 32;
/// Size of the 2.2 ADD_STREAM layout.
pub const ADD_STREAM_2_2_LEN: usize = 4376;
/// Size of the 2.1 ADD_STREAM layout.
pub const ADD_STREAM_2_1_LEN: usize = 4360;

/// ADD_STREAM request, in one shape for every layout.
///
/// `trace_chunk_id` only travels from 2.11 on (0 otherwise); `tracefile_size` and
/// `tracefile_count` do not travel in the 2.1 layout (0 there). Fixed-field layouts truncate the
/// names to their field on encoding. Names must not contain NUL bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct AddStream {
    /// Stream name: `<channel>_<cpu>`, or `metadata` for the metadata stream (≤ 263 bytes).
    pub channel_name: String,
    /// Trace directory relative to the chunk, e.g. `ust/uid/0/64-bit` (≤ 4095 bytes).
    pub pathname: String,
    /// Maximum size of one data file in bytes; 0 = unlimited.
    pub tracefile_size: u64,
    /// Maximum number of data files kept; 0 = unlimited.
    pub tracefile_count: u64,
    /// The chunk the stream belongs to (2.11+).
    pub trace_chunk_id: u64,
}

impl AddStream {
    /// The stream name that marks a metadata stream.
    pub const METADATA_NAME: &'static str = "metadata";

    /// Whether this announces the metadata stream.
    pub fn is_metadata(&self) -> bool {
        self.channel_name == Self::METADATA_NAME
    }

    /// Payload size with the layout `minor` selects.
    pub fn payload_len(&self, minor: ProtocolMinor) -> usize {
        match minor.add_stream_layout() {
            AddStreamLayout::V2_1 => ADD_STREAM_2_1_LEN,
            AddStreamLayout::V2_2 => ADD_STREAM_2_2_LEN,
            AddStreamLayout::V2_11 => ADD_STREAM_2_11_FIXED_LEN
                .saturating_add(counted_len(&self.channel_name))
                .saturating_add(counted_len(&self.pathname)),
        }
    }

    pub(crate) fn decode(f: &mut Fields<'_>, minor: ProtocolMinor) -> Result<Self, DecodeError> {
        let layout = minor.add_stream_layout();
        if layout == AddStreamLayout::V2_11 {
            let name_len = f.u32("channel name length")?;
            let path_len = f.u32("pathname length")?;
            let tracefile_size = f.u64("tracefile size")?;
            let tracefile_count = f.u64("tracefile count")?;
            let trace_chunk_id = f.u64("trace chunk id")?;
            return Ok(AddStream {
                channel_name: f.counted_str(name_len, STREAM_NAME_MAX as u32, "channel name")?,
                pathname: f.counted_str(path_len, PATH_MAX as u32, "pathname")?,
                tracefile_size,
                tracefile_count,
                trace_chunk_id,
            });
        }
        let channel_name =
            str_from_fixed(f.bytes(STREAM_NAME_MAX, "channel name")?, "channel name")?;
        let pathname = str_from_fixed(f.bytes(PATH_MAX, "pathname")?, "pathname")?;
        let (tracefile_size, tracefile_count) = match layout {
            AddStreamLayout::V2_1 => (0, 0),
            _ => (f.u64("tracefile size")?, f.u64("tracefile count")?),
        };
        Ok(AddStream {
            channel_name,
            pathname,
            tracefile_size,
            tracefile_count,
            trace_chunk_id: 0,
        })
    }

    pub(crate) fn encode(&self, minor: ProtocolMinor, buf: &mut impl BufMut) {
        let layout = minor.add_stream_layout();
        if layout == AddStreamLayout::V2_11 {
            buf.put_u32(counted_len_u32(&self.channel_name));
            buf.put_u32(counted_len_u32(&self.pathname));
            buf.put_u64(self.tracefile_size);
            buf.put_u64(self.tracefile_count);
            buf.put_u64(self.trace_chunk_id);
            put_counted(buf, &self.channel_name);
            put_counted(buf, &self.pathname);
            return;
        }
        put_fixed_str(buf, &self.channel_name, STREAM_NAME_MAX);
        put_fixed_str(buf, &self.pathname, PATH_MAX);
        if layout == AddStreamLayout::V2_2 {
            buf.put_u64(self.tracefile_size);
            buf.put_u64(self.tracefile_count);
        }
    }
}

/// The 12-byte part in front of SEND_METADATA's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MetadataHeader {
    /// Metadata stream handle.
    pub stream_id: StreamId,
    /// Zero bytes to append after the metadata bytes.
    pub padding_size: u32,
}

impl MetadataHeader {
    /// Size of the metadata sub-header.
    pub const LEN: usize = 12;

    /// Decodes the sub-header from the start of `buf` (12 bytes used). Allocates nothing.
    pub fn decode(buf: &[u8]) -> Decoded<MetadataHeader> {
        let mut r = Reader::new(buf);
        match (r.u64(), r.u32()) {
            (Some(id), Some(padding_size)) => Decoded::Done {
                msg: MetadataHeader {
                    stream_id: StreamId(id),
                    padding_size,
                },
                used: Self::LEN,
            },
            _ => Decoded::Incomplete { needed: Self::LEN },
        }
    }

    /// Number of metadata bytes after the sub-header in a payload of `data_size` bytes, or
    /// [`DecodeError::BadLength`] if `data_size` cannot even hold the sub-header.
    pub fn content_len(data_size: u64) -> Result<u64, DecodeError> {
        data_size
            .checked_sub(Self::LEN as u64)
            .ok_or(DecodeError::BadLength {
                what: "SEND_METADATA payload",
                expected: Self::LEN as u64,
                actual: data_size,
            })
    }

    /// Appends the 12 bytes.
    pub fn encode(&self, buf: &mut impl BufMut) {
        buf.put_u64(self.stream_id.0);
        buf.put_u32(self.padding_size);
    }
}

/// SEND_METADATA request: metadata bytes for a metadata stream, borrowed from the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SendMetadata<'a> {
    /// Metadata stream handle.
    pub stream_id: StreamId,
    /// Zero bytes to append after `data`.
    pub padding_size: u32,
    /// The metadata bytes.
    pub data: &'a [u8],
}

impl<'a> SendMetadata<'a> {
    /// The sub-header of this message.
    pub fn header(&self) -> MetadataHeader {
        MetadataHeader {
            stream_id: self.stream_id,
            padding_size: self.padding_size,
        }
    }

    /// Bytes the metadata occupies on disk: data plus padding.
    pub fn total_len(&self) -> u64 {
        (self.data.len() as u64).saturating_add(u64::from(self.padding_size))
    }

    /// Payload size.
    pub fn payload_len(&self) -> usize {
        MetadataHeader::LEN.saturating_add(self.data.len())
    }

    pub(crate) fn decode(payload: &'a [u8]) -> Result<Self, DecodeError> {
        let mut f = Fields::new(payload);
        let stream_id = StreamId(f.u64("metadata stream id")?);
        let padding_size = f.u32("metadata padding size")?;
        let data = f.bytes(f.remaining(), "metadata")?;
        Ok(SendMetadata {
            stream_id,
            padding_size,
            data,
        })
    }

    pub(crate) fn encode(&self, buf: &mut impl BufMut) {
        self.header().encode(buf);
        buf.put_slice(self.data);
    }
}

/// CLOSE_STREAM request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CloseStream {
    /// Stream handle.
    pub stream_id: StreamId,
    /// Last data packet sent on the stream; unset (all ones) if none was sent.
    pub last_net_seq: NetSeq,
}

/// RESET_METADATA request (minor ≥ 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResetMetadata {
    /// Metadata stream handle.
    pub stream_id: StreamId,
    /// Metadata version after regeneration.
    pub version: u64,
}
