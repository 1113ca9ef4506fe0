//! Feeds arbitrary bytes to the live reply decoder; the first byte picks the command answered
//! (including unknown command numbers). Every decoded reply must re-encode to something that
//! decodes to the same reply, of the same size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trelay_proto::lttng::live::decode_reply;
use trelay_proto::Decoded;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let cmd = u32::from(selector % 12);
    match decode_reply(cmd, body) {
        Ok(Decoded::Done { msg, used }) => {
            assert!(used <= body.len());
            let mut again = Vec::new();
            msg.encode(&mut again);
            assert_eq!(again.len(), used);
            assert_eq!(decode_reply(cmd, &again), Ok(Decoded::Done { msg, used }));
        }
        Ok(Decoded::Incomplete { needed }) => assert!(needed > body.len()),
        Err(_) => {}
    }
});
