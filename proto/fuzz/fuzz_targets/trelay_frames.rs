//! trelay:// stream: frames decoded under a small agreed maximum and fed to the assembler until
//! the input runs out or is refused; headers that decode must encode back to an equal message.

#![no_main]

use libfuzzer_sys::fuzz_target;
use trelay_proto::trelay::assembler::{Assembler, Event};
use trelay_proto::trelay::frame;
use trelay_proto::trelay::message::Message;
use trelay_proto::Decoded;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    let mut a = Assembler::new();
    while let Ok(Decoded::Done { msg, used }) = frame::decode(rest, 512) {
        assert!(msg.payload.len() <= 512);
        match a.feed(msg) {
            Ok(Some(Event::Header { msg, .. })) => {
                let again = Message::from_bytes(&msg.to_bytes().unwrap()).unwrap();
                assert_eq!(again, msg);
            }
            Ok(_) => {}
            Err(_) => return,
        }
        rest = &rest[used..];
    }
});
