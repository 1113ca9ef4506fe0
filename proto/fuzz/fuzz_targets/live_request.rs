//! Feeds arbitrary bytes to the live request decoder as a stream of requests; every decoded
//! request must re-encode to something that decodes to the same request, of the same size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trelay_proto::lttng::live::decode_request;
use trelay_proto::Decoded;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    loop {
        match decode_request(rest) {
            Ok(Decoded::Done { msg, used }) => {
                assert!(used >= 16 && used <= rest.len());
                let mut again = Vec::new();
                msg.encode(&mut again);
                assert_eq!(again.len(), used);
                assert_eq!(decode_request(&again), Ok(Decoded::Done { msg, used }));
                rest = &rest[used..];
            }
            Ok(Decoded::Incomplete { needed }) => {
                assert!(needed > rest.len());
                break;
            }
            Err(_) => break,
        }
    }
});
