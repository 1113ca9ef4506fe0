//! Unit tests of the per-stream machinery on real files in a temporary folder: merge of halves,
//! beacons, commit order, tracefile rotation, stream rotation with a pivot, close.

use super::*;
use crate::config::{GroupBy, Settings};
use trelay_proto::NetSeq;

struct Fixture {
    _dir: tempfile::TempDir,
    registry: Registry,
    session: Arc<Session>,
}

fn fixture(live: bool) -> Fixture {
    fixture_with(live, Settings::default())
}

/// A non-live fixture whose merge table holds at most `max_pending_total` halves relay-wide.
fn fixture_with_cap(max_pending_total: usize) -> Fixture {
    fixture_with(
        false,
        Settings {
            max_pending_total,
            ..Settings::default()
        },
    )
}

fn fixture_with(live: bool, settings: Settings) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::new(
        settings,
        dir.path().to_path_buf(),
        GroupBy::Host,
        TaskTracker::new(),
    );
    let session = registry.create_session(SessionParams {
        name: "s".into(),
        hostname: "h".into(),
        base_path: String::new(),
        live_timer: if live { 100_000 } else { 0 },
        snapshot: false,
        name_has_time: false,
        minor: 13,
        sessiond_uuid: [1; 16],
        sessiond_session_id: 1,
        creation_time: 1_795_414_943,
        peer: "127.0.0.1".into(),
        trace_format: TraceFormat::Ctf1_8,
    });
    let (chunk, _) = registry.chunks.publish(
        session.chunk_key(0),
        1_795_414_943,
        &session.abs_dir,
        None,
        String::new,
    );
    session.lock().current_chunk = Some(chunk);
    Fixture {
        _dir: dir,
        registry,
        session,
    }
}

impl Fixture {
    fn stream(&self, name: &str, tracefile_size: u64, count: u64) -> Arc<Stream> {
        let chunk = self.session.lock().current_chunk.clone().unwrap();
        let id = self.registry.next_stream_id();
        let trace = self.registry.trace_id(&self.session, "ust");
        let s = Stream::new(
            id,
            self.session.clone(),
            trace,
            name.into(),
            "ust".into(),
            tracefile_size,
            count,
            chunk,
            self.registry.merge.clone(),
        )
        .unwrap();
        self.registry.insert_stream(s.clone());
        s
    }

    fn dir(&self) -> std::path::PathBuf {
        self.session.abs_dir.join("ust")
    }

    fn commit(&self, s: &Arc<Stream>) {
        self.session
            .commit
            .commit(
                std::slice::from_ref(s),
                Durability::Beacon,
                &self.session.telemetry,
            )
            .unwrap();
    }
}

fn half(bytes: u64, psn: u64) -> IndexHalf {
    IndexHalf {
        packet_size: bytes * 8,
        content_size: bytes * 8,
        timestamp_begin: psn,
        timestamp_end: psn + 1,
        events_discarded: 0,
        stream_id: 0,
        stream_instance_id: 0,
        packet_seq_num: psn,
    }
}

/// Writes packet `seq` of `len` bytes filled with `fill`.
fn packet(s: &Stream, seq: u64, len: u64, fill: u8) -> Effects {
    let slot = s.begin_packet(NetSeq(seq), len, len).unwrap();
    slot.file
        .write_all_at(&vec![fill; len as usize], slot.offset)
        .unwrap();
    s.end_packet(NetSeq(seq), slot, len).unwrap()
}

/// Writes packet `seq` of `len` bytes filled with `fill`, then its index entry.
fn whole_packet(s: &Stream, seq: u64, len: u64, fill: u8) {
    packet(s, seq, len, fill);
    s.add_index(NetSeq(seq), half(len, seq)).unwrap();
}

/// The JSON document in `path` (a loss sidecar).
fn read_json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn index_entries(path: &std::path::Path) -> Vec<(u64, u64)> {
    let b = std::fs::read(path).unwrap();
    b[16..]
        .chunks(72)
        .map(|e| {
            (
                u64::from_be_bytes(e[0..8].try_into().unwrap()),
                u64::from_be_bytes(e[64..72].try_into().unwrap()),
            )
        })
        .collect()
}

#[test]
fn halves_merge_in_either_order_and_commit_publishes() {
    let f = fixture(false);
    let s = f.stream("c_0", 0, 0);
    // data first for 0, index first for 1
    assert!(!packet(&s, 0, 100, 1).completed);
    assert!(s.add_index(NetSeq(0), half(100, 0)).unwrap().completed);
    assert!(!s.add_index(NetSeq(1), half(50, 1)).unwrap().completed);
    assert!(packet(&s, 1, 50, 2).completed);
    let idx = f.dir().join("index/c_0.idx");
    assert_eq!(
        std::fs::metadata(&idx).unwrap().len(),
        16,
        "nothing before the commit"
    );
    assert_eq!(s.lock().index_committed, 0);
    f.commit(&s);
    assert_eq!(index_entries(&idx), vec![(0, 0), (100, 1)]);
    assert_eq!(s.lock().index_committed, 2);
    assert_eq!(std::fs::metadata(f.dir().join("c_0")).unwrap().len(), 150);
}

#[test]
fn duplicates_are_refused() {
    let f = fixture(false);
    let s = f.stream("c_0", 0, 0);
    packet(&s, 0, 10, 1);
    assert!(s.begin_packet(NetSeq(0), 10, 10).is_err());
    s.add_index(NetSeq(0), half(10, 0)).unwrap();
    assert!(s.add_index(NetSeq(0), half(10, 0)).is_err());
}

#[test]
fn beacons_only_when_nothing_is_in_flight() {
    let f = fixture(true);
    let s = f.stream("c_0", 0, 0);
    let mut beacon = half(0, 0);
    beacon.packet_size = 0;
    beacon.timestamp_end = 777;
    beacon.stream_id = 3;
    s.add_index(NetSeq::UNSET, beacon).unwrap();
    assert_eq!(s.lock().beacon_ts_end, 777);
    assert_eq!(
        s.lock().ctf_stream_id,
        3,
        "class id taken from an early beacon"
    );
    s.add_index(NetSeq(0), half(10, 0)).unwrap();
    assert_eq!(
        s.lock().beacon_ts_end,
        u64::MAX,
        "a real index clears the beacon"
    );
    beacon.timestamp_end = 900;
    s.add_index(NetSeq(0), beacon).unwrap();
    assert_eq!(
        s.lock().beacon_ts_end,
        u64::MAX,
        "ignored while an entry is pending"
    );
}

#[test]
fn tracefile_size_and_count_wrap() {
    let f = fixture(false);
    let s = f.stream("c_0", 250, 2);
    for seq in 0..5 {
        whole_packet(&s, seq, 100, seq as u8);
    }
    f.commit(&s);
    // files: 0 holds packets 0,1; 1 holds 2,3; packet 4 wrapped to file 0.
    assert_eq!(std::fs::metadata(f.dir().join("c_0_0")).unwrap().len(), 100);
    assert_eq!(std::fs::metadata(f.dir().join("c_0_1")).unwrap().len(), 200);
    assert!(!f.dir().join("c_0_2").exists());
    assert_eq!(
        index_entries(&f.dir().join("index/c_0_0.idx")),
        vec![(0, 4)]
    );
    assert_eq!(
        index_entries(&f.dir().join("index/c_0_1.idx")),
        vec![(0, 2), (100, 3)]
    );
}

#[test]
fn rotation_moves_packets_past_the_pivot() {
    let f = fixture(false);
    let s = f.stream("c_0", 0, 0);
    let (next, _) = f.registry.chunks.publish(
        f.session.chunk_key(1),
        1_795_415_000,
        &f.session.abs_dir,
        None,
        || "next".into(),
    );
    // Packets 0..3 written, indexes only for 0 and 1; the new chunk starts at psn 2.
    for seq in 0..4 {
        packet(&s, seq, 100, 10 + seq as u8);
    }
    s.add_index(NetSeq(0), half(100, 0)).unwrap();
    s.add_index(NetSeq(1), half(100, 1)).unwrap();
    assert!(
        s.start_rotation(Some(next.clone()), 2).unwrap(),
        "rotates at once"
    );
    s.add_index(NetSeq(2), half(100, 2)).unwrap();
    s.add_index(NetSeq(3), half(100, 3)).unwrap();
    f.commit(&s);
    let old = f.dir();
    let new = f.session.abs_dir.join("next/ust");
    assert_eq!(std::fs::read(old.join("c_0")).unwrap().len(), 200);
    let moved = std::fs::read(new.join("c_0")).unwrap();
    assert_eq!(moved.len(), 200);
    assert_eq!((moved[0], moved[100]), (12, 13));
    assert_eq!(
        index_entries(&old.join("index/c_0.idx")),
        vec![(0, 0), (100, 1)]
    );
    assert_eq!(
        index_entries(&new.join("index/c_0.idx")),
        vec![(0, 2), (100, 3)]
    );
    assert!(Arc::ptr_eq(s.lock().chunk.as_ref().unwrap(), &next));
}

#[test]
fn rotation_waits_for_the_index_side() {
    let f = fixture(false);
    let s = f.stream("c_0", 0, 0);
    packet(&s, 0, 100, 1);
    assert!(
        !s.start_rotation(None, 1).unwrap(),
        "packet 0 has no index yet"
    );
    assert!(s.add_index(NetSeq(0), half(100, 0)).unwrap().rotated);
    assert!(s.lock().chunk.is_none() && s.lock().data.is_none());
    assert!(
        s.begin_packet(NetSeq(1), 10, 10).is_err(),
        "no chunk: data refused"
    );
}

#[test]
fn close_waits_for_the_last_packet_and_drops_orphans() {
    let f = fixture(false);
    let s = f.stream("c_0", 0, 0);
    whole_packet(&s, 0, 10, 1);
    s.request_close(NetSeq(1));
    assert!(
        !f.registry.try_close_stream(&s, false),
        "packet 1 not in yet"
    );
    let fx = packet(&s, 1, 10, 1);
    assert!(fx.close_ready);
    assert!(f.registry.try_close_stream(&s, false));
    assert!(f.registry.stream(s.id).is_none());
    // A session close without CLOSE_STREAM gives up data that has no index.
    let t = f.stream("c_1", 0, 0);
    packet(&t, 0, 10, 1);
    assert!(f.registry.try_close_stream(&t, false));
    assert_eq!(t.lock().unindexed_packets, 1);
}

#[test]
fn ctf2_metadata_is_committed_and_published_in_whole_records() {
    let f = fixture(true);
    let m = f.stream("metadata", 0, 0);
    let rec1: &[u8] = b"\x1e{\"type\": \"preamble\", \"version\": 2}";
    let rec2: &[u8] = b"\x1e{\"type\": \"trace-class\", \"s\": \"}\"}";
    // Units cut like a non-live 2.15 consumer cuts them: mid-record.
    m.append_metadata(&rec1[..10], 0).unwrap();
    f.commit(&m);
    assert_eq!(
        m.lock().metadata_committed,
        0,
        "a torn record is not committed"
    );
    assert!(m.lock().all_committed(), "nothing whole is waiting");
    let mut rest = rec1[10..].to_vec();
    rest.extend_from_slice(&rec2[..5]);
    m.append_metadata(&rest, 0).unwrap();
    f.commit(&m);
    let one = rec1.len() as u64;
    assert_eq!(m.lock().metadata_committed, one);
    assert_eq!(
        m.frontier.metadata().0,
        one,
        "viewers see the first record only"
    );
    // Local readers may read the committed record, not the torn one after it.
    let path = f.dir().join("metadata");
    let reader = std::fs::File::open(&path).unwrap();
    assert_eq!(
        crate::storage::lock::first_locked(&reader, 0).unwrap(),
        Some(one)
    );
    m.append_metadata(&rec2[5..], 0).unwrap();
    f.commit(&m);
    let both = one + rec2.len() as u64;
    assert_eq!(m.lock().metadata_committed, both);
    assert_eq!(m.frontier.metadata().0, both);
    // RESET_METADATA (regenerate) starts the records over.
    m.reset_metadata().unwrap();
    m.append_metadata(&rec2[..7], 0).unwrap();
    f.commit(&m);
    assert_eq!(m.lock().metadata_committed, 0);
    m.append_metadata(&rec2[7..], 3).unwrap();
    f.commit(&m);
    assert_eq!(m.lock().metadata_committed, rec2.len() as u64);
}

#[test]
fn lttng_215s_non_live_metadata_units_land_byte_for_byte_and_commit_in_records() {
    // The metadata lttng-relayd 2.15 wrote for a real session, and the SEND_METADATA units its
    // sender cut it into (testdata/README.md).
    let meta = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/ctf2/metadata"
    ))
    .unwrap();
    let starts: Vec<u64> = meta
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == crate::storage::json_seq::RS)
        .map(|(i, _)| i as u64)
        .collect();
    let f = fixture(false);
    let m = f.stream("metadata", 0, 0);
    let mut from = 0usize;
    for len in [4056usize, 4056, 4056, 1485] {
        m.append_metadata(&meta[from..from + len], 0).unwrap();
        from += len;
        f.commit(&m);
        let want = if from == meta.len() {
            from as u64
        } else {
            starts
                .iter()
                .copied()
                .filter(|s| *s <= from as u64)
                .max()
                .unwrap()
        };
        assert_eq!(m.lock().metadata_committed, want, "after {from} bytes");
        assert_eq!(m.frontier.metadata().0, want);
    }
    assert_eq!(std::fs::read(f.dir().join("metadata")).unwrap(), meta);
    assert!(m.lock().all_committed());
}

#[test]
fn metadata_appends_with_padding() {
    let f = fixture(false);
    let m = f.stream("metadata", 0, 0);
    m.append_metadata(b"abc", 5).unwrap();
    m.append_metadata(b"de", 0).unwrap();
    assert_eq!(
        std::fs::read(f.dir().join("metadata")).unwrap(),
        b"abc\0\0\0\0\0de"
    );
    assert_eq!(m.lock().metadata_received, 10);
    f.commit(&m);
    assert_eq!(m.lock().metadata_committed, 10);
    assert!(
        m.begin_packet(NetSeq(0), 1, 1).is_err(),
        "no data packets on metadata"
    );
}

#[test]
fn relay_wide_cap_expires_oldest_halves() {
    let f = fixture_with_cap(3);
    let a = f.stream("c_0", 0, 0);
    let b = f.stream("c_1", 0, 0);
    for seq in 0..4 {
        a.add_index(NetSeq(seq), half(10, seq)).unwrap();
    }
    b.add_index(NetSeq(0), half(10, 0)).unwrap();
    assert_eq!(f.registry.merge.len(), 3);
    assert_eq!(f.registry.merge.counters(a.id).lost_packets, 2);
    assert_eq!(f.registry.merge.highest_index_only(a.id), Some(NetSeq(3)));
}

#[test]
fn data_connection_close_ends_streams_waiting_for_data() {
    let f = fixture(false);
    let s = f.stream("c_0", 0, 0);
    whole_packet(&s, 0, 10, 1);
    s.request_close(NetSeq(3));
    f.registry.close_session(&f.session, false, false);
    assert!(
        f.registry.stream(s.id).is_some(),
        "control EOF: still waiting for data"
    );
    assert!(
        f.session.lock().current_chunk.is_none(),
        "control EOF releases chunks"
    );
    f.registry.close_session(&f.session, false, true);
    assert!(
        f.registry.stream(s.id).is_none(),
        "data EOF: no more data can come"
    );
}

#[test]
fn readers_see_locks_past_the_committed_frontier() {
    use crate::storage::lock::range_locked as is_locked;
    let f = fixture(false);
    let s = f.stream("c_0", 0, 0);
    whole_packet(&s, 0, 100, 1);
    // A reader opens its own descriptions of the files.
    let data = std::fs::File::open(f.dir().join("c_0")).unwrap();
    let idx = std::fs::File::open(f.dir().join("index/c_0.idx")).unwrap();
    assert!(
        is_locked(&data, 0, 100).unwrap(),
        "uncommitted packet is locked"
    );
    assert!(!is_locked(&idx, 0, 16).unwrap(), "the header is readable");
    assert!(is_locked(&idx, 16, 72).unwrap());
    f.commit(&s);
    assert!(
        !is_locked(&data, 0, 100).unwrap(),
        "committed packet is readable"
    );
    assert!(!is_locked(&idx, 0, 88).unwrap());
    assert!(
        is_locked(&data, 100, 1).unwrap(),
        "past the frontier stays locked"
    );
    assert!(is_locked(&idx, 88, 72).unwrap());
    packet(&s, 1, 50, 2);
    assert!(is_locked(&data, 100, 50).unwrap());
    // Closing the stream releases everything once committed.
    s.request_close(NetSeq(1));
    s.add_index(NetSeq(1), half(50, 1)).unwrap();
    assert!(f.registry.try_close_stream(&s, false));
    f.commit(&s);
    drop(s);
    assert!(
        !is_locked(&data, 0, 0).unwrap(),
        "no lock once the relay let go"
    );
}

#[test]
fn trace_dirs_are_marked_open_until_their_chunk_is_released() {
    use crate::storage::recovery::MARKER;
    let f = fixture(false);
    let s = f.stream("c_0", 0, 0);
    let m = f.stream("metadata", 0, 0);
    assert!(f.dir().join(MARKER).exists());
    whole_packet(&s, 0, 10, 1);
    assert!(f.registry.try_close_stream(&s, false));
    assert!(f.registry.try_close_stream(&m, false));
    f.commit(&s);
    f.commit(&m);
    assert!(
        f.dir().join(MARKER).exists(),
        "the session still holds the chunk"
    );
    f.registry.close_session(&f.session, false, false);
    drop((s, m));
    f.registry.chunks.run_releases();
    assert!(!f.dir().join(MARKER).exists());
}

#[test]
fn the_commit_writes_the_loss_sidecar_of_streams_that_lost_packets() {
    use crate::merge::{DataHalf, Expired, ExpiryReason, Half};
    let f = fixture(false);
    let s = f.stream("c_0", 0, 0);
    whole_packet(&s, 0, 10, 1);
    f.commit(&s);
    let sidecar = f.dir().join("index/c_0.loss.json");
    assert!(!sidecar.exists(), "nothing lost");
    let expired = |seq: u64, half: Half| Expired {
        stream: s.id,
        seq: NetSeq(seq),
        half,
        reason: ExpiryReason::Deadline,
        waited: std::time::Duration::from_secs(30),
    };
    f.session.commit.losses.record(&expired(
        1,
        Half::Index(crate::merge::IndexHalf {
            packet_size: 80,
            packet_seq_num: 1,
            ..Default::default()
        }),
    ));
    f.commit(&s);
    let v = read_json(&sidecar);
    assert_eq!(v["lost_packets"], 1);
    assert_eq!(v["lost"][0]["packet_seq"], serde_json::json!([1, 1]));
    // Halves dropped at the close are recorded before it; the close's commit writes them into
    // the chunk the stream left.
    let data = DataHalf {
        file_index: 0,
        offset: 10,
        size: 10,
    };
    f.session
        .commit
        .losses
        .record(&expired(2, Half::Data(data)));
    assert!(f.registry.try_close_stream(&s, true));
    let v = read_json(&sidecar);
    assert_eq!(v["unindexed_packets"], 1);
    assert_eq!(v["unindexed"][0]["data_file"], "c_0");
    assert_eq!(index_entries(&f.dir().join("index/c_0.idx")), vec![(0, 0)]);
}

#[test]
fn unindexed_packets_name_their_tracefile_in_the_sidecar() {
    let f = fixture(false);
    let s = f.stream("c_0", 250, 2);
    for seq in 0..3 {
        packet(&s, seq, 100, 1);
    }
    // Packets 0 and 1 are indexed; packet 2 (second tracefile) never gets its index.
    s.add_index(NetSeq(0), half(100, 0)).unwrap();
    s.add_index(NetSeq(1), half(100, 1)).unwrap();
    assert!(f.registry.try_close_stream(&s, true));
    f.commit(&s);
    let sidecar = f.dir().join("index/c_0.loss.json");
    let v = read_json(&sidecar);
    assert_eq!(v["unindexed_packets"], 1);
    assert_eq!(v["unindexed"][0]["data_file"], "c_0_1");
    assert_eq!(v["unindexed"][0]["offset"], 0);
}

#[test]
fn expiry_on_the_housekeeping_tick_writes_the_loss_sidecar() {
    let f = fixture(false);
    let s = f.stream("c_0", 0, 0);
    whole_packet(&s, 0, 10, 1);
    f.commit(&s);
    // Index of packet 1 without data, data of packet 2 without index.
    s.add_index(NetSeq(1), half(10, 1)).unwrap();
    packet(&s, 2, 10, 1);
    let sidecar = f.dir().join("index/c_0.loss.json");
    assert!(!sidecar.exists());
    let later = std::time::Instant::now() + f.registry.settings.merge_deadline() * 2;
    f.registry.expire(later);
    let counts = f.session.commit.losses.counts(s.id);
    assert_eq!((counts.lost_packets, counts.unindexed_packets), (1, 1));
    // No runtime in this test: the requested commit ran inline and wrote the sidecar.
    let json = read_json(&sidecar);
    assert_eq!(json["lost_packets"], 1);
    assert_eq!(json["unindexed_packets"], 1);
    assert_eq!(json["unindexed"][0]["offset"], 10);
}

#[test]
fn a_half_pushed_out_by_another_stream_reaches_its_own_sidecar() {
    let f = fixture_with_cap(3);
    let a = f.stream("c_0", 0, 0);
    let b = f.stream("c_1", 0, 0);
    for seq in 0..3 {
        a.add_index(NetSeq(seq), half(10, seq)).unwrap();
    }
    // The table is full: b's index pushes out a's oldest half.
    b.add_index(NetSeq(0), half(10, 0)).unwrap();
    assert_eq!(f.registry.merge.counters(a.id).lost_packets, 1);
    let sidecar = f.dir().join("index/c_0.loss.json");
    assert_eq!(f.session.commit.losses.counts(a.id).lost_packets, 0);
    // The next housekeeping tick records it in a's book and commits a (nothing expires by age).
    f.registry.expire(std::time::Instant::now());
    assert_eq!(f.session.commit.losses.counts(a.id).lost_packets, 1);
    assert_eq!(f.session.commit.losses.counts(b.id).lost_packets, 0);
    let json = read_json(&sidecar);
    assert_eq!(json["lost_packets"], 1);
    assert!(!f.dir().join("index/c_1.loss.json").exists());
}
