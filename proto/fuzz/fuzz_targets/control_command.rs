//! Control-port commands: header, then payload, at a minor chosen by the first input byte
//! (mod 18: every layout up to 2.15's CREATE_SESSION with its trace format, and beyond).
//! Whatever decodes must encode to bytes that decode to the same command.

#![no_main]

use libfuzzer_sys::fuzz_target;
use trelay_proto::lttng::relayd::{decode_command, ControlHeader, ProtocolMinor};
use trelay_proto::Decoded;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, wire)) = data.split_first() else {
        return;
    };
    let minor = ProtocolMinor(u32::from(selector % 18));
    let Ok(Decoded::Done { msg: header, used }) = ControlHeader::decode(wire) else {
        return;
    };
    let Some(payload) = wire.get(used..).and_then(|p| p.get(..header.payload_len())) else {
        return;
    };
    let Ok(cmd) = decode_command(&header, payload, minor) else {
        return;
    };
    let mut again = Vec::new();
    cmd.encode(minor, &mut again);
    assert_eq!(again.len(), 24 + cmd.payload_len(minor));
    let Ok(Decoded::Done { msg: h2, used: 24 }) = ControlHeader::decode(&again) else {
        panic!("re-encoded header does not decode");
    };
    let back = decode_command(&h2, &again[24..], minor).expect("re-encoded command decodes");
    assert_eq!(back, cmd);
});
