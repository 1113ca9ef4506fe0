//! Property and hostile-input tests for the live protocol codecs: every request, reply and record
//! round-trips, prefixes are reported incomplete, arbitrary bytes never panic, and hostile sizes,
//! strings and enum values are refused with typed errors.

use proptest::prelude::*;
use trelay_proto::lttng::live::records::{HOSTNAME_LEN, NAME_LEN, PATH_LEN};
use trelay_proto::lttng::live::{
    decode_reply, decode_request, AttachStatus, Command, CommandHeader, ConnectReply,
    ConnectRequest, ConnectionType, CreateSessionStatus, DetachStatus, GetMetadataStatus,
    GetPacketStatus, IndexReply, MetadataReplyHead, NewStreamsStatus, NextIndexStatus,
    PacketReplyHead, Seek, SessionRecord, StreamRecord, ViewerFlags, ViewerReply, ViewerRequest,
    MAX_METADATA_LEN, MAX_PACKET_LEN, MAX_RECORDS, SESSION_RECORD_LEN, STREAM_RECORD_LEN,
};
use trelay_proto::{DecodeError, Decoded};

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

// ---------- hostile inputs ----------

fn header(data_size: u64, cmd: u32) -> Vec<u8> {
    let mut buf = Vec::new();
    CommandHeader {
        data_size,
        cmd,
        cmd_version: 0,
    }
    .encode(&mut buf);
    buf
}

#[test]
fn unknown_commands_are_typed_errors() {
    for cmd in [0, 10, 11, 0x0100_0000, u32::MAX] {
        assert_eq!(
            decode_request(&header(0, cmd)),
            Err(DecodeError::UnknownCommand(cmd))
        );
        // The reply to an unknown command is the 4-byte error code.
        let reply = decode_reply(cmd, &[0, 0, 0, 11]).unwrap();
        assert_eq!(
            reply,
            Decoded::Done {
                msg: ViewerReply::UnknownCommand { code: 11 },
                used: 4
            }
        );
    }
}

#[test]
fn data_size_must_match_the_command() {
    for (cmd, bad) in [
        (1, 19),
        (1, 21),
        (2, 1),
        (4, 0),
        (4, u64::MAX),
        (5, 8),
        (8, 16),
    ] {
        let mut buf = header(bad, cmd);
        buf.resize(64, 0);
        assert!(
            matches!(decode_request(&buf), Err(DecodeError::BadLength { actual, .. }) if actual == bad),
            "cmd {cmd} data_size {bad}"
        );
    }
}

#[test]
fn out_of_domain_enums_in_requests() {
    let mut connect = header(20, 1);
    connect.extend_from_slice(&[0xff; 8]);
    connect.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0, 3]);
    assert_eq!(
        decode_request(&connect),
        Err(DecodeError::InvalidValue {
            field: "connect.type",
            value: 3
        })
    );
    let mut attach = header(20, 3);
    attach.extend_from_slice(&[0; 16]);
    attach.extend_from_slice(&[0, 0, 0, 0]);
    assert_eq!(
        decode_request(&attach),
        Err(DecodeError::InvalidValue {
            field: "attach.seek",
            value: 0
        })
    );
}

#[test]
fn unknown_statuses_are_typed_errors() {
    let status = |v: u32| v.to_be_bytes().to_vec();
    for cmd in [Command::CreateSession, Command::DetachSession] {
        assert!(matches!(
            decode_reply(cmd, &status(0)),
            Err(DecodeError::InvalidValue { value: 0, .. })
        ));
    }
    let mut attach = status(7);
    attach.extend_from_slice(&[0; 4]);
    assert!(matches!(
        decode_reply(Command::AttachSession, &attach),
        Err(DecodeError::InvalidValue {
            field: "attach.status",
            value: 7
        })
    ));
    assert!(matches!(
        decode_reply(Command::GetNewStreams, &attach),
        Err(DecodeError::InvalidValue {
            field: "new_streams.status",
            value: 7
        })
    ));
    // The byte-swapped ERR status 2.13 sends on one error path (0x04000000).
    let mut index = vec![0; 56];
    index.extend_from_slice(&[4, 0, 0, 0, 0, 0, 0, 0]);
    assert!(matches!(
        decode_reply(Command::GetNextIndex, &index),
        Err(DecodeError::InvalidValue {
            field: "index.status",
            value: 0x0400_0000
        })
    ));
    let packet = [0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0];
    assert!(matches!(
        decode_reply(Command::GetPacket, &packet),
        Err(DecodeError::InvalidValue {
            field: "packet.status",
            value: 9
        })
    ));
    let metadata = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    assert!(matches!(
        decode_reply(Command::GetMetadata, &metadata),
        Err(DecodeError::InvalidValue {
            field: "metadata.status",
            value: 0
        })
    ));
}

#[test]
fn record_counts_are_capped_before_allocating() {
    for count in [MAX_RECORDS + 1, u32::MAX - 1, u32::MAX] {
        let buf = count.to_be_bytes();
        assert!(matches!(
            decode_reply(Command::ListSessions, &buf),
            Err(DecodeError::TooLong { .. })
        ));
        let mut streams = 1u32.to_be_bytes().to_vec();
        streams.extend_from_slice(&count.to_be_bytes());
        assert!(matches!(
            decode_reply(Command::AttachSession, &streams),
            Err(DecodeError::TooLong { .. })
        ));
    }
    // At the cap, the decoder waits for the whole reply instead of allocating.
    let buf = MAX_RECORDS.to_be_bytes();
    assert_eq!(
        decode_reply(Command::ListSessions, &buf),
        Ok(Decoded::Incomplete {
            needed: 4 + MAX_RECORDS as usize * SESSION_RECORD_LEN
        })
    );
}

#[test]
fn data_lengths_are_capped() {
    let packet = |len: u32| {
        let mut b = 1u32.to_be_bytes().to_vec();
        b.extend_from_slice(&len.to_be_bytes());
        b.extend_from_slice(&[0; 4]);
        b
    };
    for len in [MAX_PACKET_LEN as u32 + 1, u32::MAX] {
        assert!(matches!(
            decode_reply(Command::GetPacket, &packet(len)),
            Err(DecodeError::TooLong {
                field: "packet.len",
                ..
            })
        ));
    }
    assert_eq!(
        decode_reply(Command::GetPacket, &packet(MAX_PACKET_LEN as u32)),
        Ok(Decoded::Incomplete {
            needed: 12 + MAX_PACKET_LEN as usize
        })
    );
    let metadata = |len: u64| {
        let mut b = len.to_be_bytes().to_vec();
        b.extend_from_slice(&1u32.to_be_bytes());
        b
    };
    for len in [
        MAX_METADATA_LEN + 1,
        u64::from(u32::MAX),
        u64::MAX - 11,
        u64::MAX,
    ] {
        assert!(matches!(
            decode_reply(Command::GetMetadata, &metadata(len)),
            Err(DecodeError::TooLong {
                field: "metadata.len",
                ..
            })
        ));
    }
}

#[test]
fn fixed_strings_without_nul_or_utf8_are_refused() {
    let mut rec = Vec::new();
    SessionRecord::default().encode(&mut rec);
    rec[20..84].fill(b'a');
    assert_eq!(
        SessionRecord::decode(&rec),
        Err(DecodeError::Unterminated {
            field: "session.hostname"
        })
    );
    let mut rec = Vec::new();
    StreamRecord::default().encode(&mut rec);
    rec[4116..].fill(b'c');
    assert_eq!(
        StreamRecord::decode(&rec),
        Err(DecodeError::Unterminated {
            field: "stream.channel_name"
        })
    );
    rec[4116] = 0xff;
    rec[4117] = 0;
    assert_eq!(
        StreamRecord::decode(&rec),
        Err(DecodeError::NotUtf8 {
            field: "stream.channel_name"
        })
    );
    // A bad record inside a reply fails the whole reply.
    let mut reply = vec![0, 0, 0, 1, 0, 0, 0, 1];
    reply.extend_from_slice(&rec);
    assert!(decode_reply(Command::GetNewStreams, &reply).is_err());
}

#[test]
fn encoders_truncate_long_text_to_fit() {
    let s = SessionRecord {
        hostname: "h".repeat(100),
        ..SessionRecord::default()
    };
    let mut buf = Vec::new();
    s.encode(&mut buf);
    assert_eq!(buf.len(), SESSION_RECORD_LEN);
    assert_eq!(
        SessionRecord::decode(&buf).unwrap().hostname,
        "h".repeat(HOSTNAME_LEN - 1)
    );
}

#[test]
fn flags() {
    let f = ViewerFlags::NEW_METADATA.with(ViewerFlags::NEW_STREAM);
    assert_eq!(f, ViewerFlags(3));
    assert!(f.contains(ViewerFlags::NEW_STREAM) && f.contains(ViewerFlags::NEW_METADATA));
    assert!(!ViewerFlags::NEW_METADATA.contains(ViewerFlags::NEW_STREAM));
}
