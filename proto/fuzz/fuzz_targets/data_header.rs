//! Data-port stream: headers and payloads back to back until the input runs out.

#![no_main]

use libfuzzer_sys::fuzz_target;
use trelay_proto::lttng::relayd::{DataHeader, DATA_HEADER_LEN};
use trelay_proto::Decoded;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Decoded::Done { msg, used } = DataHeader::decode(rest) {
        assert_eq!(used, DATA_HEADER_LEN);
        assert_eq!(msg.to_bytes(), rest[..used]);
        assert_eq!(
            msg.total_len(),
            u64::from(msg.data_size) + u64::from(msg.padding_size)
        );
        let Some(next) = rest.get(used + msg.data_size as usize..) else {
            return;
        };
        rest = next;
    }
});
