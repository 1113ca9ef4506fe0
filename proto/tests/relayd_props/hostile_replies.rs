//! Hostile or unusual replies, one named case each, with the exact outcome expected.

use super::hostile::{invalid, M13};
use trelay_proto::lttng::relayd::{
    decode_reply, CloseTraceChunkReply, CommandKind, PendingReply, ProtocolMinor, Reply, ReturnCode,
};
use trelay_proto::{DecodeError, Decoded};

#[test]
fn reply_path_lengths_are_capped_before_waiting() {
    for len in [4096u32, u32::MAX] {
        let mut r = vec![0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 10];
        r.extend_from_slice(&len.to_be_bytes());
        assert_eq!(
            decode_reply(CommandKind::CreateSession, M13, &r),
            Err(DecodeError::TooLong {
                field: "session output path",
                value: u64::from(len),
                max: 4095
            })
        );
        let close = [&10u32.to_be_bytes()[..], &len.to_be_bytes()].concat();
        assert!(matches!(
            decode_reply(CommandKind::CloseTraceChunk, M13, &close),
            Err(DecodeError::TooLong {
                field: "closed chunk path",
                ..
            })
        ));
    }
    let close = [&10u32.to_be_bytes()[..], &4095u32.to_be_bytes()].concat();
    assert_eq!(
        decode_reply(CommandKind::CloseTraceChunk, M13, &close),
        Ok(Decoded::Incomplete { needed: 8 + 4095 })
    );
    let close = [&10u32.to_be_bytes()[..], &3u32.to_be_bytes(), b"abc"].concat();
    assert_eq!(
        decode_reply(CommandKind::CloseTraceChunk, M13, &close),
        Err(DecodeError::Unterminated {
            field: "closed chunk path"
        })
    );
}

#[test]
fn failed_close_trace_chunk_reply_has_no_path() {
    let r = [&26u32.to_be_bytes()[..], &0u32.to_be_bytes(), b"next"].concat();
    assert_eq!(
        decode_reply(CommandKind::CloseTraceChunk, M13, &r),
        Ok(Decoded::Done {
            msg: Reply::CloseTraceChunk(CloseTraceChunkReply::Failed {
                ret_code: ReturnCode::NOMEM,
                path_length: 0
            }),
            used: 8
        })
    );
}

#[test]
fn create_session_reply_layout_follows_the_minor() {
    let mut r = vec![0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 10];
    let old = decode_reply(CommandKind::CreateSession, ProtocolMinor(10), &r).unwrap();
    assert!(matches!(old, Decoded::Done { used: 12, .. }));
    assert_eq!(
        decode_reply(CommandKind::CreateSession, M13, &r),
        Ok(Decoded::Incomplete { needed: 16 })
    );
    r.extend_from_slice(&0u32.to_be_bytes());
    assert!(matches!(
        decode_reply(CommandKind::CreateSession, M13, &r),
        Ok(Decoded::Done { used: 16, msg: Reply::CreateSession(s) }) if s.output_path.is_none()
    ));
}

#[test]
fn send_metadata_has_no_reply() {
    assert!(!CommandKind::SendMetadata.expects_reply());
    assert_eq!(
        decode_reply(CommandKind::SendMetadata, M13, &[0; 16]),
        invalid("command without reply", 6)
    );
}

#[test]
fn data_pending_minus_one_is_an_error_code() {
    let Decoded::Done {
        msg: Reply::Pending(p),
        used: 4,
    } = decode_reply(CommandKind::DataPending, M13, &[0xff; 4]).unwrap()
    else {
        panic!("not a pending reply");
    };
    assert_eq!(p, PendingReply::UNKNOWN_STREAM);
    assert!(p.is_error() && !p.is_pending());
    assert!(PendingReply::from_pending(true).is_pending());
}
