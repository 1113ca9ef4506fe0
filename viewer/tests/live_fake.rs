//! The live mirror against a scripted relay serving the fixture's trace: RETRY, INACTIVE and the
//! NEW_METADATA flag on the way, packets fetched in small chunks, HUP at the end. The mirror must
//! hold the same packets as the fixture and pass `check`. A relay sending a path that escapes the
//! output folder is refused.

mod support;

use support::fake_relay::*;

use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use support::*;
use trelay_proto::ctf::index::IndexFile;
use trelay_proto::lttng::live::*;
use trelay_viewer::live::{mirror, LiveError, LiveOptions};

/// Serves one connection: session "s" of host "h" with the fixture's metadata and channel0_0.
fn serve(listener: TcpListener, path: &'static str) -> Vec<ViewerRequest> {
    let dir = fixture().join("relay-out").join(TRACE_REL);
    let metadata = std::fs::read(dir.join("metadata")).unwrap();
    let data = std::fs::read(dir.join("channel0_0")).unwrap();
    let idx = IndexFile::parse(&std::fs::read(dir.join("index/channel0_0.idx")).unwrap()).unwrap();
    let (mut s, _) = listener.accept().unwrap();
    let mut seen = Vec::new();
    let mut next = 0usize;
    let mut polls = 0u32;
    let mut metadata_sent = false;
    let mut hup_sent = false;
    let streams = [
        stream(3, true, path, "metadata"),
        stream(1, false, path, "channel0_0"),
    ];
    while let Some(req) = read_request(&mut s) {
        seen.push(req);
        if answer_setup(&mut s, &req, &streams) {
            continue;
        }
        match req {
            ViewerRequest::GetMetadata { .. } => {
                // Nothing at first; the metadata arrives with the NEW_METADATA flag.
                let give = polls >= 2 && !metadata_sent;
                metadata_sent |= give;
                if give {
                    send(
                        &mut s,
                        ViewerReply::Metadata {
                            status: GetMetadataStatus::Ok,
                            data: &metadata,
                        },
                    );
                } else {
                    send(
                        &mut s,
                        ViewerReply::Metadata {
                            status: GetMetadataStatus::NoNewMetadata,
                            data: &[],
                        },
                    );
                }
            }
            ViewerRequest::GetNextIndex { .. } => {
                polls += 1;
                let reply = match polls {
                    1 => IndexReply::bare(NextIndexStatus::Retry, ViewerFlags::NONE),
                    2 => IndexReply::inactive(3_404_753_749_000, 0, ViewerFlags::NONE),
                    _ if next < idx.entries.len() => {
                        let flags = if next == 0 {
                            ViewerFlags::NEW_METADATA
                        } else {
                            ViewerFlags::NONE
                        };
                        next += 1;
                        IndexReply::from_entry(&idx.entries[next - 1], flags)
                    }
                    _ => {
                        hup_sent = true;
                        IndexReply::bare(NextIndexStatus::Hup, ViewerFlags::NONE)
                    }
                };
                send(&mut s, ViewerReply::NextIndex(reply));
            }
            ViewerRequest::GetPacket { offset, len, .. } => {
                let (o, l) = (offset as usize, len as usize);
                send(
                    &mut s,
                    ViewerReply::Packet {
                        status: GetPacketStatus::Ok,
                        flags: ViewerFlags::NONE,
                        data: &data[o..o + l],
                    },
                );
            }
            ViewerRequest::GetNewStreams { .. } => {
                let status = if hup_sent {
                    NewStreamsStatus::Hup
                } else {
                    NewStreamsStatus::NoNew
                };
                send(
                    &mut s,
                    ViewerReply::NewStreams {
                        status,
                        streams: vec![],
                    },
                );
            }
            _ => unreachable!("answered by answer_setup"),
        }
    }
    seen
}

fn options(port: u16, out: &Path) -> LiveOptions {
    let mut o = LiveOptions::new(
        format!("net://127.0.0.1:{port}/host/h/s").parse().unwrap(),
        out.to_owned(),
    );
    o.poll = std::time::Duration::from_millis(5);
    o.chunk = 5000;
    o
}

#[test]
fn mirrors_a_scripted_session() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let relay = std::thread::spawn(move || serve(listener, "ust/uid/0/64-bit"));
    let t = tempfile::tempdir().unwrap();
    let mut lines = Vec::new();
    let stats = mirror(&options(port, t.path()), &AtomicBool::new(false), |l| {
        lines.push(l.clone());
        Ok(())
    })
    .unwrap();
    let seen = relay.join().unwrap();
    assert_eq!(stats.packets, 5);
    assert_eq!(lines.len(), 5);
    assert!(!stats.detached);
    // Packets were fetched in chunks of at most 5000 bytes.
    assert!(seen
        .iter()
        .any(|r| matches!(r, ViewerRequest::GetPacket { len: 5000, .. })));
    assert!(seen
        .iter()
        .all(|r| !matches!(r, ViewerRequest::GetPacket { len, .. } if *len > 5000)));
    let fx = fixture().join("relay-out").join(TRACE_REL);
    let mine = t.path().join("ust/uid/0/64-bit");
    assert_eq!(
        std::fs::read(mine.join("channel0_0")).unwrap(),
        std::fs::read(fx.join("channel0_0")).unwrap()
    );
    assert_eq!(
        std::fs::read(mine.join("index/channel0_0.idx")).unwrap(),
        std::fs::read(fx.join("index/channel0_0.idx")).unwrap()
    );
    assert_eq!(
        std::fs::read(mine.join("metadata")).unwrap(),
        std::fs::read(fx.join("metadata")).unwrap()
    );
    let r = trelay_viewer::check::check(t.path()).unwrap();
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(
        lines[0].begin_time.as_deref(),
        Some("2026-11-23T06:22:24.841015497Z")
    );
}

#[test]
fn refuses_paths_escaping_the_output() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let relay = std::thread::spawn(move || serve(listener, "../escape"));
    let t = tempfile::tempdir().unwrap();
    let out = t.path().join("out");
    let err = mirror(&options(port, &out), &AtomicBool::new(false), |_| Ok(())).unwrap_err();
    assert!(
        matches!(&err, LiveError::Protocol(m) if m.contains("unsafe path component")),
        "{err}"
    );
    relay.join().unwrap();
    assert!(!t.path().join("escape").exists());
}
