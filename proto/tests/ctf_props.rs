//! Property and hostile-input tests for CTF index files, data packet headers and packetized
//! metadata.

use proptest::prelude::*;
use trelay_proto::ctf::index::{
    encode_header, IndexEntries, IndexEntry, IndexFile, IndexHeader, IndexVersion, HEADER_LEN,
    INDEX_MAGIC, MAX_ENTRY_LEN,
};
use trelay_proto::ctf::packet::metadata::METADATA_HEADER_LEN;
use trelay_proto::ctf::packet::{
    append_tsdl, extract_tsdl, ByteOrder, MetadataPacketHeader, PacketHeader, WordSize,
};
use trelay_proto::{DecodeError, Decoded};

fn version() -> impl Strategy<Value = IndexVersion> {
    prop_oneof![Just(IndexVersion::V1_0), Just(IndexVersion::V1_1)]
}

fn entry(version: IndexVersion) -> impl Strategy<Value = IndexEntry> {
    any::<[u64; 9]>().prop_map(move |f| IndexEntry {
        offset: f[0],
        packet_size: f[1],
        content_size: f[2],
        timestamp_begin: f[3],
        timestamp_end: f[4],
        events_discarded: f[5],
        stream_id: f[6],
        stream_instance_id: if version == IndexVersion::V1_1 {
            f[7]
        } else {
            u64::MAX
        },
        packet_seq_num: if version == IndexVersion::V1_1 {
            f[8]
        } else {
            u64::MAX
        },
    })
}

/// A header (possibly with entries longer than the version's layout) and entries.
fn index_file() -> impl Strategy<Value = IndexFile> {
    (version(), 0u32..32).prop_flat_map(|(v, extra)| {
        (
            Just(IndexHeader {
                version: v,
                entry_len: v.entry_len() + extra,
            }),
            prop::collection::vec(entry(v), 0..8),
        )
            .prop_map(|(header, entries)| IndexFile {
                header,
                entries,
                torn_tail: 0,
            })
    })
}

fn byte_order() -> impl Strategy<Value = ByteOrder> {
    prop_oneof![Just(ByteOrder::Little), Just(ByteOrder::Big)]
}

fn word() -> impl Strategy<Value = WordSize> {
    prop_oneof![Just(WordSize::Bits32), Just(WordSize::Bits64)]
}

fn packet_header() -> impl Strategy<Value = (WordSize, PacketHeader)> {
    (
        word(),
        byte_order(),
        any::<[u8; 16]>(),
        any::<u32>(),
        any::<[u64; 7]>(),
        any::<u32>(),
    )
        .prop_map(|(w, byte_order, uuid, stream_id, f, cpu_id)| {
            let events_discarded = match w {
                WordSize::Bits32 => f[6] & 0xffff_ffff,
                WordSize::Bits64 => f[6],
            };
            (
                w,
                PacketHeader {
                    byte_order,
                    uuid,
                    stream_id,
                    stream_instance_id: f[0],
                    timestamp_begin: f[1],
                    timestamp_end: f[2],
                    content_size: f[3],
                    packet_size: f[4],
                    packet_seq_num: f[5],
                    events_discarded,
                    cpu_id,
                },
            )
        })
}

/// Packetizes `text` into metadata packets of at most `chunk` text bytes each, padded by `pad`.
fn packetize(text: &[u8], chunk: usize, pad: usize, order: ByteOrder) -> Vec<u8> {
    let mut out = Vec::new();
    for part in text.chunks(chunk.max(1)) {
        let content = (METADATA_HEADER_LEN + part.len()) as u32 * 8;
        MetadataPacketHeader {
            byte_order: order,
            uuid: [7; 16],
            checksum: 0,
            content_size: content,
            packet_size: content + pad as u32 * 8,
            compression_scheme: 0,
            encryption_scheme: 0,
            checksum_scheme: 0,
            major: 1,
            minor: 8,
        }
        .encode(&mut out);
        out.extend_from_slice(part);
        out.resize(out.len() + pad, 0);
    }
    out
}

proptest! {
    #[test]
    fn index_headers_round_trip(v in version(), extra in 0u32..100) {
        let h = IndexHeader { version: v, entry_len: v.entry_len() + extra };
        let mut buf = Vec::new();
        h.encode(&mut buf);
        prop_assert_eq!(IndexHeader::decode(&buf).unwrap(), Decoded::Done { msg: h, used: HEADER_LEN });
        for k in 0..buf.len() {
            prop_assert_eq!(IndexHeader::decode(&buf[..k]).unwrap(), Decoded::Incomplete { needed: HEADER_LEN });
        }
        if extra == 0 {
            let mut std_header = Vec::new();
            encode_header(v, &mut std_header);
            prop_assert_eq!(std_header, buf);
        }
    }

    #[test]
    fn index_entries_round_trip((v, e) in version().prop_flat_map(|v| (Just(v), entry(v)))) {
        let h = IndexHeader::new(v);
        let mut buf = Vec::new();
        e.encode(v, &mut buf);
        prop_assert_eq!(buf.len(), v.entry_len() as usize);
        prop_assert_eq!(IndexEntry::decode(&h, &buf), Decoded::Done { msg: e, used: buf.len() });
        for k in 0..buf.len() {
            let incomplete = matches!(IndexEntry::decode(&h, &buf[..k]), Decoded::Incomplete { .. });
            prop_assert!(incomplete, "prefix {}", k);
        }
    }

    #[test]
    fn index_files_round_trip_and_report_torn_tails(
        file in index_file(),
        tail in prop::collection::vec(any::<u8>(), 0..56),
    ) {
        let mut buf = Vec::new();
        file.encode(&mut buf);
        prop_assert_eq!(&IndexFile::parse(&buf).unwrap(), &file);
        let torn = tail.len() % file.header.entry_len as usize;
        buf.extend_from_slice(&tail[..torn]);
        let parsed = IndexFile::parse(&buf).unwrap();
        prop_assert_eq!(parsed.torn_tail, torn);
        prop_assert_eq!(&parsed.entries, &file.entries);
        let iter = IndexEntries::new(file.header, &buf[HEADER_LEN..]);
        prop_assert_eq!(iter.torn_tail(), torn);
        prop_assert_eq!(iter.count(), file.entries.len());
    }

    #[test]
    fn packet_headers_round_trip((w, h) in packet_header(), trailing in prop::collection::vec(any::<u8>(), 0..16)) {
        let mut buf = Vec::new();
        h.encode(w, &mut buf);
        prop_assert_eq!(buf.len(), w.header_len());
        let magic: &[u8] = match h.byte_order {
            ByteOrder::Little => &[0xc1, 0x1f, 0xfc, 0xc1],
            ByteOrder::Big => &[0xc1, 0xfc, 0x1f, 0xc1],
        };
        prop_assert_eq!(&buf[..4], magic);
        buf.extend_from_slice(&trailing);
        prop_assert_eq!(PacketHeader::decode(&buf, w).unwrap(), Decoded::Done { msg: h, used: w.header_len() });
        for k in 0..w.header_len() {
            prop_assert_eq!(PacketHeader::decode(&buf[..k], w).unwrap(), Decoded::Incomplete { needed: w.header_len() });
        }
    }

    #[test]
    fn metadata_text_survives_packetizing(
        text in prop::collection::vec(any::<u8>(), 0..2000),
        chunk in 1usize..700,
        pad in 0usize..64,
        order in byte_order(),
        cut in 0usize..64,
    ) {
        let packets = packetize(&text, chunk, pad, order);
        let tsdl = extract_tsdl(&packets).unwrap();
        prop_assert_eq!(&tsdl.text, &text);
        prop_assert_eq!(tsdl.used, packets.len());
        // A cut inside the last packet leaves it for later.
        if !packets.is_empty() {
            let cut = cut.min(packets.len() - 1) + 1;
            let short = &packets[..packets.len() - cut];
            let mut out = Vec::new();
            let used = append_tsdl(short, &mut out).unwrap();
            prop_assert!(used < packets.len());
            prop_assert_eq!(&out[..], &text[..out.len()]);
            // Feeding the rest completes the text.
            append_tsdl(&packets[used..], &mut out).unwrap();
            prop_assert_eq!(out, text);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400), entry_len in any::<u32>()) {
        let _ = IndexHeader::decode(&bytes);
        let _ = IndexFile::parse(&bytes);
        for v in [IndexVersion::V1_0, IndexVersion::V1_1] {
            let h = IndexHeader { version: v, entry_len };
            let _ = IndexEntry::decode(&h, &bytes);
            let _ = IndexEntries::new(h, &bytes).count();
        }
        let _ = PacketHeader::decode(&bytes, WordSize::Bits32);
        let _ = PacketHeader::decode(&bytes, WordSize::Bits64);
        let _ = MetadataPacketHeader::decode(&bytes);
        let _ = extract_tsdl(&bytes);
    }

    #[test]
    fn arbitrary_bytes_after_a_magic_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let mut index = Vec::new();
        index.extend_from_slice(&INDEX_MAGIC.to_be_bytes());
        index.extend_from_slice(&bytes);
        let _ = IndexFile::parse(&index);
        let mut meta = vec![0x57, 0x1d, 0xd1, 0x75];
        meta.extend_from_slice(&bytes);
        let _ = extract_tsdl(&meta);
        let mut packet = vec![0xc1, 0x1f, 0xfc, 0xc1];
        packet.extend_from_slice(&bytes);
        let _ = PacketHeader::decode(&packet, WordSize::Bits64);
    }
}

fn raw_header(magic: u32, major: u32, minor: u32, entry_len: u32) -> Vec<u8> {
    [magic, major, minor, entry_len]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect()
}

#[test]
fn hostile_index_headers() {
    assert!(matches!(
        IndexHeader::decode(&raw_header(0xC1F1_DCC2, 1, 1, 72)),
        Err(DecodeError::BadMagic {
            found: 0xC1F1_DCC2,
            ..
        })
    ));
    // Little-endian magic is not accepted: index files are big-endian.
    let mut le = raw_header(INDEX_MAGIC, 1, 1, 72);
    le[..4].reverse();
    assert!(matches!(
        IndexHeader::decode(&le),
        Err(DecodeError::BadMagic { .. })
    ));
    let invalid = |major, minor, len| match IndexHeader::decode(&raw_header(
        INDEX_MAGIC,
        major,
        minor,
        len,
    )) {
        Err(DecodeError::InvalidValue { field, .. }) => field,
        other => panic!("{major}.{minor} len {len}: {other:?}"),
    };
    assert_eq!(invalid(0, 1, 72), "index.major");
    assert_eq!(invalid(2, 0, 56), "index.major");
    assert_eq!(invalid(1, 2, 72), "index.minor");
    assert_eq!(invalid(1, u32::MAX, 72), "index.minor");
    for len in [0, 8, 55, MAX_ENTRY_LEN + 1, u32::MAX] {
        assert_eq!(invalid(1, 0, len), "index.entry_len");
    }
    // v1.1 needs its two extra fields.
    assert_eq!(invalid(1, 1, 56), "index.entry_len");
    assert_eq!(invalid(1, 1, 71), "index.entry_len");
    // Longer-than-known entries are fine.
    assert!(IndexHeader::decode(&raw_header(INDEX_MAGIC, 1, 0, 72)).is_ok());
    assert!(IndexHeader::decode(&raw_header(INDEX_MAGIC, 1, 1, MAX_ENTRY_LEN)).is_ok());
    // A file shorter than its header.
    assert!(matches!(
        IndexFile::parse(&raw_header(INDEX_MAGIC, 1, 1, 72)[..15]),
        Err(DecodeError::BadLength { .. })
    ));
    assert!(matches!(
        IndexFile::parse(&[]),
        Err(DecodeError::BadLength { .. })
    ));
}

#[test]
fn entries_too_short_for_their_version_never_loop() {
    // A hand-built header below the layout size yields no entries instead of spinning.
    let h = IndexHeader {
        version: IndexVersion::V1_1,
        entry_len: 0,
    };
    assert_eq!(IndexEntries::new(h, &[0; 500]).count(), 0);
    let h = IndexHeader {
        version: IndexVersion::V1_0,
        entry_len: 8,
    };
    assert_eq!(IndexEntries::new(h, &[0; 500]).count(), 0);
}

#[test]
fn v1_0_entries_leave_v1_1_fields_unset() {
    let mut body = Vec::new();
    for v in 1..=7u64 {
        body.extend_from_slice(&v.to_be_bytes());
    }
    let Decoded::Done { msg, used } =
        IndexEntry::decode(&IndexHeader::new(IndexVersion::V1_0), &body)
    else {
        panic!()
    };
    assert_eq!(used, 56);
    assert_eq!((msg.offset, msg.stream_id), (1, 7));
    assert_eq!(
        (msg.stream_instance_id, msg.packet_seq_num),
        (u64::MAX, u64::MAX)
    );
}

#[test]
fn bad_packet_magic() {
    let mut buf = vec![0; 84];
    assert!(matches!(
        PacketHeader::decode(&buf, WordSize::Bits64),
        Err(DecodeError::BadMagic { found: 0, .. })
    ));
    // A metadata magic is not a data packet magic, and the reverse.
    buf[..4].copy_from_slice(&[0x57, 0x1d, 0xd1, 0x75]);
    assert!(PacketHeader::decode(&buf, WordSize::Bits64).is_err());
    buf[..4].copy_from_slice(&[0xc1, 0x1f, 0xfc, 0xc1]);
    assert!(matches!(
        MetadataPacketHeader::decode(&buf),
        Err(DecodeError::BadMagic { .. })
    ));
    // Bad magic is reported as soon as 4 bytes are there.
    assert!(PacketHeader::decode(&[1, 2, 3, 4], WordSize::Bits32).is_err());
    assert_eq!(
        PacketHeader::decode(&[0xc1, 0x1f, 0xfc], WordSize::Bits32),
        Ok(Decoded::Incomplete { needed: 80 })
    );
}

#[test]
fn hostile_metadata_sizes() {
    let header = |content: u32, packet: u32| {
        let mut b = Vec::new();
        MetadataPacketHeader {
            byte_order: ByteOrder::Little,
            uuid: [0; 16],
            checksum: 0,
            content_size: content,
            packet_size: packet,
            compression_scheme: 0,
            encryption_scheme: 0,
            checksum_scheme: 0,
            major: 1,
            minor: 8,
        }
        .encode(&mut b);
        b
    };
    let field = |c, p| match MetadataPacketHeader::decode(&header(c, p)) {
        Err(DecodeError::InvalidValue { field, .. }) => field,
        other => panic!("{c}/{p}: {other:?}"),
    };
    assert_eq!(field(0, 0), "metadata packet content_size");
    assert_eq!(field(295, 1000), "metadata packet content_size");
    assert_eq!(field(301, 1000), "metadata packet content_size");
    assert_eq!(field(296, 288), "metadata packet packet_size");
    assert_eq!(field(400, 401), "metadata packet packet_size");
    // A packet claiming 4 GiB with 37 bytes present: waits, allocates nothing.
    let big = header(296, u32::MAX - 7);
    assert_eq!(extract_tsdl(&big).unwrap().used, 0);
    // Compressed metadata is refused rather than misread.
    let mut compressed = header(296, 296);
    compressed[32] = 1;
    assert!(extract_tsdl(&compressed).is_err());
    // Bytes that are not packetized metadata.
    assert!(matches!(
        extract_tsdl(b"/* CTF 1.8 */"),
        Err(DecodeError::BadMagic { .. })
    ));
}
