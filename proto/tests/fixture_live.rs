//! Decodes the live port (5344) conversation of the LTTng 2.13 fixture request by request and
//! reply by reply, re-encodes every message byte for byte, and checks what the viewer was told
//! against what lttng-relayd wrote to disk.
//!
//! The captured fixed-size text fields are zero-padded after their NUL (checked below), so exact
//! re-encoding holds for every message.

mod fixture_support;

use std::collections::HashMap;

use fixture_support::{fixture, read, trace_dir};
use trelay_proto::ctf::index::IndexFile;
use trelay_proto::ctf::packet::{extract_tsdl, PacketHeader, WordSize};
use trelay_proto::lttng::live::{
    decode_reply, decode_request, ConnectReply, ConnectionType, GetMetadataStatus, GetPacketStatus,
    NextIndexStatus, Seek, StreamRecord, ViewerFlags, ViewerReply, ViewerRequest,
};
use trelay_proto::{Decoded, StreamId};

fn requests() -> Vec<ViewerRequest> {
    let client = read(fixture().join("streams/5344-0.client"));
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < client.len() {
        let Decoded::Done { msg, used } = decode_request(&client[pos..]).unwrap() else {
            panic!("incomplete request at {pos}");
        };
        let mut again = Vec::new();
        msg.encode(&mut again);
        assert_eq!(
            again,
            &client[pos..pos + used],
            "request {} re-encodes",
            out.len()
        );
        out.push(msg);
        pos += used;
    }
    assert_eq!(pos, client.len());
    out
}

/// Every reply, paired with its request, each re-encoded and compared.
fn conversation(server: &[u8]) -> Vec<(ViewerRequest, ViewerReply<'_>)> {
    let mut out = Vec::new();
    let mut pos = 0;
    for req in requests() {
        let Decoded::Done { msg, used } = decode_reply(req.command(), &server[pos..]).unwrap()
        else {
            panic!("incomplete reply to {req:?} at {pos}");
        };
        let mut again = Vec::new();
        msg.encode(&mut again);
        assert_eq!(
            again,
            &server[pos..pos + used],
            "reply to {req:?} re-encodes"
        );
        pos += used;
        out.push((req, msg));
    }
    assert_eq!(pos, server.len(), "nothing left over on the server side");
    out
}

#[test]
fn requests_decode_and_reencode() {
    let reqs = requests();
    assert_eq!(reqs.len(), 173);
    let ViewerRequest::Connect(c) = reqs[0] else {
        panic!("first request is {:?}", reqs[0]);
    };
    assert!(c.viewer_session_id.is_unset());
    assert_eq!(
        (c.major, c.minor, c.conn_type),
        (2, 4, ConnectionType::Command)
    );
    assert_eq!(reqs[1], ViewerRequest::CreateSession);
    assert_eq!(reqs[2], ViewerRequest::ListSessions);
    assert!(matches!(
        reqs[3],
        ViewerRequest::AttachSession {
            seek: Seek::Last,
            ..
        }
    ));
    let gets = reqs
        .iter()
        .filter(|r| matches!(r, ViewerRequest::GetNextIndex { .. }));
    assert_eq!(gets.count(), 147);
}

#[test]
fn replies_decode_reencode_and_agree_with_disk() {
    let server = read(fixture().join("streams/5344-0.server"));
    assert_eq!(server.len(), 125_516);
    let conv = conversation(&server);

    let ViewerReply::Connect(connect) = &conv[0].1 else {
        panic!("first reply {:?}", conv[0].1)
    };
    let expected = ConnectReply {
        viewer_session_id: 1.into(),
        major: 2,
        minor: 13,
        conn_type: 0,
    };
    assert_eq!(*connect, expected);

    let sessions: Vec<_> = conv
        .iter()
        .filter_map(|(_, r)| match r {
            ViewerReply::ListSessions(s) => Some(s.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    assert!(sessions
        .iter()
        .any(|s| s.session_name == "fx3754" && s.hostname == "vm" && s.live_timer == 200_000));

    let mut streams: HashMap<StreamId, StreamRecord> = HashMap::new();
    for (_, r) in &conv {
        if let ViewerReply::AttachSession { streams: s, .. }
        | ViewerReply::NewStreams { streams: s, .. } = r
        {
            streams.extend(s.iter().map(|s| (s.id, s.clone())));
        }
    }
    let mut names: Vec<_> = streams.values().map(|s| s.channel_name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["channel0_0", "channel0_1", "metadata"]);
    for s in streams.values() {
        assert_eq!(s.path_name, "ust/uid/0/64-bit");
        assert_eq!(s.is_metadata(), s.channel_name == "metadata");
        assert_eq!(s.ctf_trace_id, 1.into());
    }
    check_streams_reencode_with_zero_padding(&server);

    let mut ok_indexes = 0;
    let mut new_stream_flag_seen = false;
    let mut last_index: HashMap<StreamId, (u64, u64)> = HashMap::new();
    let mut packets_checked = 0;
    let mut metadata = Vec::new();
    for (req, reply) in &conv {
        match (req, reply) {
            (ViewerRequest::GetNextIndex { stream_id }, ViewerReply::NextIndex(idx)) => {
                if idx.status != NextIndexStatus::Ok {
                    continue;
                }
                ok_indexes += 1;
                new_stream_flag_seen |= idx.flags.contains(ViewerFlags::NEW_STREAM);
                let channel = &streams[stream_id].channel_name;
                let data_len = std::fs::metadata(trace_dir().join(channel)).unwrap().len();
                assert!(
                    idx.offset + idx.packet_size / 8 <= data_len,
                    "{idx:?} inside {channel}"
                );
                let entries =
                    IndexFile::parse(&read(trace_dir().join(format!("index/{channel}.idx"))))
                        .unwrap()
                        .entries;
                let entry = entries
                    .iter()
                    .find(|e| e.offset == idx.offset)
                    .expect("entry on disk");
                assert_eq!(
                    (
                        entry.packet_size,
                        entry.content_size,
                        entry.timestamp_begin,
                        entry.timestamp_end
                    ),
                    (
                        idx.packet_size,
                        idx.content_size,
                        idx.timestamp_begin,
                        idx.timestamp_end
                    )
                );
                last_index.insert(*stream_id, (idx.offset, idx.packet_size / 8));
            }
            (
                ViewerRequest::GetPacket {
                    stream_id,
                    offset,
                    len,
                },
                ViewerReply::Packet {
                    status,
                    flags,
                    data,
                },
            ) => {
                assert_eq!((*status, *flags), (GetPacketStatus::Ok, ViewerFlags::NONE));
                assert_eq!(data.len(), *len as usize);
                assert_eq!(&data[..4], &[0xc1, 0x1f, 0xfc, 0xc1]);
                let (idx_offset, idx_len) = last_index[stream_id];
                assert!(*offset >= idx_offset && offset + u64::from(*len) <= idx_offset + idx_len);
                let file = read(trace_dir().join(&streams[stream_id].channel_name));
                let at = *offset as usize;
                assert_eq!(
                    *data,
                    &file[at..at + data.len()],
                    "packet bytes match the data file"
                );
                let Decoded::Done { msg: header, .. } =
                    PacketHeader::decode(data, WordSize::Bits64).unwrap()
                else {
                    panic!("short packet header")
                };
                assert_eq!(header.packet_size / 8, idx_len);
                packets_checked += 1;
            }
            (
                ViewerRequest::GetMetadata { .. },
                ViewerReply::Metadata {
                    status: GetMetadataStatus::Ok,
                    data,
                },
            ) => metadata.extend_from_slice(data),
            _ => {}
        }
    }
    assert_eq!(ok_indexes, 8);
    assert!(new_stream_flag_seen, "an OK index carried NEW_STREAM");
    assert_eq!(packets_checked, 8);
    assert_eq!(
        metadata,
        read(trace_dir().join("metadata")),
        "metadata served = file"
    );
    let tsdl = extract_tsdl(&metadata).unwrap();
    assert_eq!(tsdl.used, metadata.len());
    let text = String::from_utf8(tsdl.text).unwrap();
    assert!(text.starts_with("/* CTF 1.8 */"));
    assert!(text.contains("freq = 1000000000;"));
}

/// The capture's text fields are zero after their NUL, which is what makes exact re-encoding
/// possible; this checks that premise directly on the raw bytes of the stream records.
fn check_streams_reencode_with_zero_padding(server: &[u8]) {
    let needle = b"ust/uid/0/64-bit\0";
    let mut found = 0;
    for (at, _) in server
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| w == needle)
    {
        let field = &server[at..at + 4096];
        assert!(field[needle.len()..].iter().all(|&b| b == 0));
        found += 1;
    }
    assert_eq!(found, 3);
}
