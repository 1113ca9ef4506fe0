//! Hostile-input tests for the live protocol codecs: unknown commands and statuses, mismatched
//! sizes, record counts and data lengths near the integer limits, fixed text fields without NUL.

use trelay_proto::lttng::live::records::HOSTNAME_LEN;
use trelay_proto::lttng::live::{
    decode_reply, decode_reply_at, decode_request, Command, CommandHeader, SessionRecord,
    StreamRecord, ViewerFlags, ViewerReply, MAX_METADATA_LEN, MAX_PACKET_LEN, MAX_RECORDS,
    SESSION_RECORD_LEN,
};
use trelay_proto::{DecodeError, Decoded};

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
    // The byte-swapped ERR status 2.13 sends on one error path (0x04000000).
    let mut index = vec![0; 56];
    index.extend_from_slice(&[4, 0, 0, 0, 0, 0, 0, 0]);
    let packet = [0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0];
    let metadata = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    for (cmd, reply, field, value) in [
        (Command::AttachSession, &attach[..], "attach.status", 7),
        (Command::GetNewStreams, &attach[..], "new_streams.status", 7),
        (
            Command::GetNextIndex,
            &index[..],
            "index.status",
            0x0400_0000,
        ),
        (Command::GetPacket, &packet[..], "packet.status", 9),
        (Command::GetMetadata, &metadata[..], "metadata.status", 0),
    ] {
        assert_eq!(
            decode_reply(cmd, reply),
            Err(DecodeError::InvalidValue { field, value }),
            "{cmd:?}"
        );
    }
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

/// A 2.15 session record with the given lengths, trace format and name bytes.
fn record_2_15(host_len: u32, name_len: u32, format: u32, names: &[u8]) -> Vec<u8> {
    let mut r = Vec::new();
    r.extend_from_slice(&7u64.to_be_bytes());
    r.extend_from_slice(&100_000u32.to_be_bytes());
    r.extend_from_slice(&0u32.to_be_bytes());
    r.extend_from_slice(&3u32.to_be_bytes());
    r.extend_from_slice(&host_len.to_be_bytes());
    r.extend_from_slice(&name_len.to_be_bytes());
    r.extend_from_slice(&format.to_be_bytes());
    r.extend_from_slice(names);
    r
}

fn list_2_15(records: &[Vec<u8>]) -> Vec<u8> {
    let mut b = (records.len() as u32).to_be_bytes().to_vec();
    records.iter().for_each(|r| b.extend_from_slice(r));
    b
}

#[test]
fn session_records_2_15_are_checked() {
    use trelay_proto::TraceFormat;
    let ok = list_2_15(&[record_2_15(2, 1, 1, b"vms")]);
    match decode_reply_at(Command::ListSessions, 15, &ok).unwrap() {
        Decoded::Done {
            msg: ViewerReply::ListSessions(s),
            used,
        } => {
            assert_eq!(used, ok.len());
            assert_eq!(
                (s[0].hostname.as_str(), s[0].session_name.as_str()),
                ("vm", "s")
            );
            assert_eq!(s[0].trace_format, TraceFormat::Ctf2);
        }
        other => panic!("{other:?}"),
    }
    // The same bytes read as a 2.13 list are a short 339-byte record.
    assert!(matches!(
        decode_reply(Command::ListSessions, &ok).unwrap(),
        Decoded::Incomplete { needed: 343 }
    ));
    // A trace format outside the live enumeration (0, 1).
    let bad = list_2_15(&[record_2_15(2, 1, 2, b"vms")]);
    assert_eq!(
        decode_reply_at(Command::ListSessions, 15, &bad),
        Err(DecodeError::InvalidValue {
            field: "session.trace_format",
            value: 2
        })
    );
    // Name lengths over the caps are refused before waiting for the bytes.
    for (h, n, field) in [
        (256, 1, "session.hostname_len"),
        (2, 255, "session.session_name_len"),
        (u32::MAX, u32::MAX, "session.hostname_len"),
    ] {
        let bad = list_2_15(&[record_2_15(h, n, 0, b"")]);
        assert!(
            matches!(decode_reply_at(Command::ListSessions, 15, &bad), Err(DecodeError::TooLong { field: f, .. }) if f == field),
            "{h} {n}"
        );
    }
    // A NUL inside a name, and names that are not UTF-8.
    let nul = list_2_15(&[record_2_15(2, 1, 0, b"v\0s")]);
    assert!(decode_reply_at(Command::ListSessions, 15, &nul).is_err());
    let utf = list_2_15(&[record_2_15(2, 1, 0, b"\xff\xfes")]);
    assert!(matches!(
        decode_reply_at(Command::ListSessions, 15, &utf),
        Err(DecodeError::NotUtf8 { .. })
    ));
    // A huge count with no records behind it: incomplete, nothing allocated for it; over the
    // cap: an error.
    let mut many = 65_536u32.to_be_bytes().to_vec();
    many.extend_from_slice(&record_2_15(2, 1, 0, b"vms"));
    assert!(matches!(
        decode_reply_at(Command::ListSessions, 15, &many).unwrap(),
        Decoded::Incomplete { .. }
    ));
    let over = 65_537u32.to_be_bytes();
    assert!(matches!(
        decode_reply_at(Command::ListSessions, 15, &over),
        Err(DecodeError::TooLong { .. })
    ));
}
