//! Control-port replies: the first byte picks the command answered, the second the minor
//! (mod 18). A
//! decoded reply must re-encode to exactly the bytes it was decoded from, and every shorter
//! prefix must be incomplete or an error.

#![no_main]

use libfuzzer_sys::fuzz_target;
use trelay_proto::lttng::relayd::{decode_reply, CommandKind, ProtocolMinor};
use trelay_proto::Decoded;

fuzz_target!(|data: &[u8]| {
    let [kind, minor, wire @ ..] = data else {
        return;
    };
    let all = CommandKind::ALL;
    let cmd = all[usize::from(*kind) % all.len()];
    let minor = ProtocolMinor(u32::from(*minor % 18));
    let Ok(Decoded::Done { msg, used }) = decode_reply(cmd, minor, wire) else {
        return;
    };
    let mut again = Vec::new();
    msg.encode(minor, &mut again);
    assert_eq!(again, &wire[..used]);
    assert_eq!(msg.encoded_len(minor), used);
    for cut in 0..used {
        if let Ok(Decoded::Done { .. }) = decode_reply(cmd, minor, &wire[..cut]) {
            panic!("prefix of {cut} bytes decoded as a whole reply");
        }
    }
});
