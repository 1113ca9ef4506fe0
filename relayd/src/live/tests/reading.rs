//! GET_NEXT_INDEX decisions, GET_PACKET bounds, GET_METADATA and RETRY pacing.

use super::*;
use trelay_proto::lttng::live::{GetMetadataStatus, GetPacketStatus, NextIndexStatus, ViewerFlags};

#[test]
fn index_replies_follow_committed_entries_beacons_and_close() {
    let (f, s, _, a, _) = setup();
    let mut t = T::ready(1, &f);
    t.attach(&f, s, Seek::Last);
    assert_eq!(t.next(&f, a).status, NextIndexStatus::Retry);
    // A beacon with every entry committed: INACTIVE, never RETRY forever.
    f.with(a, |x| x.beacon = Some(5000));
    let i = t.next(&f, a);
    assert_eq!(
        (i.status, i.timestamp_end, i.stream_id),
        (NextIndexStatus::Inactive, 5000, 7)
    );
    // Entries received but not committed yet: the beacon is not usable.
    f.with(a, |x| x.uncommitted = true);
    assert_eq!(t.next(&f, a).status, NextIndexStatus::Retry);
    f.with(a, |x| x.uncommitted = false);
    f.commit_packet(a);
    f.commit_packet(a);
    let i = t.next(&f, a);
    assert_eq!(
        (i.status, i.offset, i.packet_size),
        (NextIndexStatus::Ok, 0, 4096 * 8)
    );
    assert_eq!(t.next(&f, a).offset, 4096);
    assert_eq!(t.next(&f, a).status, NextIndexStatus::Retry);
    f.with(a, |x| x.closed = true);
    assert_eq!(t.next(&f, a).status, NextIndexStatus::Hup);
    assert_eq!(
        t.next(&f, a).status,
        NextIndexStatus::Error,
        "forgotten after HUP"
    );
}

#[test]
fn a_closed_stream_is_drained_before_hup() {
    let (f, s, _, a, _) = setup();
    let mut t = T::ready(1, &f);
    t.attach(&f, s, Seek::Last);
    f.commit_packet(a);
    f.with(a, |x| {
        x.closed = true;
        x.uncommitted = true;
    });
    assert_eq!(t.next(&f, a).status, NextIndexStatus::Ok);
    assert_eq!(
        t.next(&f, a).status,
        NextIndexStatus::Retry,
        "its last entries are not committed yet"
    );
    f.with(a, |x| x.uncommitted = false);
    f.commit_packet(a);
    assert_eq!(t.next(&f, a).status, NextIndexStatus::Ok);
    assert_eq!(t.next(&f, a).status, NextIndexStatus::Hup);
}

#[test]
fn metadata_streams_answer_hup_to_get_next_index_and_flag_new_metadata() {
    let (f, s, m, a, _) = setup();
    let mut t = T::ready(1, &f);
    t.attach(&f, s, Seek::Last);
    assert_eq!(t.next(&f, m).status, NextIndexStatus::Hup);
    f.commit_packet(a);
    f.commit_packet(a);
    assert!(t.next(&f, a).flags.contains(ViewerFlags::NEW_METADATA));
    let step = t.step(&f, ViewerRequest::GetMetadata { stream_id: m }, false);
    let Step::Reply(Some(slice)) = step else {
        panic!("{step:?}")
    };
    assert_eq!((slice.offset, slice.len), (0, 8192));
    assert_eq!(
        decode(6, &t.out),
        ViewerReply::Metadata {
            status: GetMetadataStatus::Ok,
            data: &[]
        }
    );
    assert!(!t.next(&f, a).flags.contains(ViewerFlags::NEW_METADATA));
    f.with(m, |x| x.metadata = 9000);
    let Step::Reply(Some(slice)) = t.step(&f, ViewerRequest::GetMetadata { stream_id: m }, false)
    else {
        panic!()
    };
    assert_eq!(
        (slice.offset, slice.len),
        (8192, 808),
        "only the bytes not sent yet"
    );
    assert_eq!(
        t.reply(&f, ViewerRequest::GetMetadata { stream_id: m }),
        ViewerReply::Metadata {
            status: GetMetadataStatus::NoNewMetadata,
            data: &[]
        }
    );
    // Closed: NO_NEW once more, then ERR (the viewer learns the metadata stream ended).
    f.with(m, |x| x.closed = true);
    assert_eq!(
        t.reply(&f, ViewerRequest::GetMetadata { stream_id: m }),
        ViewerReply::Metadata {
            status: GetMetadataStatus::NoNewMetadata,
            data: &[]
        }
    );
    assert_eq!(
        t.reply(&f, ViewerRequest::GetMetadata { stream_id: m }),
        ViewerReply::Metadata {
            status: GetMetadataStatus::Error,
            data: &[]
        }
    );
    assert_eq!(
        t.reply(&f, ViewerRequest::GetMetadata { stream_id: a }),
        ViewerReply::Metadata {
            status: GetMetadataStatus::Error,
            data: &[]
        },
        "data stream"
    );
}

#[test]
fn get_packet_is_bounded_by_the_last_packet_sent_and_the_file() {
    let (f, s, _, a, _) = setup();
    let mut t = T::ready(1, &f);
    t.attach(&f, s, Seek::Beginning);
    let pkt = |t: &mut T, offset: u64, len: u32| {
        let step = t.step(
            &f,
            ViewerRequest::GetPacket {
                stream_id: a,
                offset,
                len,
            },
            false,
        );
        let ViewerReply::Packet { status, .. } = decode(5, &t.out) else {
            panic!()
        };
        (status, step)
    };
    assert_eq!(
        pkt(&mut t, 0, 100).0,
        GetPacketStatus::Error,
        "no index sent yet"
    );
    f.commit_packet(a);
    f.commit_packet(a);
    t.next(&f, a);
    let i = t.next(&f, a);
    assert_eq!(i.offset, 4096);
    let (st, step) = pkt(&mut t, 4096, 4096);
    assert_eq!(st, GetPacketStatus::Ok);
    let Step::Reply(Some(slice)) = step else {
        panic!()
    };
    assert_eq!(
        slice,
        crate::live::FileSlice {
            file: (a, 1 << 20),
            offset: 4096,
            len: 4096
        }
    );
    assert_eq!(
        pkt(&mut t, 6000, 2192).0,
        GetPacketStatus::Ok,
        "the rest of the packet"
    );
    assert_eq!(
        pkt(&mut t, 0, 4096).0,
        GetPacketStatus::Error,
        "the previous packet"
    );
    assert_eq!(
        pkt(&mut t, 4096, 4097).0,
        GetPacketStatus::Error,
        "past the packet"
    );
    assert_eq!(
        pkt(&mut t, 4096, u32::MAX).0,
        GetPacketStatus::Error,
        "huge length"
    );
    assert_eq!(
        pkt(&mut t, u64::MAX - 10, 100).0,
        GetPacketStatus::Error,
        "offset overflow"
    );
    f.with(a, |x| x.file_len = 9000);
    f.commit_packet(a);
    assert_eq!(t.next(&f, a).offset, 8192);
    assert_eq!(pkt(&mut t, 8192, 808).0, GetPacketStatus::Ok);
    assert_eq!(
        pkt(&mut t, 8192, 4096).0,
        GetPacketStatus::Error,
        "file shorter than the index says"
    );
}

#[test]
fn a_viewer_behind_an_overwritten_tracefile_moves_forward() {
    let (f, s, _, a, _) = setup();
    let mut t = T::ready(1, &f);
    t.attach(&f, s, Seek::Beginning);
    for _ in 0..5 {
        f.commit_packet(a);
    }
    f.with(a, |x| x.oldest = 3);
    let i = t.next(&f, a);
    assert_eq!((i.status, i.offset), (NextIndexStatus::Ok, 3 * 4096));
}

#[test]
fn retry_is_held_until_the_next_commit_when_pacing_is_on() {
    let (f, s, _, a, _) = setup();
    let mut t = T::new(
        1,
        LiveSettings {
            idle_timeout_s: 0,
            retry_hold_ms: 20,
        },
    );
    t.reply(&f, connect());
    t.reply(&f, ViewerRequest::CreateSession);
    t.attach(&f, s, Seek::Last);
    let now = t.now;
    match t.step(&f, ViewerRequest::GetNextIndex { stream_id: a }, true) {
        Step::Hold {
            stream,
            generation,
            until,
        } => {
            assert_eq!(stream, a);
            assert_eq!(generation, 0);
            assert!(until > now && until <= now + Duration::from_millis(25));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        t.next(&f, a).status,
        NextIndexStatus::Retry,
        "after the hold: answer"
    );
    f.with(a, |x| x.beacon = Some(1));
    assert!(
        matches!(
            t.step(&f, ViewerRequest::GetNextIndex { stream_id: a }, true),
            Step::Reply(None)
        ),
        "INACTIVE is never held"
    );
}

#[test]
fn two_viewers_read_one_stream_at_their_own_pace() {
    let (f, s, _, a, _) = setup();
    let mut v1 = T::ready(1, &f);
    let mut v2 = T::ready(2, &f);
    v1.attach(&f, s, Seek::Last);
    v2.attach(&f, s, Seek::Last);
    for _ in 0..3 {
        f.commit_packet(a);
    }
    let o1: Vec<u64> = (0..3).map(|_| v1.next(&f, a).offset).collect();
    assert_eq!(v2.next(&f, a).offset, 0);
    drop(v1);
    let o2: Vec<u64> = (0..2).map(|_| v2.next(&f, a).offset).collect();
    assert_eq!(o1, vec![0, 4096, 8192]);
    assert_eq!(o2, vec![4096, 8192]);
}
