//! Decodes arbitrary bytes as a CTF data packet header (both word sizes) and as packetized
//! metadata; decoded headers must re-encode to the bytes they came from, and the TSDL extracted
//! from metadata never exceeds its input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trelay_proto::ctf::packet::{extract_tsdl, MetadataPacketHeader, PacketHeader, WordSize};
use trelay_proto::Decoded;

fuzz_target!(|data: &[u8]| {
    for word in [WordSize::Bits32, WordSize::Bits64] {
        match PacketHeader::decode(data, word) {
            Ok(Decoded::Done { msg, used }) => {
                assert_eq!(used, word.header_len());
                let mut again = Vec::new();
                msg.encode(word, &mut again);
                assert_eq!(&again[..], &data[..used]);
            }
            Ok(Decoded::Incomplete { needed }) => assert!(needed > data.len()),
            Err(_) => {}
        }
    }
    if let Ok(Decoded::Done { msg, used }) = MetadataPacketHeader::decode(data) {
        let mut again = Vec::new();
        msg.encode(&mut again);
        assert_eq!(&again[..], &data[..used]);
    }
    if let Ok(tsdl) = extract_tsdl(data) {
        assert!(tsdl.used <= data.len());
        assert!(tsdl.text.len() <= tsdl.used);
    }
});
