//! Unit tests of the merge table.

use super::*;
use std::time::{Duration, Instant};
use trelay_proto::{NetSeq, StreamId};

const S1: StreamId = StreamId(1);
const S2: StreamId = StreamId(2);

fn cfg() -> MergeConfig {
    MergeConfig {
        deadline: Duration::from_secs(10),
        tick: Duration::from_millis(100),
        max_per_stream: 8,
        max_total: 20,
    }
}

fn data(offset: u64) -> DataHalf {
    DataHalf {
        file_index: 0,
        offset,
        size: 4096,
    }
}

fn index(psn: u64) -> IndexHalf {
    IndexHalf {
        packet_size: 4096 * 8,
        content_size: 4000 * 8,
        timestamp_begin: psn * 10,
        timestamp_end: psn * 10 + 9,
        events_discarded: 0,
        stream_id: 0,
        stream_instance_id: 1,
        packet_seq_num: psn,
    }
}

#[test]
fn data_first_then_index_completes() {
    let t0 = Instant::now();
    let t = MergeTable::new(cfg(), t0);
    let r = t.insert_data(S1, NetSeq(0), data(0), t0).unwrap();
    assert_eq!(r, Inserted::default());
    assert_eq!(t.len(), 1);
    assert_eq!(t.index_pending(S1), 0);
    let r = t.insert_index(S1, NetSeq(0), index(7), t0).unwrap();
    let c = r.completed.unwrap();
    assert_eq!(c.seq, NetSeq(0));
    assert_eq!(c.entry, index(7).entry(0));
    assert_eq!(c.size, 4096);
    assert!(t.is_empty());
}

#[test]
fn index_first_then_data_completes_with_data_offset() {
    let t0 = Instant::now();
    let t = MergeTable::new(cfg(), t0);
    assert!(t
        .insert_index(S1, NetSeq(0), index(0), t0)
        .unwrap()
        .completed
        .is_none());
    assert_eq!(t.index_pending(S1), 1);
    let half = DataHalf {
        file_index: 3,
        offset: 8192,
        size: 4096,
    };
    let c = t
        .insert_data(S1, NetSeq(0), half, t0)
        .unwrap()
        .completed
        .unwrap();
    assert_eq!(c.file_index, 3);
    assert_eq!(c.entry.offset, 8192);
    assert_eq!(c.entry.packet_seq_num, 0);
    assert_eq!(t.index_pending(S1), 0);
    // Completed timers are cancelled: nothing expires later.
    let mut out = Vec::new();
    assert_eq!(t.expire(t0 + Duration::from_secs(3600), &mut out), 0);
}

#[test]
fn duplicates_and_reordering_are_refused_without_side_effects() {
    let t0 = Instant::now();
    let t = MergeTable::new(cfg(), t0);
    let _ = t.insert_index(S1, NetSeq(5), index(5), t0).unwrap();
    assert_eq!(
        t.insert_index(S1, NetSeq(5), index(5), t0),
        Err(MergeError::Duplicate {
            stream: S1,
            seq: NetSeq(5),
            half: HalfKind::Index
        })
    );
    assert!(matches!(
        t.insert_index(S1, NetSeq(4), index(4), t0),
        Err(MergeError::OutOfOrder { .. })
    ));
    assert_eq!(t.len(), 1);
    // Data for the pending key still completes it.
    assert!(t
        .insert_data(S1, NetSeq(5), data(0), t0)
        .unwrap()
        .completed
        .is_some());
    // A data half for an already completed packet is out of order.
    assert!(matches!(
        t.insert_data(S1, NetSeq(5), data(0), t0),
        Err(MergeError::OutOfOrder { .. })
    ));
    // Streams are independent.
    assert!(t.insert_data(S2, NetSeq(0), data(0), t0).is_ok());
}

#[test]
fn deadline_expiry_accounts_lost_and_unindexed() {
    let t0 = Instant::now();
    let t = MergeTable::new(cfg(), t0);
    let _ = t.insert_index(S1, NetSeq(0), index(0), t0).unwrap();
    let _ = t
        .insert_data(S1, NetSeq(1), data(0), t0 + Duration::from_secs(2))
        .unwrap();
    let mut out = Vec::new();
    assert_eq!(t.expire(t0 + Duration::from_millis(9_999), &mut out), 0);
    assert_eq!(t.expire(t0 + Duration::from_secs(10), &mut out), 1);
    assert!(out[0].is_lost());
    assert_eq!(out[0].reason, ExpiryReason::Deadline);
    assert_eq!(out[0].waited, Duration::from_secs(10));
    assert_eq!(t.expire(t0 + Duration::from_secs(12), &mut out), 1);
    assert!(!out[1].is_lost());
    assert_eq!(
        t.counters(S1),
        LossCounters {
            lost_packets: 1,
            unindexed_packets: 1,
            early_expired: 0
        }
    );
    assert!(t.is_empty());
    // After the loss of packet 0's data, later packets still complete.
    let _ = t.insert_index(S1, NetSeq(1), index(1), t0).unwrap();
    let _ = t.insert_index(S1, NetSeq(2), index(2), t0).unwrap();
    let c = t
        .insert_data(S1, NetSeq(2), data(4096), t0)
        .unwrap()
        .completed
        .unwrap();
    assert_eq!(c.seq, NetSeq(2));
}

#[test]
fn hostile_index_flood_plateaus_at_stream_cap() {
    let t0 = Instant::now();
    let t = MergeTable::new(cfg(), t0);
    let mut evicted = 0;
    for seq in 0..10_000u64 {
        let r = t.insert_index(S1, NetSeq(seq), index(seq), t0).unwrap();
        if let Some(e) = r.evicted {
            assert_eq!(e.reason, ExpiryReason::StreamCap);
            // The oldest (lowest) key goes first.
            assert_eq!(e.seq, NetSeq(seq - 8));
            evicted += 1;
        }
        assert!(t.pending_len(S1) <= 8);
    }
    assert_eq!(evicted, 10_000 - 8);
    let c = t.counters(S1);
    assert_eq!(c.lost_packets, 10_000 - 8);
    assert_eq!(c.early_expired, 10_000 - 8);
}

#[test]
fn total_cap_expires_the_globally_oldest() {
    let t0 = Instant::now();
    let t = MergeTable::new(cfg(), t0);
    for s in 0..3u64 {
        for seq in 0..7u64 {
            let now = t0 + Duration::from_millis(s * 100 + seq);
            let r = t
                .insert_index(StreamId(10 + s), NetSeq(seq), index(seq), now)
                .unwrap();
            if s * 7 + seq >= 20 {
                let e = r.evicted.unwrap();
                assert_eq!(e.reason, ExpiryReason::TotalCap);
                assert_eq!((e.stream, e.seq), (StreamId(10), NetSeq(0)));
            } else {
                assert!(r.evicted.is_none());
            }
        }
    }
    assert_eq!(t.len(), 20);
}

#[test]
fn close_helpers() {
    let t0 = Instant::now();
    let t = MergeTable::new(cfg(), t0);
    let _ = t.insert_index(S1, NetSeq(0), index(0), t0).unwrap();
    let _ = t.insert_index(S1, NetSeq(1), index(1), t0).unwrap();
    // index 2 never arrives; data 2 and 3 arrive; index 3 arrives later -> mixed table.
    let _ = t.insert_data(S1, NetSeq(2), data(0), t0).unwrap();
    assert_eq!(t.highest_index_only(S1), Some(NetSeq(1)));
    let dropped = t.drop_data_only(S1, t0);
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0].reason, ExpiryReason::DataOnlyDropped);
    assert_eq!(t.counters(S1).unindexed_packets, 1);
    assert_eq!(t.len(), 2);
    let removed = t.remove_stream(S1, t0 + Duration::from_secs(1));
    assert_eq!(removed.expired.len(), 2);
    assert!(removed.expired.iter().all(|e| e.is_lost()));
    assert_eq!(removed.counters.lost_packets, 2);
    assert_eq!(removed.counters.unindexed_packets, 1);
    assert!(t.is_empty());
    // Timers of removed halves are gone.
    let mut out = Vec::new();
    assert_eq!(t.expire(t0 + Duration::from_secs(3600), &mut out), 0);
    // The stream starts afresh.
    assert_eq!(t.counters(S1), LossCounters::default());
    assert!(t.insert_index(S1, NetSeq(0), index(0), t0).is_ok());
}

#[test]
fn deferred_halves_are_bounded_and_handed_out_once() {
    let t0 = Instant::now();
    let t = MergeTable::new(cfg(), t0);
    let cap = t.config().max_total;
    let e = Expired {
        stream: S1,
        seq: NetSeq(0),
        half: Half::Index(index(0)),
        reason: ExpiryReason::TotalCap,
        waited: Duration::ZERO,
    };
    for _ in 0..cap {
        assert!(t.defer(e).is_ok());
    }
    assert_eq!(t.defer(e), Err(e), "beyond the cap the caller keeps it");
    let mut out = Vec::new();
    t.take_deferred(&mut out);
    assert_eq!(out.len(), cap);
    out.clear();
    t.take_deferred(&mut out);
    assert!(out.is_empty());
}
