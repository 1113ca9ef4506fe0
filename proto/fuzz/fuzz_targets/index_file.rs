//! Parses arbitrary bytes as a CTF index file; a parsed file must account for every byte and
//! re-encode to a file that parses to the same entries.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trelay_proto::ctf::index::{IndexFile, HEADER_LEN};

fuzz_target!(|data: &[u8]| {
    let Ok(file) = IndexFile::parse(data) else {
        return;
    };
    let entry_len = file.header.entry_len as usize;
    assert_eq!(HEADER_LEN + file.entries.len() * entry_len + file.torn_tail, data.len());
    assert!(file.torn_tail < entry_len);
    let mut again = Vec::new();
    file.encode(&mut again);
    assert_eq!(again.len(), data.len() - file.torn_tail);
    let reparsed = IndexFile::parse(&again).expect("re-encoded file parses");
    assert_eq!((reparsed.header, reparsed.entries, reparsed.torn_tail), (file.header, file.entries, 0));
});
