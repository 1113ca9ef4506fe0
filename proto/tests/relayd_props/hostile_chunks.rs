//! Hostile trace chunk and rotation commands, one named case each, with the exact typed error
//! expected.

use super::hostile::{cmd, invalid, M13};
use trelay_proto::lttng::relayd::{Command, RotatePosition, RotateStreams, MAX_ROTATE_POSITIONS};
use trelay_proto::{DecodeError, StreamId};

#[test]
fn rotate_streams_huge_count_is_too_long() {
    let mut p = u32::MAX.to_be_bytes().to_vec();
    p.extend_from_slice(&[0; 16]);
    assert_eq!(
        cmd(18, &p, M13),
        Err(DecodeError::TooLong {
            field: "rotate stream count",
            value: u64::from(u32::MAX),
            max: u64::from(MAX_ROTATE_POSITIONS)
        })
    );
    p[..4].copy_from_slice(&(MAX_ROTATE_POSITIONS + 1).to_be_bytes());
    assert!(matches!(cmd(18, &p, M13), Err(DecodeError::TooLong { .. })));
}

#[test]
fn rotate_streams_count_must_match_the_length() {
    // Two positions announced, one present, 20-byte header.
    let mut p = vec![0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    p.extend_from_slice(&[0; 16]);
    let err = cmd(18, &p, M13).unwrap_err();
    assert!(
        matches!(
            err,
            DecodeError::BadLength {
                expected: 52,
                actual: 36,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(matches!(
        cmd(18, &[0, 0], M13),
        Err(DecodeError::PastEnd { .. })
    ));
}

#[test]
fn rotate_streams_header_forms_decode_alike() {
    let position = [[0u8, 0, 0, 0, 0, 0, 0, 9], [0, 0, 0, 0, 0, 0, 0, 4]].concat();
    let chunk = 5u64.to_be_bytes();
    let form = |padding: &[u8]| [&[0, 0, 0, 1, 1][..], padding, &chunk, &position].concat();
    let expected = Command::RotateStreams(RotateStreams {
        new_chunk_id: Some(5),
        positions: vec![RotatePosition {
            stream_id: StreamId(9),
            rotate_at_seq_num: 4,
        }],
    });
    for padding in [&[][..], &[0xaa; 3], &[0xdf; 7]] {
        let p = form(padding);
        assert_eq!(
            cmd(18, &p, M13),
            Ok(expected.clone()),
            "{} padding bytes",
            padding.len()
        );
    }
    let mut bad_flag = form(&[]);
    bad_flag[4] = 2;
    assert_eq!(cmd(18, &bad_flag, M13), invalid("new chunk id is_set", 2));
}

#[test]
fn chunk_commands_reject_bad_values() {
    let mut close = vec![0; 21];
    close[16] = 1;
    close[20] = 3;
    assert_eq!(cmd(20, &close, M13), invalid("close command", 3));
    close[16] = 2;
    assert_eq!(cmd(20, &close, M13), invalid("close command is_set", 2));
    close[16] = 0; // unset: the value is ignored
    assert!(
        matches!(cmd(20, &close, M13), Ok(Command::CloseTraceChunk(c)) if c.close_command.is_none())
    );

    let create = |len: u32, name: &[u8]| [&[0u8; 16][..], &len.to_be_bytes(), name].concat();
    let name = [vec![b'n'; 254], vec![0]].concat();
    assert!(cmd(19, &create(255, &name), M13).is_ok());
    assert_eq!(
        cmd(19, &create(256, &[b'n'; 256]), M13),
        Err(DecodeError::TooLong {
            field: "chunk override name",
            value: 256,
            max: 255
        })
    );
    assert_eq!(
        cmd(19, &create(u32::MAX, &[]), M13),
        Err(DecodeError::TooLong {
            field: "chunk override name",
            value: u64::from(u32::MAX),
            max: 255
        })
    );
}
