//! A relay that serves packets before their trace's metadata (as a loaded relay may: the
//! metadata is committed after the first indexes) and commits the metadata's last part only
//! after every data stream hung up, saying HUP for the session only once that part was read.
//! The client must neither convert packet times before the clock is known nor stop fetching
//! metadata once the data streams are done — else its times are wrong and it never ends.

mod support;

use support::fake_relay::*;

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use support::*;
use trelay_proto::ctf::index::IndexFile;
use trelay_proto::lttng::live::*;
/// Where the scripted relay's trace lies.
const PATH: &str = "ust/uid/0/64-bit";
use trelay_viewer::live::{mirror, LiveOptions};

fn serve(listener: TcpListener) {
    let dir = fixture().join("relay-out").join(TRACE_REL);
    let metadata = std::fs::read(dir.join("metadata")).unwrap();
    let data = std::fs::read(dir.join("channel0_0")).unwrap();
    let idx = IndexFile::parse(&std::fs::read(dir.join("index/channel0_0.idx")).unwrap()).unwrap();
    // The first metadata packet holds the clock and the stream class; the second comes late.
    let first_part = 4096.min(metadata.len());
    let (mut s, _) = listener.accept().unwrap();
    let (mut next, mut md_polls, mut md_sent) = (0usize, 0u32, 0usize);
    let mut hup_sent = false;
    let mut md_gone = false;
    let streams = [
        stream(3, true, PATH, "metadata"),
        stream(1, false, PATH, "channel0_0"),
    ];
    while let Some(req) = read_request(&mut s) {
        if answer_setup(&mut s, &req, &streams) {
            continue;
        }
        match req {
            ViewerRequest::GetMetadata { .. } => {
                md_polls += 1;
                let committed = match (md_polls, hup_sent) {
                    (..=3, _) => 0,
                    (_, false) => first_part,
                    (_, true) => metadata.len(),
                };
                let status = if md_gone {
                    GetMetadataStatus::Error
                } else if committed > md_sent {
                    GetMetadataStatus::Ok
                } else {
                    md_gone = hup_sent && md_sent == metadata.len();
                    GetMetadataStatus::NoNewMetadata
                };
                let data: &[u8] = match status {
                    GetMetadataStatus::Ok => &metadata[md_sent..committed],
                    _ => &[],
                };
                md_sent += data.len();
                send(&mut s, ViewerReply::Metadata { status, data });
            }
            ViewerRequest::GetNextIndex { .. } => {
                // No NEW_METADATA flag anywhere: the client must not rely on it.
                let reply = if next < idx.entries.len() {
                    next += 1;
                    IndexReply::from_entry(&idx.entries[next - 1], ViewerFlags::NONE)
                } else {
                    hup_sent = true;
                    IndexReply::bare(NextIndexStatus::Hup, ViewerFlags::NONE)
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
                // HUP only once the session is drained, metadata included.
                let status = if hup_sent && md_sent == metadata.len() {
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
}

#[test]
fn waits_for_the_clock_and_drains_late_metadata_before_ending() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let relay = std::thread::spawn(move || serve(listener));
    let t = tempfile::tempdir().unwrap();
    let mut o = LiveOptions::new(
        format!("net://127.0.0.1:{port}/host/h/s").parse().unwrap(),
        t.path().to_owned(),
    );
    o.poll = Duration::from_millis(5);
    let stop = AtomicBool::new(false);
    let (lines, stats) = std::thread::scope(|sc| {
        let run = sc.spawn(|| {
            let mut lines = Vec::new();
            let r = mirror(&o, &stop, |l| {
                lines.push(l.clone());
                Ok(())
            });
            (lines, r)
        });
        let start = Instant::now();
        while !run.is_finished() && start.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(10));
        }
        stop.store(true, Ordering::Relaxed);
        let (lines, r) = run.join().unwrap();
        (lines, r.unwrap())
    });
    relay.join().unwrap();
    assert!(!stats.detached, "the session never ended");
    assert_eq!(lines.len(), 5);
    for l in &lines {
        let begin = l.begin_time.as_deref().unwrap_or("none");
        assert!(
            begin.starts_with("2026-11-23T"),
            "{begin}: clock not applied"
        );
    }
    let fx = fixture().join("relay-out").join(TRACE_REL);
    assert_eq!(
        std::fs::read(t.path().join("ust/uid/0/64-bit/metadata")).unwrap(),
        std::fs::read(fx.join("metadata")).unwrap()
    );
}
