//! Handshake, listing, attach/detach, stream discovery and the per-viewer NEW_STREAM flag.

use super::*;
use trelay_proto::codec::DecodeError;
use trelay_proto::lttng::live::{
    AttachStatus, DetachStatus, NewStreamsStatus, NextIndexStatus, ViewerFlags,
};

#[test]
fn commands_before_connect_close_the_connection() {
    let (f, s, ..) = setup();
    let mut t = T::new(1, LiveSettings::default());
    let step = t.step(&f, ViewerRequest::ListSessions, false);
    assert!(matches!(step, Step::Close(_)));
    let step = t.step(
        &f,
        ViewerRequest::AttachSession {
            session_id: s,
            offset: 0,
            seek: Seek::Last,
        },
        false,
    );
    assert!(matches!(step, Step::Close(_)));
}

#[test]
fn connect_answers_2_15_with_the_viewer_id_and_refuses_other_majors() {
    let f = Fake::default();
    let mut t = T::new(42, LiveSettings::default());
    match t.reply(&f, connect()) {
        ViewerReply::Connect(c) => {
            assert_eq!(
                (c.viewer_session_id, c.major, c.minor),
                (ViewerSessionId(42), 2, 15)
            );
        }
        other => panic!("{other:?}"),
    }
    let mut t = T::new(43, LiveSettings::default());
    let bad = ViewerRequest::Connect(ConnectRequest {
        viewer_session_id: ViewerSessionId::UNSET,
        major: 3,
        minor: 0,
        conn_type: ConnectionType::Command,
    });
    assert!(matches!(t.step(&f, bad, false), Step::Close(_)));
}

#[test]
fn unknown_command_gets_err_unk_then_close_and_bad_seek_gets_seek_err() {
    let f = Fake::default();
    let mut t = T::ready(1, &f);
    let now = t.now;
    let step =
        t.v.handle_undecodable(77, &DecodeError::UnknownCommand(77), now, &mut t.out);
    assert!(matches!(step, Step::Close(_)));
    assert_eq!(t.out, 11u32.to_be_bytes());
    let mut t = T::ready(2, &f);
    let err = DecodeError::InvalidValue {
        field: "attach.seek",
        value: 9,
    };
    let step = t.v.handle_undecodable(3, &err, now, &mut t.out);
    assert!(matches!(step, Step::Reply(None)));
    assert_eq!(
        decode(3, &t.out),
        ViewerReply::AttachSession {
            status: AttachStatus::SeekError,
            streams: vec![]
        }
    );
}

#[test]
fn list_shows_open_live_sessions_with_short_names_and_their_viewer_count() {
    let (f, s, ..) = setup();
    f.session(2, "notlive", 0);
    let long = f.session(3, "long", 1000);
    if let Some(x) = f.sessions.borrow_mut().get_mut(&long) {
        x.info.hostname = "h".repeat(64);
    }
    let closed = f.session(4, "closed", 1000);
    f.close_session(closed);
    let ok = f.session(5, "edge", 1000);
    if let Some(x) = f.sessions.borrow_mut().get_mut(&ok) {
        x.info.hostname = "h".repeat(63);
    }
    let mut a = T::ready(1, &f);
    let mut b = T::ready(2, &f);
    a.attach(&f, s, Seek::Last);
    b.attach(&f, s, Seek::Last);
    let ViewerReply::ListSessions(list) = a.reply(&f, ViewerRequest::ListSessions) else {
        panic!()
    };
    let ids: Vec<u64> = list.iter().map(|r| r.id.0).collect();
    assert_eq!(ids, vec![1, 5]);
    assert_eq!(list[0].clients, 2, "two viewers attached to one session");
    drop(b);
    let ViewerReply::ListSessions(list) = a.reply(&f, ViewerRequest::ListSessions) else {
        panic!()
    };
    assert_eq!(list[0].clients, 1, "a closed viewer connection detaches");
}

#[test]
fn attach_checks_viewer_session_existence_and_liveness() {
    let (f, s, ..) = setup();
    let nl = f.session(2, "notlive", 0);
    let mut t = T::new(1, LiveSettings::default());
    t.reply(&f, connect());
    let st = |r| match r {
        ViewerReply::AttachSession { status, .. } => status,
        other => panic!("{other:?}"),
    };
    assert_eq!(st(t.attach(&f, s, Seek::Last)), AttachStatus::NoSession);
    t.reply(&f, ViewerRequest::CreateSession);
    t.reply(&f, ViewerRequest::CreateSession);
    assert_eq!(
        st(t.attach(&f, SessionId(99), Seek::Last)),
        AttachStatus::Unknown
    );
    assert_eq!(st(t.attach(&f, nl, Seek::Last)), AttachStatus::NotLive);
    assert_eq!(st(t.attach(&f, s, Seek::Last)), AttachStatus::Ok);
}

#[test]
fn attach_offers_metadata_first_and_only_data_of_traces_with_metadata() {
    let (f, s, m, a, b) = setup();
    let orphan = f.announce(s, 9, 2, false);
    let mut t = T::ready(1, &f);
    let ViewerReply::AttachSession { status, streams } = t.attach(&f, s, Seek::Last) else {
        panic!()
    };
    assert_eq!(status, AttachStatus::Ok);
    let ids: Vec<StreamId> = streams.iter().map(|r| r.id).collect();
    assert_eq!(ids, vec![m, a, b]);
    assert!(streams[0].is_metadata());
    // The orphan's trace gets its metadata: the orphan is offered then, from its beginning.
    f.commit_packet(orphan);
    let m2 = f.announce(s, 10, 2, true);
    let ViewerReply::NewStreams { status, streams } =
        t.reply(&f, ViewerRequest::GetNewStreams { session_id: s })
    else {
        panic!()
    };
    assert_eq!(status, NewStreamsStatus::Ok);
    assert_eq!(
        streams.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![m2, orphan]
    );
    // Its metadata is announced but none of it is committed: nothing to read yet.
    let r = t.next(&f, orphan);
    assert_eq!(
        r.status,
        NextIndexStatus::Retry,
        "a packet before any metadata"
    );
    assert!(r.flags.contains(ViewerFlags::NEW_METADATA));
    f.with(m2, |x| x.metadata = 4096);
    assert_eq!(
        t.next(&f, orphan).status,
        NextIndexStatus::Ok,
        "seek beginning for later streams"
    );
    assert!(f.scanned.borrow().len() >= 2);
}

#[test]
fn seek_last_skips_what_was_committed_before_attach_and_beginning_does_not() {
    let (f, s, _, a, _) = setup();
    f.commit_packet(a);
    f.commit_packet(a);
    let mut last = T::ready(1, &f);
    last.attach(&f, s, Seek::Last);
    let mut first = T::ready(2, &f);
    first.attach(&f, s, Seek::Beginning);
    assert_eq!(last.next(&f, a).status, NextIndexStatus::Retry);
    let i = first.next(&f, a);
    assert_eq!((i.status, i.offset), (NextIndexStatus::Ok, 0));
    f.commit_packet(a);
    let i = last.next(&f, a);
    assert_eq!((i.status, i.offset), (NextIndexStatus::Ok, 2 * 4096));
}

#[test]
fn each_viewer_has_its_own_new_stream_flag() {
    let (f, s, _, a, _) = setup();
    let mut v1 = T::ready(1, &f);
    let mut v2 = T::ready(2, &f);
    v1.attach(&f, s, Seek::Last);
    v2.attach(&f, s, Seek::Last);
    let c = f.announce(s, 4, 1, false);
    f.commit_packet(a);
    f.commit_packet(a);
    let i1 = v1.next(&f, a);
    assert!(i1.flags.contains(ViewerFlags::NEW_STREAM));
    let ViewerReply::NewStreams { streams, .. } =
        v1.reply(&f, ViewerRequest::GetNewStreams { session_id: s })
    else {
        panic!()
    };
    assert_eq!(streams.iter().map(|r| r.id).collect::<Vec<_>>(), vec![c]);
    assert!(!v1.next(&f, a).flags.contains(ViewerFlags::NEW_STREAM));
    // v2 did not ask yet: its flag stays up, on every OK reply.
    assert!(v2.next(&f, a).flags.contains(ViewerFlags::NEW_STREAM));
    assert!(v2.next(&f, a).flags.contains(ViewerFlags::NEW_STREAM));
    // Never offered twice.
    let ViewerReply::NewStreams { streams, .. } =
        v1.reply(&f, ViewerRequest::GetNewStreams { session_id: s })
    else {
        panic!()
    };
    assert!(streams.is_empty());
}

#[test]
fn streams_of_sessions_not_attached_are_refused() {
    let (f, s, _, a, _) = setup();
    let other = f.session(2, "other", 1000);
    let mut t = T::ready(1, &f);
    t.attach(&f, other, Seek::Last);
    assert_eq!(t.next(&f, a).status, NextIndexStatus::Error);
    let ViewerReply::NewStreams { status, .. } =
        t.reply(&f, ViewerRequest::GetNewStreams { session_id: s })
    else {
        panic!()
    };
    assert_eq!(status, NewStreamsStatus::Error);
    let ViewerReply::Packet { status, .. } = t.reply(
        &f,
        ViewerRequest::GetPacket {
            stream_id: a,
            offset: 0,
            len: 10,
        },
    ) else {
        panic!()
    };
    assert_eq!(status, trelay_proto::lttng::live::GetPacketStatus::Error);
}

#[test]
fn detach_forgets_the_streams_and_reports_unknown_sessions() {
    let (f, s, _, a, _) = setup();
    let mut t = T::ready(1, &f);
    t.attach(&f, s, Seek::Last);
    assert_eq!(
        t.reply(&f, ViewerRequest::DetachSession { session_id: s }),
        ViewerReply::DetachSession(DetachStatus::Ok)
    );
    assert_eq!(t.next(&f, a).status, NextIndexStatus::Error);
    assert_eq!(
        t.reply(&f, ViewerRequest::DetachSession { session_id: s }),
        ViewerReply::DetachSession(DetachStatus::Error)
    );
    assert_eq!(
        t.reply(
            &f,
            ViewerRequest::DetachSession {
                session_id: SessionId(77)
            }
        ),
        ViewerReply::DetachSession(DetachStatus::Unknown)
    );
    assert_eq!(f.viewers.borrow()[&s], 0);
}

#[test]
fn new_streams_hup_once_the_closed_session_is_drained() {
    let (f, s, m, a, b) = setup();
    let mut t = T::ready(1, &f);
    t.attach(&f, s, Seek::Last);
    f.commit_packet(a);
    f.close_session(s);
    let ns = |t: &mut T| match t.reply(&f, ViewerRequest::GetNewStreams { session_id: s }) {
        ViewerReply::NewStreams { status, .. } => status,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        ns(&mut t),
        NewStreamsStatus::Ok,
        "packet and metadata left to read"
    );
    assert_eq!(t.next(&f, a).status, NextIndexStatus::Ok);
    assert_eq!(t.next(&f, a).status, NextIndexStatus::Hup);
    assert_eq!(t.next(&f, b).status, NextIndexStatus::Hup);
    assert_eq!(ns(&mut t), NewStreamsStatus::Ok, "metadata not read yet");
    t.reply(&f, ViewerRequest::GetMetadata { stream_id: m });
    assert_eq!(ns(&mut t), NewStreamsStatus::Hup);
}

#[test]
fn idle_deadline_follows_the_last_request() {
    let f = Fake::default();
    let mut t = T::new(
        1,
        LiveSettings {
            idle_timeout_s: 5,
            retry_hold_ms: 0,
        },
    );
    t.reply(&f, connect());
    assert_eq!(t.v.idle_deadline(), Some(t.now + Duration::from_secs(5)));
    let t2 = T::new(
        2,
        LiveSettings {
            idle_timeout_s: 0,
            retry_hold_ms: 0,
        },
    );
    assert_eq!(t2.v.idle_deadline(), None);
}
