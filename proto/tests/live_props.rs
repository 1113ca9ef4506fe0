//! Property tests for the live protocol codecs: every request, reply and record round-trips,
//! prefixes are reported incomplete, arbitrary bytes never panic, and out-of-domain enum values
//! are typed errors. Hand-written hostile inputs live in `live_hostile.rs`.

use proptest::prelude::*;
use trelay_proto::lttng::live::records::{HOSTNAME_LEN, NAME_LEN, PATH_LEN};
use trelay_proto::lttng::live::{
    decode_reply, decode_reply_at, decode_request, AttachStatus, Command, CommandHeader,
    ConnectReply, ConnectRequest, ConnectionType, CreateSessionStatus, DetachStatus,
    GetMetadataStatus, GetPacketStatus, IndexReply, MetadataReplyHead, NewStreamsStatus,
    NextIndexStatus, PacketReplyHead, Seek, SessionRecord, StreamRecord, ViewerFlags, ViewerReply,
    ViewerRequest, SESSION_RECORD_LEN, STREAM_RECORD_LEN,
};
use trelay_proto::{DecodeError, Decoded, TraceFormat};

// ---------- strategies ----------

fn request() -> impl Strategy<Value = ViewerRequest> {
    prop_oneof![
        (
            any::<u64>(),
            any::<u32>(),
            any::<u32>(),
            prop::sample::select(ConnectionType::ALL)
        )
            .prop_map(|(id, major, minor, conn_type)| ViewerRequest::Connect(
                ConnectRequest {
                    viewer_session_id: id.into(),
                    major,
                    minor,
                    conn_type,
                }
            )),
        Just(ViewerRequest::ListSessions),
        Just(ViewerRequest::CreateSession),
        (any::<u64>(), any::<u64>(), prop::sample::select(Seek::ALL)).prop_map(
            |(id, offset, seek)| ViewerRequest::AttachSession {
                session_id: id.into(),
                offset,
                seek
            }
        ),
        any::<u64>().prop_map(|id| ViewerRequest::GetNextIndex {
            stream_id: id.into()
        }),
        (any::<u64>(), any::<u64>(), any::<u32>()).prop_map(|(id, offset, len)| {
            ViewerRequest::GetPacket {
                stream_id: id.into(),
                offset,
                len,
            }
        }),
        any::<u64>().prop_map(|id| ViewerRequest::GetMetadata {
            stream_id: id.into()
        }),
        any::<u64>().prop_map(|id| ViewerRequest::GetNewStreams {
            session_id: id.into()
        }),
        any::<u64>().prop_map(|id| ViewerRequest::DetachSession {
            session_id: id.into()
        }),
    ]
}

/// Text without NUL that fits a `char[width]` field (at most `width - 1` bytes).
fn fixed_text(width: usize) -> impl Strategy<Value = String> {
    "[^\0]{0,40}".prop_map(move |s| {
        let mut s: String = s;
        while s.len() > width - 1 {
            s.pop();
        }
        s
    })
}

fn session() -> impl Strategy<Value = SessionRecord> {
    (
        any::<u64>(),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        fixed_text(HOSTNAME_LEN),
        fixed_text(NAME_LEN),
    )
        .prop_map(
            |(id, live_timer, clients, streams, hostname, session_name)| SessionRecord {
                id: id.into(),
                live_timer,
                clients,
                streams,
                hostname,
                session_name,
                trace_format: TraceFormat::Ctf1_8,
            },
        )
}

/// A 2.15 session record: any names within the caps (no NUL), either format.
fn session_2_15() -> impl Strategy<Value = SessionRecord> {
    (
        (any::<u64>(), any::<u32>(), any::<u32>(), any::<u32>()),
        "[^\0]{0,60}",
        "[^\0]{0,60}",
        prop::sample::select(TraceFormat::ALL.to_vec()),
    )
        .prop_map(
            |((id, live_timer, clients, streams), hostname, session_name, trace_format)| {
                SessionRecord {
                    id: id.into(),
                    live_timer,
                    clients,
                    streams,
                    hostname,
                    session_name,
                    trace_format,
                }
            },
        )
}

fn stream() -> impl Strategy<Value = StreamRecord> {
    (
        any::<u64>(),
        any::<u64>(),
        any::<u32>(),
        fixed_text(PATH_LEN),
        fixed_text(NAME_LEN),
    )
        .prop_map(
            |(id, trace, metadata_flag, path_name, channel_name)| StreamRecord {
                id: id.into(),
                ctf_trace_id: trace.into(),
                metadata_flag,
                path_name,
                channel_name,
            },
        )
}

fn index_reply() -> impl Strategy<Value = IndexReply> {
    (
        any::<[u64; 7]>(),
        prop::sample::select(NextIndexStatus::ALL),
        any::<u32>(),
    )
        .prop_map(|(f, status, flags)| IndexReply {
            offset: f[0],
            packet_size: f[1],
            content_size: f[2],
            timestamp_begin: f[3],
            timestamp_end: f[4],
            events_discarded: f[5],
            stream_id: f[6],
            status,
            flags: ViewerFlags(flags),
        })
}

fn leak(v: Vec<u8>) -> &'static [u8] {
    v.leak()
}

fn reply() -> impl Strategy<Value = (Command, ViewerReply<'static>)> {
    let data = || prop::collection::vec(any::<u8>(), 0..300);
    prop_oneof![
        (any::<u64>(), any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(id, ma, mi, t)| (
            Command::Connect,
            ViewerReply::Connect(ConnectReply {
                viewer_session_id: id.into(),
                major: ma,
                minor: mi,
                conn_type: t
            })
        )),
        prop::collection::vec(session(), 0..4)
            .prop_map(|s| (Command::ListSessions, ViewerReply::ListSessions(s))),
        (
            prop::sample::select(AttachStatus::ALL),
            prop::collection::vec(stream(), 0..3)
        )
            .prop_map(|(status, streams)| (
                Command::AttachSession,
                ViewerReply::AttachSession { status, streams }
            )),
        (
            prop::sample::select(NewStreamsStatus::ALL),
            prop::collection::vec(stream(), 0..3)
        )
            .prop_map(|(status, streams)| (
                Command::GetNewStreams,
                ViewerReply::NewStreams { status, streams }
            )),
        index_reply().prop_map(|i| (Command::GetNextIndex, ViewerReply::NextIndex(i))),
        (
            prop::sample::select(GetPacketStatus::ALL),
            any::<u32>(),
            data()
        )
            .prop_map(|(status, flags, d)| (
                Command::GetPacket,
                ViewerReply::Packet {
                    status,
                    flags: ViewerFlags(flags),
                    data: leak(d)
                }
            )),
        (prop::sample::select(GetMetadataStatus::ALL), data()).prop_map(|(status, d)| (
            Command::GetMetadata,
            ViewerReply::Metadata {
                status,
                data: leak(d)
            }
        )),
        prop::sample::select(CreateSessionStatus::ALL)
            .prop_map(|s| (Command::CreateSession, ViewerReply::CreateSession(s))),
        prop::sample::select(DetachStatus::ALL)
            .prop_map(|s| (Command::DetachSession, ViewerReply::DetachSession(s))),
    ]
}

// ---------- properties ----------

proptest! {
    #[test]
    fn requests_round_trip(req in request()) {
        let mut buf = Vec::new();
        req.encode(&mut buf);
        prop_assert_eq!(buf.len(), 16 + req.command().payload_len());
        prop_assert_eq!(
            decode_request(&buf).unwrap(),
            Decoded::Done { msg: req, used: buf.len() }
        );
        // Trailing bytes are left alone.
        buf.extend_from_slice(&[1, 2, 3]);
        prop_assert_eq!(
            decode_request(&buf).unwrap(),
            Decoded::Done { msg: req, used: buf.len() - 3 }
        );
    }

    #[test]
    fn request_prefixes_are_incomplete(req in request()) {
        let mut buf = Vec::new();
        req.encode(&mut buf);
        for k in 0..buf.len() {
            match decode_request(&buf[..k]).unwrap() {
                Decoded::Incomplete { needed } => prop_assert!(needed > k && needed <= buf.len()),
                done => prop_assert!(false, "prefix {} decoded as {:?}", k, done),
            }
        }
    }

    #[test]
    fn replies_round_trip((cmd, reply) in reply()) {
        let mut buf = Vec::new();
        reply.encode(&mut buf);
        let decoded = decode_reply(cmd, &buf).unwrap();
        prop_assert_eq!(decoded, Decoded::Done { msg: reply, used: buf.len() });
    }

    #[test]
    fn reply_prefixes_are_incomplete((cmd, reply) in reply()) {
        let mut buf = Vec::new();
        reply.encode(&mut buf);
        // Every prefix, stepping over the bulk of long record lists.
        let step = if buf.len() > 2000 { 97 } else { 1 };
        for k in (0..buf.len()).step_by(step) {
            match decode_reply(cmd, &buf[..k]).unwrap() {
                Decoded::Incomplete { needed } => prop_assert!(needed > k && needed <= buf.len()),
                done => prop_assert!(false, "prefix {} decoded as {:?}", k, done),
            }
        }
    }

    #[test]
    fn session_records_round_trip(s in session()) {
        let mut buf = Vec::new();
        s.encode(&mut buf);
        prop_assert_eq!(buf.len(), SESSION_RECORD_LEN);
        prop_assert_eq!(SessionRecord::decode(&buf).unwrap(), s);
    }

    #[test]
    fn session_lists_2_15_round_trip(sessions in prop::collection::vec(session_2_15(), 0..5), minor in 15u32..40) {
        let reply = ViewerReply::ListSessions(sessions);
        let mut buf = Vec::new();
        reply.encode_at(minor, &mut buf);
        prop_assert_eq!(
            decode_reply_at(Command::ListSessions, minor, &buf).unwrap(),
            Decoded::Done { msg: reply.clone(), used: buf.len() }
        );
        // Every prefix is incomplete and asks for no more than the whole reply.
        for k in 0..buf.len() {
            match decode_reply_at(Command::ListSessions, minor, &buf[..k]).unwrap() {
                Decoded::Incomplete { needed } => prop_assert!(needed > k && needed <= buf.len()),
                done => prop_assert!(false, "prefix {} decoded as {:?}", k, done),
            }
        }
    }

    #[test]
    fn session_record_2_15_length(s in session_2_15()) {
        let mut buf = Vec::new();
        s.encode_2_15(&mut buf);
        prop_assert_eq!(buf.len(), s.len_2_15());
        prop_assert_eq!(&buf[28..32], &s.trace_format.to_live().to_be_bytes()[..]);
        prop_assert_eq!(
            SessionRecord::decode_2_15(&buf).unwrap(),
            Decoded::Done { msg: s, used: buf.len() }
        );
    }

    #[test]
    fn below_15_other_replies_are_unchanged((cmd, reply) in reply(), minor in 0u32..15) {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        reply.encode(&mut a);
        reply.encode_at(minor, &mut b);
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(decode_reply_at(cmd, minor, &a).unwrap(), decode_reply(cmd, &a).unwrap());
    }

    #[test]
    fn arbitrary_2_15_lists_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = decode_reply_at(Command::ListSessions, 15, &bytes);
        let _ = SessionRecord::decode_2_15(&bytes);
    }

    #[test]
    fn stream_records_round_trip(s in stream()) {
        let mut buf = Vec::new();
        s.encode(&mut buf);
        prop_assert_eq!(buf.len(), STREAM_RECORD_LEN);
        prop_assert_eq!(StreamRecord::decode(&buf).unwrap(), s);
    }

    #[test]
    fn garbage_after_nul_is_ignored(s in session(), garbage in any::<u8>()) {
        let mut buf = Vec::new();
        s.encode(&mut buf);
        // Fill the padding of the hostname field after its NUL with non-zero bytes.
        for b in &mut buf[20 + s.hostname.len() + 1..84] {
            *b = garbage | 1;
        }
        prop_assert_eq!(SessionRecord::decode(&buf).unwrap(), s);
    }

    #[test]
    fn arbitrary_bytes_never_panic(cmd in 0u32..12, bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = decode_request(&bytes);
        let _ = decode_reply(cmd, &bytes);
        let _ = CommandHeader::decode(&bytes);
        let _ = IndexReply::decode(&bytes);
        let _ = PacketReplyHead::decode(&bytes);
        let _ = MetadataReplyHead::decode(&bytes);
        let _ = ConnectReply::decode(&bytes);
        let _ = SessionRecord::decode(&bytes);
        let _ = StreamRecord::decode(&bytes);
    }

    #[test]
    fn arbitrary_request_payloads_never_panic(cmd in 1u32..=9, payload in any::<[u8; 20]>()) {
        let c = Command::try_from(cmd).unwrap();
        let mut buf = Vec::new();
        CommandHeader::for_command(c).encode(&mut buf);
        buf.extend_from_slice(&payload[..c.payload_len()]);
        // Ok or a typed error for out-of-domain enum values; never a panic.
        if let Err(e) = decode_request(&buf) {
            prop_assert!(matches!(e, DecodeError::InvalidValue { .. }), "{:?}", e);
        }
    }
}
