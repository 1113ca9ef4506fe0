//! Feeds arbitrary bytes to the live reply decoder; the first byte picks the command answered
//! (its low 7 bits mod 12, including unknown command numbers) and the live minor (high bit set:
//! 15, with 2.15 session records; clear: 13). Every decoded reply must re-encode to something that
//! decodes to the same reply, of the same size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trelay_proto::lttng::live::decode_reply_at;
use trelay_proto::Decoded;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let cmd = u32::from((selector & 0x7f) % 12);
    let minor = if selector & 0x80 != 0 { 15 } else { 13 };
    match decode_reply_at(cmd, minor, body) {
        Ok(Decoded::Done { msg, used }) => {
            assert!(used <= body.len());
            let mut again = Vec::new();
            msg.encode_at(minor, &mut again);
            assert_eq!(again.len(), used);
            assert_eq!(
                decode_reply_at(cmd, minor, &again),
                Ok(Decoded::Done { msg, used })
            );
        }
        Ok(Decoded::Incomplete { needed }) => assert!(needed > body.len()),
        Err(_) => {}
    }
});
