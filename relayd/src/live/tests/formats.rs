//! Trace formats and live minors: a viewer below 15 never lists nor attaches a CTF 2 session; a
//! viewer at 15 gets 2.15 session records with the format of each session.

use super::*;
use trelay_proto::lttng::live::{decode_reply_at, AttachStatus, Command as LiveCommand};
use trelay_proto::TraceFormat;

/// Two live sessions: 1 "s" (CTF 1.8, from `setup`) and 2 "two" (CTF 2), each with streams.
fn two_formats() -> (Fake, SessionId, SessionId) {
    let (f, s, ..) = setup();
    let c2 = f.session(2, "two", 200_000);
    f.announce(c2, 11, 2, true);
    f.announce(c2, 12, 2, false);
    f.set_format(c2, TraceFormat::Ctf2);
    (f, s, c2)
}

fn list_at(t: &mut T, f: &Fake, minor: u32) -> Vec<trelay_proto::lttng::live::SessionRecord> {
    let step = t.step(f, ViewerRequest::ListSessions, false);
    assert!(matches!(step, Step::Reply(None)));
    match decode_reply_at(LiveCommand::ListSessions, minor, &t.out) {
        Ok(Decoded::Done {
            msg: ViewerReply::ListSessions(s),
            used,
        }) => {
            assert_eq!(used, t.out.len(), "trailing bytes");
            s
        }
        other => panic!("{other:?}"),
    }
}

fn status(r: ViewerReply<'_>) -> AttachStatus {
    match r {
        ViewerReply::AttachSession { status, .. } => status,
        other => panic!("{other:?}"),
    }
}

#[test]
fn viewers_below_15_never_see_ctf2_sessions() {
    let (f, s, c2) = two_formats();
    for minor in [4, 13, 14] {
        let mut t = T::ready_at(1, &f, minor);
        let list = list_at(&mut t, &f, minor);
        let ids: Vec<_> = list.iter().map(|r| r.id).collect();
        assert_eq!(ids, vec![s], "minor {minor}");
        assert_eq!(list[0].trace_format, TraceFormat::Ctf1_8);
        // Attaching to it by id: unknown session, and the connection goes on.
        assert_eq!(
            status(t.attach(&f, c2, Seek::Beginning)),
            AttachStatus::Unknown
        );
        assert_eq!(status(t.attach(&f, s, Seek::Beginning)), AttachStatus::Ok);
        assert_eq!(t.v.attached_sessions(), vec![s]);
    }
}

#[test]
fn viewers_at_15_list_both_formats_with_2_15_records() {
    let (f, s, c2) = two_formats();
    for announced in [15, 16, 100] {
        let mut t = T::ready_at(1, &f, announced);
        let list = list_at(&mut t, &f, 15);
        let got: Vec<_> = list
            .iter()
            .map(|r| (r.id, r.session_name.as_str(), r.trace_format))
            .collect();
        assert_eq!(
            got,
            vec![
                (s, "s", TraceFormat::Ctf1_8),
                (c2, "two", TraceFormat::Ctf2)
            ],
            "announced {announced}"
        );
        assert_eq!(status(t.attach(&f, c2, Seek::Beginning)), AttachStatus::Ok);
    }
}

#[test]
fn connect_reply_announces_15_whatever_the_viewer_says() {
    let f = Fake::default();
    for minor in [4, 13, 15, 99] {
        let mut t = T::new(1, LiveSettings::default());
        match t.reply(&f, connect_at(minor)) {
            ViewerReply::Connect(c) => assert_eq!((c.major, c.minor), (2, 15)),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn reconnecting_below_15_drops_ctf2_attachments() {
    let (f, s, c2) = two_formats();
    let mut t = T::ready_at(1, &f, 15);
    assert_eq!(status(t.attach(&f, c2, Seek::Beginning)), AttachStatus::Ok);
    assert_eq!(status(t.attach(&f, s, Seek::Beginning)), AttachStatus::Ok);
    t.reply(&f, connect_at(4));
    assert_eq!(t.v.attached_sessions(), vec![s]);
    // Its CTF 2 streams are gone with the attachment.
    let meta2 = StreamId(11);
    match t.reply(&f, ViewerRequest::GetMetadata { stream_id: meta2 }) {
        ViewerReply::Metadata { status, .. } => {
            assert_eq!(status, trelay_proto::lttng::live::GetMetadataStatus::Error)
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        status(t.attach(&f, c2, Seek::Beginning)),
        AttachStatus::Unknown
    );
}
