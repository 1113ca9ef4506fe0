//! Hostile 2.15-shaped CREATE_SESSION payloads: the trace format between the 2.11 fixed part and
//! the names, out of range or missing, and names whose lengths disagree with the bytes.

use super::hostile::cmd;
use trelay_proto::lttng::relayd::{Command, CreateSession, ProtocolMinor};
use trelay_proto::{DecodeError, TraceFormat};

const M15: ProtocolMinor = ProtocolMinor(15);
const M14: ProtocolMinor = ProtocolMinor(14);

/// A 2.15 CREATE_SESSION payload: the 59-byte fixed part with `lens`, `format`, then `tail`.
fn create_2_15(lens: [u32; 3], format: u32, tail: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    for l in lens {
        p.extend_from_slice(&l.to_be_bytes());
    }
    p.extend_from_slice(&[0; 4]); // live timer
    p.extend_from_slice(&[0, 0]); // snapshot, name contains creation time
    p.extend_from_slice(&[7; 16]); // uuid
    p.extend_from_slice(&[0; 8 + 8 + 1 + 8]); // ids, time, chunk
    p.extend_from_slice(&format.to_be_bytes());
    assert_eq!(p.len(), 63);
    p.extend_from_slice(tail);
    p
}

#[test]
fn both_formats_decode_at_15() {
    for (v, f) in [(1, TraceFormat::Ctf1_8), (2, TraceFormat::Ctf2)] {
        match cmd(2, &create_2_15([2, 3, 1], v, b"s\0vm\0\0"), M15) {
            Ok(Command::CreateSession(CreateSession {
                session_name,
                hostname,
                base_path,
                trace_format,
                ..
            })) => {
                assert_eq!((session_name.as_str(), hostname.as_str()), ("s", "vm"));
                assert_eq!(base_path.as_deref(), Some(""));
                assert_eq!(trace_format, f);
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn trace_format_out_of_range_is_invalid() {
    for v in [0, 3, 0x100, u32::MAX] {
        assert_eq!(
            cmd(2, &create_2_15([2, 3, 1], v, b"s\0vm\0\0"), M15),
            Err(DecodeError::InvalidValue {
                field: "trace format",
                value: u64::from(v)
            }),
            "{v}"
        );
    }
}

#[test]
fn a_2_11_payload_at_15_is_refused() {
    // A sender that announced 15 but sends the 2.11 layout: the first 4 bytes of the names are
    // taken as the trace format, and the lengths no longer add up.
    let mut p = create_2_15([2, 3, 0], 1, b"");
    p.truncate(59);
    p.extend_from_slice(b"s\0vm\0");
    assert!(cmd(2, &p, M15).is_err());
    // The same 2.15 payload at 14: four bytes too many for its names.
    let p = create_2_15([2, 3, 1], 2, b"s\0vm\0\0");
    assert!(matches!(
        cmd(2, &p, M14),
        Err(DecodeError::BadLength { .. }) | Err(_)
    ));
}

#[test]
fn inconsistent_name_lengths_are_errors() {
    // Lengths pointing past the payload.
    assert!(matches!(
        cmd(2, &create_2_15([200, 3, 1], 2, b"s\0vm\0\0"), M15),
        Err(DecodeError::PastEnd { .. })
    ));
    // Lengths shorter than the bytes: trailing bytes.
    assert!(matches!(
        cmd(2, &create_2_15([2, 3, 0], 2, b"s\0vm\0\0"), M15),
        Err(DecodeError::BadLength { .. })
    ));
    // A length that splits a name: the NUL is not where it says.
    assert!(matches!(
        cmd(2, &create_2_15([3, 2, 1], 2, b"s\0vm\0\0"), M15),
        Err(DecodeError::Unterminated { .. })
    ));
    // Lengths over the caps, whatever follows.
    for (lens, field) in [
        ([256, 3, 1], "session name"),
        ([2, 257, 1], "hostname"),
        ([2, 3, 4097], "base path"),
        ([u32::MAX, u32::MAX, u32::MAX], "session name"),
    ] {
        assert!(
            matches!(cmd(2, &create_2_15(lens, 2, b"s\0vm\0\0"), M15), Err(DecodeError::TooLong { field: f, .. }) if f == field),
            "{lens:?}"
        );
    }
    // A payload that stops inside the trace format.
    let p = create_2_15([2, 3, 1], 2, b"");
    assert!(cmd(2, &p[..61], M15).is_err());
}
