//! Whole relay replies, decoded according to the command they answer.
//!
//! - CONNECT: the 20-byte [`ConnectReply`].
//! - LIST_SESSIONS: `sessions_count u32`, then that many session records: 339 bytes each below
//!   live minor 15, variable-length 2.15 records (with the trace format) from 15 on.
//! - ATTACH_SESSION, GET_NEW_STREAMS: `status u32`, `streams_count u32`, then that many 4371-byte
//!   stream records.
//! - GET_NEXT_INDEX: the 64-byte [`IndexReply`].
//! - GET_PACKET, GET_METADATA: a 12-byte head, then `len` bytes.
//! - CREATE_SESSION, DETACH_SESSION: `status u32`.
//! - An unknown command: a 4-byte error code ([`ERR_UNKNOWN_COMMAND`](super::ERR_UNKNOWN_COMMAND)),
//!   after which the relay closes the connection.
//!
//! The layout of LIST_SESSIONS depends on the negotiated live minor: [`decode_reply_at`] and
//! [`ViewerReply::encode_at`] take it; [`decode_reply`] and [`ViewerReply::encode`] speak the
//! layouts of minors below 15 (what babeltrace2 2.0 and LTTng 2.13 use).
//!
//! Record counts are capped at [`MAX_RECORDS`] and the whole reply must be present before any
//! record is allocated (2.15 records: each record is decoded only once its bytes are there), so
//! memory use is bounded by the input. Bulk data is borrowed from the
//! input, not copied.

use bytes::BufMut;

use super::header::Command;
use super::records::{
    SessionRecord, StreamRecord, SESSION_RECORD_LEN, STREAM_RECORD_LEN, TRACE_FORMAT_MINOR,
};
use super::reply_fixed::{
    ConnectReply, IndexReply, MetadataReplyHead, PacketReplyHead, METADATA_HEAD_LEN,
    PACKET_HEAD_LEN,
};
use super::status::{
    AttachStatus, CreateSessionStatus, DetachStatus, GetMetadataStatus, GetPacketStatus,
    NewStreamsStatus, ViewerFlags,
};
use super::MAX_RECORDS;
use crate::codec::{DecodeError, Decoded, Reader};

/// A reply from the relay to a viewer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewerReply<'a> {
    /// CONNECT reply.
    Connect(ConnectReply),
    /// LIST_SESSIONS reply.
    ListSessions(Vec<SessionRecord>),
    /// ATTACH_SESSION reply.
    AttachSession {
        /// Status.
        status: AttachStatus,
        /// The announced streams.
        streams: Vec<StreamRecord>,
    },
    /// GET_NEXT_INDEX reply.
    NextIndex(IndexReply),
    /// GET_PACKET reply; `data.len()` is the wire `len` (at most
    /// [`MAX_PACKET_LEN`](super::MAX_PACKET_LEN) when encoding).
    Packet {
        /// Status.
        status: GetPacketStatus,
        /// Flags.
        flags: ViewerFlags,
        /// Packet bytes.
        data: &'a [u8],
    },
    /// GET_METADATA reply; `data.len()` is the wire `len`.
    Metadata {
        /// Status.
        status: GetMetadataStatus,
        /// Metadata bytes.
        data: &'a [u8],
    },
    /// GET_NEW_STREAMS reply.
    NewStreams {
        /// Status.
        status: NewStreamsStatus,
        /// The announced streams.
        streams: Vec<StreamRecord>,
    },
    /// CREATE_SESSION reply.
    CreateSession(CreateSessionStatus),
    /// DETACH_SESSION reply.
    DetachSession(DetachStatus),
    /// The error code sent in answer to an unknown command.
    UnknownCommand {
        /// The code (lttng-relayd sends `LTTNG_ERR_UNK`, 11).
        code: u32,
    },
}

/// Decodes the reply to command number `cmd` (a [`Command`] or a raw number; an unknown number
/// expects the 4-byte error code) from the start of `buf`, with the layouts of live minors below
/// 15 (see [`decode_reply_at`]).
pub fn decode_reply(
    cmd: impl Into<u32>,
    buf: &[u8],
) -> Result<Decoded<ViewerReply<'_>>, DecodeError> {
    decode_reply_at(cmd, 13, buf)
}

/// Decodes the reply to command number `cmd` with the layouts of the negotiated live `minor`
/// (`min(viewer's, relay's)`): from 15 on, LIST_SESSIONS carries 2.15 session records.
pub fn decode_reply_at(
    cmd: impl Into<u32>,
    minor: u32,
    buf: &[u8],
) -> Result<Decoded<ViewerReply<'_>>, DecodeError> {
    let Ok(cmd) = Command::try_from(cmd.into()) else {
        return u32_reply(buf, |code| Ok(ViewerReply::UnknownCommand { code })).transpose();
    };
    match cmd {
        Command::Connect => Ok(ConnectReply::decode(buf)?.map(ViewerReply::Connect)),
        Command::GetNextIndex => Ok(IndexReply::decode(buf)?.map(ViewerReply::NextIndex)),
        Command::CreateSession => u32_reply(buf, |s| {
            CreateSessionStatus::try_from(s).map(ViewerReply::CreateSession)
        })
        .transpose(),
        Command::DetachSession => u32_reply(buf, |s| {
            DetachStatus::try_from(s).map(ViewerReply::DetachSession)
        })
        .transpose(),
        Command::ListSessions if minor >= TRACE_FORMAT_MINOR => decode_sessions_2_15(buf),
        Command::ListSessions => decode_sessions(buf),
        Command::AttachSession => decode_streams(buf, |status, streams| {
            Ok(ViewerReply::AttachSession {
                status: AttachStatus::try_from(status)?,
                streams,
            })
        }),
        Command::GetNewStreams => decode_streams(buf, |status, streams| {
            Ok(ViewerReply::NewStreams {
                status: NewStreamsStatus::try_from(status)?,
                streams,
            })
        }),
        Command::GetPacket => decode_packet(buf),
        Command::GetMetadata => decode_metadata(buf),
    }
}

/// A 4-byte reply mapped through `f`; `Incomplete` when short.
fn u32_reply<T>(buf: &[u8], f: impl FnOnce(u32) -> T) -> Decoded<T> {
    match Reader::new(buf).u32() {
        Some(v) => Decoded::Done { msg: f(v), used: 4 },
        None => Decoded::Incomplete { needed: 4 },
    }
}

trait Transpose<T> {
    fn transpose(self) -> Result<Decoded<T>, DecodeError>;
}

impl<T> Transpose<T> for Decoded<Result<T, DecodeError>> {
    fn transpose(self) -> Result<Decoded<T>, DecodeError> {
        match self {
            Decoded::Incomplete { needed } => Ok(Decoded::Incomplete { needed }),
            Decoded::Done { msg, used } => msg.map(|msg| Decoded::Done { msg, used }),
        }
    }
}

/// Checks a record count against the cap and returns the total reply size.
fn records_total(
    fixed: usize,
    count: u32,
    record_len: usize,
    field: &'static str,
) -> Result<usize, DecodeError> {
    if count > MAX_RECORDS {
        return Err(DecodeError::TooLong {
            field,
            value: u64::from(count),
            max: u64::from(MAX_RECORDS),
        });
    }
    usize::try_from(count)
        .ok()
        .and_then(|n| n.checked_mul(record_len))
        .and_then(|n| n.checked_add(fixed))
        .ok_or(DecodeError::TooLong {
            field,
            value: u64::from(count),
            max: u64::from(MAX_RECORDS),
        })
}

fn decode_sessions(buf: &[u8]) -> Result<Decoded<ViewerReply<'_>>, DecodeError> {
    let Some(count) = Reader::new(buf).u32() else {
        return Ok(Decoded::Incomplete { needed: 4 });
    };
    let used = records_total(4, count, SESSION_RECORD_LEN, "list_sessions.count")?;
    let Some(records) = buf.get(4..used) else {
        return Ok(Decoded::Incomplete { needed: used });
    };
    let sessions = records
        .chunks_exact(SESSION_RECORD_LEN)
        .map(SessionRecord::decode)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Decoded::Done {
        msg: ViewerReply::ListSessions(sessions),
        used,
    })
}

fn decode_sessions_2_15(buf: &[u8]) -> Result<Decoded<ViewerReply<'_>>, DecodeError> {
    let Some(count) = Reader::new(buf).u32() else {
        return Ok(Decoded::Incomplete { needed: 4 });
    };
    if count > MAX_RECORDS {
        return Err(DecodeError::TooLong {
            field: "list_sessions.count",
            value: u64::from(count),
            max: u64::from(MAX_RECORDS),
        });
    }
    let mut at = 4usize;
    let mut sessions = Vec::new();
    for _ in 0..count {
        let rest = buf.get(at..).unwrap_or(&[]);
        match SessionRecord::decode_2_15(rest)? {
            Decoded::Done { msg, used } => {
                sessions.push(msg);
                at = at.saturating_add(used);
            }
            Decoded::Incomplete { needed } => {
                return Ok(Decoded::Incomplete {
                    needed: at.saturating_add(needed),
                })
            }
        }
    }
    Ok(Decoded::Done {
        msg: ViewerReply::ListSessions(sessions),
        used: at,
    })
}

fn decode_streams(
    buf: &[u8],
    build: impl FnOnce(u32, Vec<StreamRecord>) -> Result<ViewerReply<'static>, DecodeError>,
) -> Result<Decoded<ViewerReply<'static>>, DecodeError> {
    let mut r = Reader::new(buf);
    let (Some(status), Some(count)) = (r.u32(), r.u32()) else {
        return Ok(Decoded::Incomplete { needed: 8 });
    };
    let used = records_total(8, count, STREAM_RECORD_LEN, "streams.count")?;
    let Some(records) = buf.get(8..used) else {
        return Ok(Decoded::Incomplete { needed: used });
    };
    let streams = records
        .chunks_exact(STREAM_RECORD_LEN)
        .map(StreamRecord::decode)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Decoded::Done {
        msg: build(status, streams)?,
        used,
    })
}

/// Splits `len` bytes of data after a head of `head_len` bytes, or reports what is needed.
fn data_after(
    buf: &[u8],
    head_len: usize,
    len: u64,
) -> Result<Result<(&[u8], usize), usize>, DecodeError> {
    let used = usize::try_from(len)
        .ok()
        .and_then(|n| n.checked_add(head_len))
        .ok_or(DecodeError::TooLong {
            field: "reply.len",
            value: len,
            max: usize::MAX as u64,
        })?;
    Ok(buf.get(head_len..used).map(|d| (d, used)).ok_or(used))
}

fn decode_packet(buf: &[u8]) -> Result<Decoded<ViewerReply<'_>>, DecodeError> {
    let head = match PacketReplyHead::decode(buf)? {
        Decoded::Done { msg, .. } => msg,
        Decoded::Incomplete { needed } => return Ok(Decoded::Incomplete { needed }),
    };
    Ok(
        match data_after(buf, PACKET_HEAD_LEN, u64::from(head.len))? {
            Ok((data, used)) => Decoded::Done {
                msg: ViewerReply::Packet {
                    status: head.status,
                    flags: head.flags,
                    data,
                },
                used,
            },
            Err(needed) => Decoded::Incomplete { needed },
        },
    )
}

fn decode_metadata(buf: &[u8]) -> Result<Decoded<ViewerReply<'_>>, DecodeError> {
    let head = match MetadataReplyHead::decode(buf)? {
        Decoded::Done { msg, .. } => msg,
        Decoded::Incomplete { needed } => return Ok(Decoded::Incomplete { needed }),
    };
    Ok(match data_after(buf, METADATA_HEAD_LEN, head.len)? {
        Ok((data, used)) => Decoded::Done {
            msg: ViewerReply::Metadata {
                status: head.status,
                data,
            },
            used,
        },
        Err(needed) => Decoded::Incomplete { needed },
    })
}

impl ViewerReply<'_> {
    /// Appends the whole reply with the layouts of live minors below 15 (see
    /// [`ViewerReply::encode_at`]).
    pub fn encode(&self, buf: &mut impl BufMut) {
        self.encode_at(13, buf)
    }

    /// Appends the whole reply with the layouts of the negotiated live `minor`. Record lists
    /// longer than `u32::MAX` and packet data longer than `u32::MAX` bytes cannot be
    /// represented; callers keep within the caps. Below 15, session records do not carry the
    /// trace format: the relay must not list CTF 2 sessions there.
    pub fn encode_at(&self, minor: u32, buf: &mut impl BufMut) {
        match self {
            ViewerReply::ListSessions(sessions) if minor >= TRACE_FORMAT_MINOR => {
                buf.put_u32(wire_count(sessions.len()));
                sessions.iter().for_each(|s| s.encode_2_15(buf));
            }
            ViewerReply::Connect(c) => c.encode(buf),
            ViewerReply::ListSessions(sessions) => {
                buf.put_u32(wire_count(sessions.len()));
                sessions.iter().for_each(|s| s.encode(buf));
            }
            ViewerReply::AttachSession { status, streams } => {
                encode_streams(status.to_u32(), streams, buf)
            }
            ViewerReply::NewStreams { status, streams } => {
                encode_streams(status.to_u32(), streams, buf)
            }
            ViewerReply::NextIndex(i) => i.encode(buf),
            ViewerReply::Packet {
                status,
                flags,
                data,
            } => {
                PacketReplyHead {
                    status: *status,
                    len: wire_count(data.len()),
                    flags: *flags,
                }
                .encode(buf);
                buf.put_slice(data);
            }
            ViewerReply::Metadata { status, data } => {
                MetadataReplyHead {
                    len: data.len() as u64,
                    status: *status,
                }
                .encode(buf);
                buf.put_slice(data);
            }
            ViewerReply::CreateSession(s) => buf.put_u32(s.to_u32()),
            ViewerReply::DetachSession(s) => buf.put_u32(s.to_u32()),
            ViewerReply::UnknownCommand { code } => buf.put_u32(*code),
        }
    }
}

fn wire_count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn encode_streams(status: u32, streams: &[StreamRecord], buf: &mut impl BufMut) {
    buf.put_u32(status);
    buf.put_u32(wire_count(streams.len()));
    streams.iter().for_each(|s| s.encode(buf));
}
