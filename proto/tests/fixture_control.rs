//! Decodes the control (5342) and data (5343) conversations of the LTTng 2.13 fixture message by
//! message, re-encodes every message byte for byte, and checks what was announced against what
//! lttng-relayd wrote to disk.

mod fixture_support;

use std::collections::{BTreeMap, HashMap};

use fixture_support::{fixture, read, trace_dir};
use trelay_proto::lttng::relayd::{
    decode_command, decode_reply, AddStreamReply, CloseTraceChunkReply, Command, CommandKind,
    ConfigurationFlags, ControlHeader, DataHeader, PendingReply, ProtocolMinor, Reply, ReturnCode,
    Version, CONTROL_HEADER_LEN, RELAYD_MINOR,
};
use trelay_proto::{Decoded, NetSeq, SessionId, StreamId};

/// CTF packet magic as the x86 tracer writes it.
const PACKET_MAGIC: [u8; 4] = [0xc1, 0x1f, 0xfc, 0xc1];
/// Offset (in the payload) and size of ROTATE_STREAMS' uninitialized padding.
const ROTATE_PADDING: std::ops::Range<usize> = 5..12;

/// One command of the capture with its wire bytes (header included).
struct Captured<'a> {
    cmd: Command<'a>,
    wire: &'a [u8],
}

/// The negotiated minor: the client's VERSION against the relay's VERSION reply.
fn negotiated(client: &[u8], server: &[u8]) -> ProtocolMinor {
    let Decoded::Done { msg: h, used } = ControlHeader::decode(client).unwrap() else {
        panic!("no first header");
    };
    let Command::Version(ours) =
        decode_command(&h, &client[used..used + h.payload_len()], ProtocolMinor(0)).unwrap()
    else {
        panic!("first command is not VERSION");
    };
    let Decoded::Done {
        msg: Reply::Version(theirs),
        ..
    } = decode_reply(CommandKind::Version, ProtocolMinor(0), server).unwrap()
    else {
        panic!("first reply is not a VERSION reply");
    };
    assert_eq!(
        ours,
        Version {
            major: 2,
            minor: 13
        }
    );
    assert_eq!(
        theirs,
        Version {
            major: 2,
            // Recorded from lttng-relayd 2.13; trelay now announces 15.
            minor: 13
        }
    );
    assert_eq!(RELAYD_MINOR, 15);
    ProtocolMinor::negotiate(ours.minor, theirs.minor)
}

/// Every command of `client`, each re-encoded and compared with its bytes.
fn commands(client: &[u8], minor: ProtocolMinor) -> Vec<Captured<'_>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < client.len() {
        let rest = &client[pos..];
        let Decoded::Done { msg: h, used } = ControlHeader::decode(rest).unwrap() else {
            panic!("truncated header at {pos}");
        };
        assert_eq!(used, CONTROL_HEADER_LEN);
        let end = used + h.payload_len();
        assert!(end <= rest.len(), "payload past the end at {pos}");
        let cmd = decode_command(&h, &rest[used..end], minor)
            .unwrap_or_else(|e| panic!("command {} at {pos}: {e}", out.len()));
        let wire = &rest[..end];
        let mut again = Vec::new();
        cmd.encode(minor, &mut again);
        let mut expected = wire.to_vec();
        if cmd.kind() == CommandKind::RotateStreams {
            for i in ROTATE_PADDING {
                expected[CONTROL_HEADER_LEN + i] = 0;
            }
        }
        assert_eq!(
            again,
            expected,
            "command {} ({:?}) re-encodes",
            out.len(),
            cmd.kind()
        );
        out.push(Captured { cmd, wire });
        pos += end;
    }
    assert_eq!(pos, client.len());
    out
}

/// The reply to every command that gets one, each re-encoded and compared.
fn replies(cmds: &[Captured<'_>], server: &[u8], minor: ProtocolMinor) -> Vec<Option<Reply>> {
    let mut pos = 0;
    let mut out = Vec::new();
    for c in cmds {
        let kind = c.cmd.kind();
        if !kind.expects_reply() {
            out.push(None);
            continue;
        }
        let Decoded::Done { msg, used } = decode_reply(kind, minor, &server[pos..]).unwrap() else {
            panic!("reply to {kind} at {pos} truncated");
        };
        let mut again = Vec::new();
        msg.encode(minor, &mut again);
        assert_eq!(
            again,
            &server[pos..pos + used],
            "reply to {kind} re-encodes"
        );
        assert_eq!(again.len(), msg.encoded_len(minor));
        out.push(Some(msg));
        pos += used;
    }
    assert_eq!(pos, server.len(), "bytes left after the last reply");
    out
}

#[test]
fn control_conversation_decodes_and_re_encodes() {
    let client = read(fixture().join("streams/5342-0.client"));
    let server = read(fixture().join("streams/5342-0.server"));
    let minor = negotiated(&client, &server);
    assert_eq!(minor, ProtocolMinor(13));
    let cmds = commands(&client, minor);

    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for c in &cmds {
        *counts.entry(c.cmd.kind().name()).or_default() += 1;
    }
    let count = |k: CommandKind| counts.get(k.name()).copied().unwrap_or(0);
    let kinds: Vec<CommandKind> = cmds.iter().map(|c| c.cmd.kind()).collect();
    assert_eq!(
        kinds[..8],
        [
            CommandKind::Version,
            CommandKind::GetConfiguration,
            CommandKind::CreateSession,
            CommandKind::CreateTraceChunk,
            CommandKind::AddStream,
            CommandKind::AddStream,
            CommandKind::AddStream,
            CommandKind::StreamsSent,
        ]
    );
    assert_eq!(count(CommandKind::AddStream), 3);
    assert_eq!(count(CommandKind::SendMetadata), 1);
    assert_eq!(count(CommandKind::RotateStreams), 2);
    assert_eq!(count(CommandKind::CloseTraceChunk), 1);
    assert_eq!(count(CommandKind::CloseStream), 3);
    assert_eq!(count(CommandKind::BeginDataPending), 2);
    assert_eq!(count(CommandKind::EndDataPending), 2);
    assert_eq!(count(CommandKind::TraceChunkExists), 1);
    assert_eq!(count(CommandKind::SendIndex), 56);
    assert_eq!(kinds.last(), Some(&CommandKind::CloseStream));

    let indexes: Vec<_> = cmds
        .iter()
        .filter_map(|c| match c.cmd {
            Command::SendIndex(i) => Some(i),
            _ => None,
        })
        .collect();
    let beacons = indexes.iter().filter(|i| i.is_beacon()).count();
    assert!(beacons > 0 && beacons < indexes.len(), "{beacons} beacons");
    assert!(indexes
        .iter()
        .all(|i| i.is_beacon() == (i.packet_size == 0)));

    match &cmds[2].cmd {
        Command::CreateSession(s) => {
            assert_eq!(s.session_name, "fx3754");
            assert_eq!(s.hostname, "vm");
            assert_eq!(s.base_path.as_deref(), Some(""));
            assert_eq!(s.live_timer_us, 200_000);
            assert_eq!(s.current_chunk_id, None);
        }
        other => panic!("{other:?}"),
    }
    let rotations: Vec<_> = cmds
        .iter()
        .filter_map(|c| match &c.cmd {
            Command::RotateStreams(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(rotations[0].new_chunk_id, None);
    let at: Vec<_> = rotations[0]
        .positions
        .iter()
        .map(|p| (p.stream_id.0, p.rotate_at_seq_num))
        .collect();
    assert_eq!(at, [(1, 5), (2, 3)]);
    assert_eq!(rotations[1].positions.len(), 1);
    let closes: Vec<_> = cmds
        .iter()
        .filter_map(|c| match c.cmd {
            Command::CloseStream(s) => Some((s.stream_id, s.last_net_seq)),
            _ => None,
        })
        .collect();
    assert_eq!(closes[0], (StreamId(3), NetSeq::UNSET));
    let chunk_close = cmds.iter().find_map(|c| match c.cmd {
        Command::CloseTraceChunk(c) => Some(c),
        _ => None,
    });
    assert_eq!(
        chunk_close.map(|c| (c.chunk_id, c.close_command)),
        Some((0, None))
    );

    check_replies(&cmds, &replies(&cmds, &server, minor));
}

fn check_replies(cmds: &[Captured<'_>], replies: &[Option<Reply>]) {
    let mut handles = Vec::new();
    for (c, r) in cmds.iter().zip(replies) {
        match (&c.cmd, r) {
            (Command::SendMetadata(_), None) => {}
            (Command::Version(_), Some(Reply::Version(v))) => assert_eq!(v.minor, 13),
            (Command::GetConfiguration(_), Some(Reply::Configuration(cfg))) => {
                assert!(cfg.ret_code.is_ok());
                assert_eq!(cfg.flags, ConfigurationFlags::CLEAR_ALLOWED);
            }
            (Command::CreateSession(_), Some(Reply::CreateSession(s))) => {
                assert_eq!(s.session_id, SessionId(1));
                assert!(s.ret_code.is_ok());
                assert_eq!(s.output_path.as_deref(), Some("vm/fx3754-20261123-062223"));
            }
            (
                Command::AddStream(a),
                Some(Reply::AddStream(AddStreamReply { handle, ret_code })),
            ) => {
                assert!(ret_code.is_ok());
                handles.push((handle.0, a.channel_name.clone()));
            }
            (Command::DataPending(_) | Command::EndDataPending(_), Some(Reply::Pending(p))) => {
                assert_eq!(*p, PendingReply::NOT_PENDING);
            }
            (Command::CloseTraceChunk(_), Some(Reply::CloseTraceChunk(r))) => {
                assert_eq!(
                    r,
                    &CloseTraceChunkReply::Closed {
                        path: "vm/fx3754-20261123-062223".into()
                    }
                );
            }
            (Command::TraceChunkExists(0), Some(Reply::TraceChunkExists(t))) => {
                assert!(t.ret_code.is_ok() && !t.exists);
            }
            (_, Some(Reply::Generic(rc))) => assert_eq!(*rc, ReturnCode::OK, "{:?}", c.cmd.kind()),
            (cmd, reply) => panic!("unexpected pair {:?} / {reply:?}", cmd.kind()),
        }
    }
    assert_eq!(
        handles,
        [
            (1, "channel0_0".to_owned()),
            (2, "channel0_1".to_owned()),
            (3, "metadata".to_owned())
        ]
    );
}

#[test]
fn data_conversation_matches_the_files_on_disk() {
    let control = read(fixture().join("streams/5342-0.client"));
    let server = read(fixture().join("streams/5342-0.server"));
    let minor = negotiated(&control, &server);
    let cmds = commands(&control, minor);
    let replies = replies(&cmds, &server, minor);
    let names: HashMap<StreamId, String> = cmds
        .iter()
        .zip(&replies)
        .filter_map(|(c, r)| match (&c.cmd, r) {
            (Command::AddStream(a), Some(Reply::AddStream(r))) => {
                Some((r.handle, a.channel_name.clone()))
            }
            _ => None,
        })
        .collect();
    let packet_bits: HashMap<(StreamId, NetSeq), u64> = cmds
        .iter()
        .filter_map(|c| match c.cmd {
            Command::SendIndex(i) if !i.is_beacon() => {
                Some(((i.relay_stream_id, i.net_seq), i.packet_size))
            }
            _ => None,
        })
        .collect();

    let data = read(fixture().join("streams/5343-0.client"));
    let mut per_stream: BTreeMap<StreamId, u64> = BTreeMap::new();
    let mut next_seq: HashMap<StreamId, u64> = HashMap::new();
    let mut pos = 0;
    let mut packets = 0;
    while pos < data.len() {
        let Decoded::Done { msg: h, used } = DataHeader::decode(&data[pos..]) else {
            panic!("truncated data header at {pos}");
        };
        assert_eq!(h.to_bytes(), data[pos..pos + used]);
        let payload = &data[pos + used..pos + used + h.data_size as usize];
        assert_eq!(payload[..4], PACKET_MAGIC, "packet {packets} magic");
        let seq = next_seq.entry(h.stream_id).or_default();
        assert_eq!(h.net_seq, NetSeq(*seq), "net_seq of stream {}", h.stream_id);
        *seq += 1;
        assert_eq!(
            packet_bits.get(&(h.stream_id, h.net_seq)),
            Some(&(h.total_len() * 8))
        );
        *per_stream.entry(h.stream_id).or_default() += h.total_len();
        pos += used + h.data_size as usize;
        packets += 1;
    }
    assert_eq!(pos, data.len());
    assert!(packets > 0);
    assert_eq!(packets, packet_bits.len(), "every index has its packet");
    assert_eq!(per_stream.len(), 2);
    for (id, total) in &per_stream {
        let name = &names[id];
        assert!(name.starts_with("channel0_"), "{name}");
        let on_disk = std::fs::metadata(trace_dir().join(name)).unwrap().len();
        assert_eq!(*total, on_disk, "stream {id} ({name})");
    }

    let metadata: u64 = cmds
        .iter()
        .filter_map(|c| match c.cmd {
            Command::SendMetadata(m) => Some(m.total_len()),
            _ => None,
        })
        .sum();
    let on_disk = std::fs::metadata(trace_dir().join("metadata"))
        .unwrap()
        .len();
    assert_eq!(metadata, on_disk);
    assert!(cmds.iter().all(|c| c.wire.len() >= CONTROL_HEADER_LEN));
}
