//! Recovery of hand-built torn traces.

use super::*;
use trelay_proto::ctf::index::{encode_header, IndexEntry, IndexVersion};

fn index_file(entries: &[(u64, u64)], torn: usize) -> Vec<u8> {
    let mut b = Vec::new();
    encode_header(IndexVersion::V1_1, &mut b);
    for (i, (offset, size)) in entries.iter().enumerate() {
        IndexEntry {
            offset: *offset,
            packet_size: size * 8,
            content_size: size * 8,
            timestamp_begin: i as u64,
            timestamp_end: i as u64 + 1,
            events_discarded: 0,
            stream_id: 0,
            stream_instance_id: 0,
            packet_seq_num: i as u64,
        }
        .encode(IndexVersion::V1_1, &mut b);
    }
    b.extend(std::iter::repeat_n(0xAB, torn));
    b
}

fn metadata_packet(size: u32) -> Vec<u8> {
    let mut p = vec![0u8; size as usize];
    p[0..4].copy_from_slice(&METADATA_MAGIC.to_le_bytes());
    p[24..28].copy_from_slice(&(size * 8).to_le_bytes());
    p[28..32].copy_from_slice(&(size * 8).to_le_bytes());
    p
}

fn len(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap().len()
}

#[test]
fn torn_tails_are_cut_back_to_committed_data() {
    let out = tempfile::tempdir().unwrap();
    let trace = out.path().join("host/s-20260101-000000/ust/uid/0/64-bit");
    std::fs::create_dir_all(trace.join("index")).unwrap();
    mark(&crate::storage::RealFs::shared(), &trace, false).unwrap();
    // c_0: three whole entries, a torn fourth; data holds 50 unindexed bytes more.
    std::fs::write(
        trace.join("index/c_0.idx"),
        index_file(&[(0, 100), (100, 100), (200, 100)], 30),
    )
    .unwrap();
    std::fs::write(trace.join("c_0"), vec![1u8; 350]).unwrap();
    // c_1: the second entry points past the data file.
    std::fs::write(
        trace.join("index/c_1.idx"),
        index_file(&[(0, 100), (100, 100)], 0),
    )
    .unwrap();
    std::fs::write(trace.join("c_1"), vec![2u8; 150]).unwrap();
    // c_2: index header only: none of its data was committed.
    std::fs::write(trace.join("index/c_2.idx"), index_file(&[], 0)).unwrap();
    std::fs::write(trace.join("c_2"), vec![3u8; 80]).unwrap();
    // c_3: no index (snapshot-like): left alone.
    std::fs::write(trace.join("c_3"), vec![4u8; 77]).unwrap();
    let mut meta = metadata_packet(64);
    meta.extend(metadata_packet(64));
    meta.extend(&metadata_packet(64)[..20]);
    std::fs::write(trace.join("metadata"), meta).unwrap();
    std::fs::write(trace.join("index/.c_0.loss.json.tmp"), b"{").unwrap();
    std::fs::write(trace.join("index/c_0.loss.json"), b"{}").unwrap();
    // An unmarked torn trace is not touched.
    let other = out.path().join("host/done/ust");
    std::fs::create_dir_all(other.join("index")).unwrap();
    std::fs::write(other.join("index/c_0.idx"), index_file(&[(0, 10)], 5)).unwrap();
    std::fs::write(other.join("c_0"), vec![5u8; 99]).unwrap();

    assert_eq!(
        marked_dirs(&crate::storage::RealFs::shared(), out.path()),
        vec![trace.clone()]
    );
    let r = recover(&crate::storage::RealFs::shared(), out.path());
    assert_eq!(r.dirs, 1);
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(len(&trace.join("index/c_0.idx")), 16 + 3 * 72);
    assert_eq!(len(&trace.join("c_0")), 300);
    assert_eq!(len(&trace.join("index/c_1.idx")), 16 + 72);
    assert_eq!(len(&trace.join("c_1")), 100);
    assert_eq!(len(&trace.join("index/c_2.idx")), 16);
    assert_eq!(len(&trace.join("c_2")), 0);
    assert_eq!(len(&trace.join("c_3")), 77);
    assert_eq!(len(&trace.join("metadata")), 128);
    assert!(!trace.join("index/.c_0.loss.json.tmp").exists());
    assert!(trace.join("index/c_0.loss.json").exists());
    assert!(!trace.join(MARKER).exists());
    assert_eq!(
        (
            r.index_files_cut,
            r.index_entries_dropped,
            r.index_bytes_cut
        ),
        (2, 1, 30)
    );
    assert_eq!((r.data_files_cut, r.data_bytes_cut), (3, 50 + 50 + 80));
    assert_eq!(r.metadata_files_cut, 1);
    assert_eq!(len(&other.join("c_0")), 99, "unmarked trace untouched");
    assert_eq!(len(&other.join("index/c_0.idx")), 16 + 72 + 5);
    // Bytes that stay are the ones that were there.
    assert_eq!(std::fs::read(trace.join("c_0")).unwrap(), vec![1u8; 300]);
    // A second start finds nothing to do.
    assert_eq!(
        recover(&crate::storage::RealFs::shared(), out.path()),
        Report::default()
    );
}

#[test]
fn text_metadata_and_bad_headers_are_left_alone() {
    let out = tempfile::tempdir().unwrap();
    let trace = out.path().join("t");
    std::fs::create_dir_all(trace.join("index")).unwrap();
    mark(&crate::storage::RealFs::shared(), &trace, true).unwrap();
    std::fs::write(trace.join("metadata"), b"/* CTF 1.8 */ trace { } partial").unwrap();
    std::fs::write(trace.join("index/c_0.idx"), b"not an index at all").unwrap();
    std::fs::write(trace.join("c_0"), vec![0u8; 10]).unwrap();
    let r = recover(&crate::storage::RealFs::shared(), out.path());
    assert_eq!(r.metadata_files_cut, 0);
    assert_eq!(len(&trace.join("metadata")), 31);
    assert_eq!(len(&trace.join("c_0")), 10);
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert!(!trace.join(MARKER).exists());
}

/// The CTF 2 metadata lttng-relayd 2.15 wrote for a real session (see testdata/README.md).
fn real_ctf2_metadata() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/ctf2/metadata"
    ))
    .unwrap()
}

/// Start offsets of the records of a JSON text sequence.
fn record_starts(m: &[u8]) -> Vec<usize> {
    m.iter()
        .enumerate()
        .filter(|(_, b)| **b == crate::storage::json_seq::RS)
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn ctf2_metadata_torn_mid_record_is_cut_to_whole_records() {
    let meta = real_ctf2_metadata();
    let starts = record_starts(&meta);
    assert_eq!(starts.len(), 10, "the capture holds 10 records");
    assert!(starts[1..].iter().all(|s| meta[s - 1] == b'}'));
    assert_eq!(meta.last(), Some(&b'}'));
    // Torn at every 97th byte (through all 10 records and their boundaries): the file keeps
    // exactly the records that ended before the tear.
    for tear in (1..meta.len())
        .step_by(97)
        .chain([starts[3], starts[3] + 1])
    {
        let out = tempfile::tempdir().unwrap();
        let trace = out.path().join("h/s-20261208-000000/ust/uid/0/64-bit");
        std::fs::create_dir_all(&trace).unwrap();
        mark(&crate::storage::RealFs::shared(), &trace, false).unwrap();
        std::fs::write(trace.join("metadata"), &meta[..tear]).unwrap();
        let r = recover(&crate::storage::RealFs::shared(), out.path());
        let kept = std::fs::read(trace.join("metadata")).unwrap();
        // Records follow one another with nothing between them, so the whole records of a
        // prefix end at the last record start at or before the tear.
        let want = starts
            .iter()
            .copied()
            .filter(|s| *s <= tear)
            .max()
            .unwrap_or(0);
        assert_eq!(kept.len(), want, "torn at {tear}");
        assert_eq!(&kept[..], &meta[..want], "bytes kept are the ones written");
        assert_eq!(
            r.metadata_files_cut,
            usize::from(want < tear),
            "torn at {tear}"
        );
        assert!(r.problems.is_empty(), "{:?}", r.problems);
        assert!(!trace.join(MARKER).exists());
    }
}

#[test]
fn whole_ctf2_metadata_is_left_alone() {
    let meta = real_ctf2_metadata();
    let out = tempfile::tempdir().unwrap();
    let trace = out.path().join("t");
    std::fs::create_dir_all(&trace).unwrap();
    mark(&crate::storage::RealFs::shared(), &trace, false).unwrap();
    std::fs::write(trace.join("metadata"), &meta).unwrap();
    let r = recover(&crate::storage::RealFs::shared(), out.path());
    assert_eq!(r.metadata_files_cut, 0);
    assert_eq!(std::fs::read(trace.join("metadata")).unwrap(), meta);
    // Just the separator of a first record: nothing whole, cut to empty.
    let trace = out.path().join("u");
    std::fs::create_dir_all(&trace).unwrap();
    mark(&crate::storage::RealFs::shared(), &trace, false).unwrap();
    std::fs::write(trace.join("metadata"), [crate::storage::json_seq::RS]).unwrap();
    let r = recover(&crate::storage::RealFs::shared(), out.path());
    assert_eq!(r.metadata_files_cut, 1);
    assert_eq!(len(&trace.join("metadata")), 0);
}
