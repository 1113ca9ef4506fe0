//! Hostile inputs, one named case each, with the exact typed error expected.

use trelay_proto::lttng::relayd::{
    decode_command, decode_reply, Command, CommandKind, ControlHeader, CreateSession, DataHeader,
    MetadataHeader, ProtocolMinor, MAX_CONTROL_PAYLOAD,
};
use trelay_proto::{DecodeError, Decoded};

pub(crate) const M13: ProtocolMinor = ProtocolMinor(13);

/// Decodes `payload` as command number `cmd` under a header that frames it exactly.
pub(crate) fn cmd(
    cmd: u32,
    payload: &[u8],
    minor: ProtocolMinor,
) -> Result<Command<'_>, DecodeError> {
    let header = ControlHeader {
        circuit_id: 0,
        data_size: payload.len() as u64,
        cmd,
        cmd_version: 0,
    };
    decode_command(&header, payload, minor)
}

/// The decoding error naming `field` and its out-of-domain `value`.
pub(crate) fn invalid<T>(field: &'static str, value: u64) -> Result<T, DecodeError> {
    Err(DecodeError::InvalidValue { field, value })
}

/// A 2.11 CREATE_SESSION payload with the given length fields and trailing bytes.
fn create_session(lens: [u32; 3], tail: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    for l in lens {
        p.extend_from_slice(&l.to_be_bytes());
    }
    p.extend_from_slice(&[0; 4]); // live timer
    p.extend_from_slice(&[0, 0]); // snapshot, name contains creation time
    p.extend_from_slice(&[7; 16]); // uuid
    p.extend_from_slice(&[0; 8 + 8 + 1 + 8]); // ids, time, chunk
    assert_eq!(p.len(), 59);
    p.extend_from_slice(tail);
    p
}

fn add_stream(lens: [u32; 2], tail: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&lens[0].to_be_bytes());
    p.extend_from_slice(&lens[1].to_be_bytes());
    p.extend_from_slice(&[0; 24]);
    p.extend_from_slice(tail);
    p
}

fn header_bytes(data_size: u64, cmd: u32) -> Vec<u8> {
    let mut v = Vec::new();
    ControlHeader {
        circuit_id: 0,
        data_size,
        cmd,
        cmd_version: 0,
    }
    .encode(&mut v);
    v
}

#[test]
fn header_data_size_over_128_mib_is_too_long() {
    for size in [MAX_CONTROL_PAYLOAD + 1, u64::MAX, u64::MAX / 2] {
        assert_eq!(
            ControlHeader::decode(&header_bytes(size, 6)),
            Err(DecodeError::TooLong {
                field: "control header data_size",
                value: size,
                max: MAX_CONTROL_PAYLOAD
            })
        );
    }
    let ok = ControlHeader::decode(&header_bytes(MAX_CONTROL_PAYLOAD, 6)).unwrap();
    assert!(matches!(ok, Decoded::Done { used: 24, .. }));
}

#[test]
fn unknown_commands_are_typed_errors() {
    for n in [0, 4, 12, 14, 15, 23, 10_000, u32::MAX] {
        assert_eq!(cmd(n, &[], M13), Err(DecodeError::UnknownCommand(n)));
        let h = ControlHeader::decode(&header_bytes(0, n))
            .unwrap()
            .message()
            .unwrap();
        assert_eq!(h.kind(), Err(DecodeError::UnknownCommand(n)));
    }
}

#[test]
fn commands_newer_than_the_minor_are_not_in_version() {
    let cases = [
        (13, 3),
        (16, 3),
        (17, 7),
        (18, 10),
        (19, 10),
        (20, 10),
        (21, 10),
    ];
    for (number, minor) in cases {
        assert_eq!(
            cmd(number, &[0; 80], ProtocolMinor(minor)),
            Err(DecodeError::NotInVersion { cmd: number, minor }),
            "command {number}"
        );
    }
    // GET_CONFIGURATION is answered at any minor, as LTTng's relay does.
    assert!(cmd(22, &[0; 8], ProtocolMinor(0)).is_ok());
}

#[test]
fn payload_not_matching_data_size_is_bad_length() {
    let header = ControlHeader::new(CommandKind::Version, 8);
    let err = decode_command(&header, &[0; 7], M13).unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::BadLength {
                expected: 8,
                actual: 7,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn session_name_length_near_u32_max_is_too_long() {
    for len in [256, u32::MAX, u32::MAX - 1] {
        assert_eq!(
            cmd(2, &create_session([len, 1, 1], b"a\0"), M13),
            Err(DecodeError::TooLong {
                field: "session name",
                value: u64::from(len),
                max: 255
            })
        );
    }
    assert_eq!(
        cmd(2, &create_session([2, 257, 1], b"a\0"), M13),
        Err(DecodeError::TooLong {
            field: "hostname",
            value: 257,
            max: 256
        })
    );
    assert_eq!(
        cmd(2, &create_session([2, 1, 4097], b"a\0\0"), M13),
        Err(DecodeError::TooLong {
            field: "base path",
            value: 4097,
            max: 4096
        })
    );
}

#[test]
fn declared_length_past_the_payload_is_past_end() {
    assert_eq!(
        cmd(2, &create_session([200, 1, 1], b"a\0\0\0"), M13),
        Err(DecodeError::PastEnd {
            field: "session name",
            declared: 200,
            available: 4
        })
    );
    assert_eq!(
        cmd(1, &add_stream([11, 255], b"channel0_0\0ust\0"), M13),
        Err(DecodeError::PastEnd {
            field: "pathname",
            declared: 255,
            available: 4
        })
    );
}

#[test]
fn strings_without_nul_are_unterminated() {
    assert_eq!(
        cmd(2, &create_session([2, 1, 1], b"ab\0"), M13),
        Err(DecodeError::Unterminated {
            field: "session name"
        })
    );
    assert_eq!(
        cmd(2, &create_session([0, 1, 1], b"\0\0"), M13),
        Err(DecodeError::Unterminated {
            field: "session name"
        })
    );
    assert_eq!(
        cmd(1, &add_stream([3, 2], b"a\0bcd"), M13),
        Err(DecodeError::Unterminated {
            field: "channel name"
        })
    );
    // 2.4 layout: the fixed 255-byte name field holds no NUL.
    let mut legacy = vec![b'x'; 327];
    legacy[255..].fill(0);
    assert_eq!(
        cmd(2, &legacy, ProtocolMinor(4)),
        Err(DecodeError::Unterminated {
            field: "session name"
        })
    );
    // 2.2 layout: the fixed pathname field holds no NUL.
    let mut legacy = vec![b'p'; 4376];
    legacy[..264].fill(0);
    assert_eq!(
        cmd(1, &legacy, ProtocolMinor(5)),
        Err(DecodeError::Unterminated { field: "pathname" })
    );
}

#[test]
fn trailing_bytes_after_exact_layouts_are_bad_length() {
    let err = cmd(2, &create_session([2, 1, 1], b"a\0\0\0\0"), M13).unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::BadLength {
                expected: 63,
                actual: 64,
                ..
            }
        ),
        "{err:?}"
    );
    for (number, len) in [
        (5, 9),
        (7, 17),
        (8, 15),
        (9, 9),
        (13, 81),
        (13, 64),
        (16, 1),
        (20, 22),
    ] {
        let err = cmd(number, &vec![0; len], M13).unwrap_err();
        assert!(
            matches!(err, DecodeError::BadLength { .. }),
            "command {number}: {err:?}"
        );
    }
    let err = cmd(13, &[0; 80], ProtocolMinor(7)).unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::BadLength {
                expected: 64,
                actual: 80,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn stream_name_and_path_caps() {
    assert_eq!(
        cmd(1, &add_stream([265, 2], &[]), M13),
        Err(DecodeError::TooLong {
            field: "channel name",
            value: 265,
            max: 264
        })
    );
    assert_eq!(
        cmd(1, &add_stream([2, 4097], b"a\0"), M13),
        Err(DecodeError::TooLong {
            field: "pathname",
            value: 4097,
            max: 4096
        })
    );
    let long_path = format!("{}\0", "p".repeat(4095));
    let payload = add_stream([2, 4096], format!("a\0{long_path}").as_bytes());
    let ok = cmd(1, &payload, M13).unwrap();
    assert!(matches!(ok, Command::AddStream(a) if a.pathname.len() == 4095));
}

#[test]
fn boolean_fields_accept_only_zero_and_one() {
    let mut p = create_session([2, 1, 1], b"a\0\0\0");
    p[16] = 7;
    assert_eq!(cmd(2, &p, M13), invalid("snapshot", 7));
    assert_eq!(
        decode_reply(CommandKind::TraceChunkExists, M13, &[0, 0, 0, 10, 2]),
        invalid("trace chunk exists", 2)
    );
}

#[test]
fn send_metadata_shorter_than_its_sub_header_is_an_error() {
    assert!(matches!(
        cmd(6, &[0; 11], M13),
        Err(DecodeError::PastEnd { .. })
    ));
    assert!(matches!(
        MetadataHeader::content_len(11),
        Err(DecodeError::BadLength { .. })
    ));
    assert_eq!(MetadataHeader::content_len(12), Ok(0));
    assert_eq!(
        MetadataHeader::decode(&[0; 11]),
        Decoded::Incomplete { needed: 12 }
    );
}

#[test]
fn data_header_sizes_add_in_64_bits() {
    let mut b = [0u8; 32];
    b[24..].fill(0xff);
    let h = DataHeader::from_bytes(&b);
    assert_eq!(h.total_len(), 2 * u64::from(u32::MAX));
}

#[test]
fn legacy_create_session_is_empty() {
    assert_eq!(
        cmd(2, &[], ProtocolMinor(3)),
        Ok(Command::CreateSession(CreateSession::default()))
    );
    assert!(matches!(
        cmd(2, &[0], ProtocolMinor(3)),
        Err(DecodeError::BadLength { .. })
    ));
}
