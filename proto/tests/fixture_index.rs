//! Every index file lttng-relayd wrote in the fixture decodes, describes its data file exactly,
//! agrees with the packet headers in the data file, and re-encodes byte for byte.

mod fixture_support;

use std::path::{Path, PathBuf};

use trelay_proto::ctf::index::{IndexFile, IndexVersion};
use trelay_proto::ctf::packet::{ByteOrder, PacketHeader, WordSize};
use trelay_proto::Decoded;

fn relay_out() -> PathBuf {
    fixture_support::fixture().join("relay-out")
}

fn index_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            index_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "idx") {
            out.push(path);
        }
    }
}

#[test]
fn index_files_match_data_files() {
    let mut files = Vec::new();
    index_files(&relay_out(), &mut files);
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    let mut instance_ids = Vec::new();
    for idx_path in files {
        let bytes = std::fs::read(&idx_path).unwrap();
        let file = IndexFile::parse(&bytes).unwrap();
        assert_eq!(file.header.version, IndexVersion::V1_1);
        assert_eq!(file.header.entry_len, 72);
        assert_eq!(file.torn_tail, 0);
        assert!(!file.entries.is_empty());

        let mut again = Vec::new();
        file.encode(&mut again);
        assert_eq!(again, bytes, "{} re-encodes", idx_path.display());

        let data_path = idx_path
            .parent()
            .and_then(Path::parent)
            .unwrap()
            .join(idx_path.file_stem().unwrap());
        let data = std::fs::read(&data_path).unwrap();
        let mut expected_offset = 0u64;
        for (seq, e) in file.entries.iter().enumerate() {
            assert_eq!(e.offset, expected_offset, "entries are contiguous");
            assert_eq!(e.packet_seq_num, seq as u64);
            assert!(e.content_size <= e.packet_size);
            expected_offset += e.packet_size / 8;

            let at = e.offset as usize;
            let Decoded::Done { msg: h, used } =
                PacketHeader::decode(&data[at..], WordSize::Bits64).unwrap()
            else {
                panic!("short packet header at {at}")
            };
            assert_eq!(used, 84);
            assert_eq!(h.byte_order, ByteOrder::Little);
            assert_eq!(
                (
                    h.timestamp_begin,
                    h.timestamp_end,
                    h.content_size,
                    h.packet_size
                ),
                (
                    e.timestamp_begin,
                    e.timestamp_end,
                    e.content_size,
                    e.packet_size
                )
            );
            assert_eq!(u64::from(h.stream_id), e.stream_id);
            assert_eq!(h.stream_instance_id, e.stream_instance_id);
            assert_eq!(h.packet_seq_num, e.packet_seq_num);
            assert_eq!(h.events_discarded, e.events_discarded);
            assert_eq!(u64::from(h.cpu_id), h.stream_instance_id, "per-CPU channel");

            let mut header_again = Vec::new();
            h.encode(WordSize::Bits64, &mut header_again);
            assert_eq!(header_again, &data[at..at + 84], "packet header re-encodes");
        }
        assert_eq!(
            expected_offset,
            data.len() as u64,
            "last entry ends at the file's end"
        );
        instance_ids.push(file.entries[0].stream_instance_id);
    }
    assert_eq!(instance_ids, [0, 1]);
}
