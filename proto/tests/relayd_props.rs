//! Property tests for the control and data port codecs: every command and reply round-trips at
//! every minor whose layout carries it, prefixes never decode as whole messages, and arbitrary
//! bytes never panic a decoder.

use proptest::prelude::*;
use trelay_proto::lttng::relayd::{
    decode_command, decode_framed, decode_reply, Command, CommandKind, ControlHeader, DataHeader,
    MetadataHeader, ProtocolMinor, SendMetadata, CONTROL_HEADER_LEN, DATA_HEADER_LEN,
};
use trelay_proto::{DecodeError, Decoded, NetSeq, StreamId};

#[path = "relayd_props/hostile.rs"]
mod hostile;
#[path = "relayd_props/hostile_2_15.rs"]
mod hostile_2_15;
#[path = "relayd_props/hostile_chunks.rs"]
mod hostile_chunks;
#[path = "relayd_props/hostile_replies.rs"]
mod hostile_replies;
#[path = "relayd_props/strategies.rs"]
mod strategies;

use strategies::{minor, minor_and_command, reply};

fn encode(cmd: &Command<'_>, minor: ProtocolMinor) -> Vec<u8> {
    let mut v = Vec::new();
    cmd.encode(minor, &mut v);
    v
}

/// Header then command, from a whole encoded message.
fn decode_message(buf: &[u8], minor: ProtocolMinor) -> Result<Command<'_>, DecodeError> {
    let Decoded::Done { msg: h, used } = ControlHeader::decode(buf)? else {
        panic!("header incomplete");
    };
    assert_eq!(used, CONTROL_HEADER_LEN);
    decode_command(&h, &buf[used..], minor)
}

proptest! {
    #[test]
    fn commands_round_trip((minor, cmd) in minor_and_command()) {
        let wire = encode(&cmd, minor);
        prop_assert_eq!(wire.len(), CONTROL_HEADER_LEN + cmd.payload_len(minor));
        prop_assert_eq!(decode_message(&wire, minor)?, cmd);
    }

    #[test]
    fn send_metadata_round_trips(id: u64, padding: u32, data in prop::collection::vec(any::<u8>(), 0..300)) {
        let cmd = Command::SendMetadata(SendMetadata { stream_id: StreamId(id), padding_size: padding, data: &data });
        let wire = encode(&cmd, ProtocolMinor::CURRENT);
        prop_assert_eq!(decode_message(&wire, ProtocolMinor::CURRENT)?, cmd);
        let Decoded::Done { msg, used } = MetadataHeader::decode(&wire[CONTROL_HEADER_LEN..]) else {
            panic!("sub-header incomplete");
        };
        prop_assert_eq!((msg.stream_id, msg.padding_size, used), (StreamId(id), padding, 12));
        let data_size = (wire.len() - CONTROL_HEADER_LEN) as u64;
        prop_assert_eq!(MetadataHeader::content_len(data_size)?, data.len() as u64);
    }

    /// A payload cut short is an error; so is a cut payload under a header that agrees with the
    /// cut, except where the layout allows it: SEND_METADATA (free length) and ROTATE_STREAMS cut
    /// by exactly 4 or 7 bytes (its 16- and 13-byte header forms).
    #[test]
    fn truncated_commands_are_errors((minor, cmd) in minor_and_command(), cut_seed: usize) {
        let wire = encode(&cmd, minor);
        let payload = &wire[CONTROL_HEADER_LEN..];
        prop_assume!(!payload.is_empty());
        let cut = cut_seed % payload.len();
        let mut header = cmd.header(minor);
        prop_assert!(decode_command(&header, &payload[..cut], minor).is_err());
        header.data_size = cut as u64;
        let other_rotate_form = cmd.kind() == CommandKind::RotateStreams && [4, 7].contains(&(payload.len() - cut));
        prop_assume!(!other_rotate_form);
        prop_assert!(decode_command(&header, &payload[..cut], minor).is_err(), "cut {} of {:?}", cut, cmd.kind());
        for short in 0..CONTROL_HEADER_LEN {
            prop_assert_eq!(ControlHeader::decode(&wire[..short]), Ok(Decoded::Incomplete { needed: CONTROL_HEADER_LEN }));
        }
        // As a byte stream, every prefix is incomplete, and the whole message is one Done.
        for short in [cut_seed % CONTROL_HEADER_LEN, CONTROL_HEADER_LEN + cut] {
            match decode_framed(&wire[..short], minor)? {
                Decoded::Incomplete { needed } => prop_assert!(needed > short && needed <= wire.len()),
                Decoded::Done { .. } => panic!("prefix {short} of {} decoded", wire.len()),
            }
        }
        prop_assert_eq!(decode_framed(&wire, minor)?, Decoded::Done { msg: cmd, used: wire.len() });
    }

    #[test]
    fn replies_round_trip((minor, (kind, reply)) in minor().prop_flat_map(|m| (Just(m), reply(m))), tail in prop::collection::vec(any::<u8>(), 0..8)) {
        let mut wire = Vec::new();
        reply.encode(minor, &mut wire);
        prop_assert_eq!(wire.len(), reply.encoded_len(minor));
        let len = wire.len();
        for cut in 0..len {
            match decode_reply(kind, minor, &wire[..cut]) {
                Ok(Decoded::Incomplete { needed }) => prop_assert!(needed > cut && needed <= len),
                other => panic!("prefix {cut}/{len} of {reply:?}: {other:?}"),
            }
        }
        wire.extend_from_slice(&tail);
        prop_assert_eq!(decode_reply(kind, minor, &wire)?, Decoded::Done { msg: reply, used: len });
    }

    #[test]
    fn data_headers_round_trip(circuit: u64, id: u64, seq: u64, size: u32, padding: u32) {
        let h = DataHeader { circuit_id: circuit, stream_id: StreamId(id), net_seq: NetSeq(seq), data_size: size, padding_size: padding };
        let mut wire = Vec::new();
        h.encode(&mut wire);
        prop_assert_eq!(&wire[..], &h.to_bytes()[..]);
        prop_assert_eq!(DataHeader::decode(&wire), Decoded::Done { msg: h, used: DATA_HEADER_LEN });
        prop_assert_eq!(h.total_len(), u64::from(size) + u64::from(padding));
        for cut in 0..DATA_HEADER_LEN {
            prop_assert_eq!(DataHeader::decode(&wire[..cut]), Decoded::Incomplete { needed: DATA_HEADER_LEN });
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_command_decoders(minor in minor(), cmd: u32, size: usize, bytes in prop::collection::vec(any::<u8>(), 0..700)) {
        let pick = CommandKind::ALL[cmd as usize % CommandKind::ALL.len()].to_u32();
        // Often cut the bytes to a size some layout has, so decoding goes past the length checks.
        let sizes = [0, 8, 13, 16, 20, 21, 36, 52, 64, 80, 100, 327];
        let len = sizes.get(size % 24).map_or(bytes.len(), |&s| s.min(bytes.len()));
        let bytes = &bytes[..len];
        for number in [cmd, pick] {
            let header = ControlHeader { circuit_id: 0, data_size: bytes.len() as u64, cmd: number, cmd_version: 0 };
            if let Ok(c) = decode_command(&header, bytes, minor) {
                // Whatever decodes re-encodes to something that decodes to the same command.
                let wire = encode(&c, minor);
                prop_assert_eq!(decode_message(&wire, minor)?, c);
            }
        }
        let _ = ControlHeader::decode(bytes);
        let _ = MetadataHeader::decode(bytes);
        let _ = DataHeader::decode(bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic_reply_decoders(minor in minor(), k: usize, bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let kind = CommandKind::ALL[k % CommandKind::ALL.len()];
        if let Ok(Decoded::Done { msg, used }) = decode_reply(kind, minor, &bytes) {
            let mut again = Vec::new();
            msg.encode(minor, &mut again);
            prop_assert_eq!(&again[..], &bytes[..used]);
        }
    }
}
