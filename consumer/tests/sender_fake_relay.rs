//! The sender against a scripted relay (decoding with trelay-proto): the exact command sequence
//! of a 2.13 consumer from session creation to destroy, the data port bytes, and typed errors
//! for refusals, old relays and dropped connections.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use trelay_consumer::sender::{RelaySession, SendError, SessionConfig};
use trelay_proto::ctf::index::IndexEntry;
use trelay_proto::lttng::relayd::{
    decode_command, AddStreamReply, CloseTraceChunkReply, Command, CommandKind, ConfigurationFlags,
    ConfigurationReply, ControlHeader, CreateSessionReply, DataHeader, PendingReply, ProtocolMinor,
    Reply, ReturnCode, TraceChunkExistsReply, Version, CONTROL_HEADER_LEN, DATA_HEADER_LEN,
};
use trelay_proto::{Decoded, SessionId, StreamId};

/// How the fake answers.
#[derive(Clone, Copy, Default)]
struct Script {
    relay_minor: u32,
    refuse: Option<CommandKind>,
    hang_up_after: Option<CommandKind>,
    /// SEND_INDEX replies UNK from this (0-based) index on.
    refuse_index_from: Option<usize>,
}

#[derive(Default)]
struct Log {
    commands: Vec<String>,
    data: Vec<(u64, u64, u32, u32, usize)>,
}

async fn fake_relay(
    script: Script,
) -> (std::net::SocketAddr, std::net::SocketAddr, Arc<Mutex<Log>>) {
    let ctrl = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let data = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (ca, da) = (ctrl.local_addr().unwrap(), data.local_addr().unwrap());
    let log = Arc::new(Mutex::new(Log::default()));
    let l = log.clone();
    tokio::spawn(async move {
        let (mut s, _) = ctrl.accept().await.unwrap();
        let mut minor = ProtocolMinor(13);
        let mut handles = 0u64;
        let mut indexes = 0usize;
        loop {
            let mut h = [0u8; CONTROL_HEADER_LEN];
            if s.read_exact(&mut h).await.is_err() {
                return;
            }
            let Ok(Decoded::Done { msg: header, .. }) = ControlHeader::decode(&h) else {
                return;
            };
            let mut p = vec![0u8; header.data_size as usize];
            s.read_exact(&mut p).await.unwrap();
            let cmd = decode_command(&header, &p, minor).expect("well-formed command");
            let kind = cmd.kind();
            let entry = match &cmd {
                Command::AddStream(a) => format!("ADD_STREAM {} {}", a.channel_name, a.pathname),
                Command::SendIndex(i) if i.is_beacon() => {
                    format!("BEACON {} {}", i.relay_stream_id, i.timestamp_end)
                }
                Command::SendIndex(i) => format!("SEND_INDEX {} {}", i.relay_stream_id, i.net_seq),
                Command::SendMetadata(m) => format!(
                    "SEND_METADATA {} {}+{}",
                    m.stream_id,
                    m.data.len(),
                    m.padding_size
                ),
                Command::DataPending(d) => {
                    format!("DATA_PENDING {} {}", d.stream_id, d.last_net_seq)
                }
                Command::CloseStream(c) => {
                    format!("CLOSE_STREAM {} {}", c.stream_id, c.last_net_seq)
                }
                Command::RotateStreams(r) => format!(
                    "ROTATE_STREAMS {:?} {:?}",
                    r.new_chunk_id,
                    r.positions
                        .iter()
                        .map(|p| (p.stream_id.0, p.rotate_at_seq_num))
                        .collect::<Vec<_>>()
                ),
                Command::CreateSession(c) => format!(
                    "CREATE_SESSION {} {} {}",
                    c.session_name, c.hostname, c.live_timer_us
                ),
                _ => kind.name().to_owned(),
            };
            l.lock().unwrap().commands.push(entry);
            let code = if script.refuse == Some(kind) {
                ReturnCode::UNK
            } else {
                ReturnCode::OK
            };
            let reply = match cmd {
                Command::Version(_) => {
                    minor = ProtocolMinor(script.relay_minor.min(13));
                    Some(Reply::Version(Version {
                        major: 2,
                        minor: script.relay_minor,
                    }))
                }
                Command::GetConfiguration(_) => Some(Reply::Configuration(ConfigurationReply {
                    ret_code: code,
                    flags: ConfigurationFlags(1),
                })),
                Command::CreateSession(c) => Some(Reply::CreateSession(CreateSessionReply {
                    session_id: SessionId(7),
                    ret_code: code,
                    output_path: Some(format!("{}/{}-20260101-000000", c.hostname, c.session_name)),
                })),
                Command::AddStream(_) => {
                    handles += 1;
                    Some(Reply::AddStream(AddStreamReply {
                        handle: StreamId(handles),
                        ret_code: code,
                    }))
                }
                Command::SendMetadata(_) => None,
                Command::SendIndex(_) => {
                    indexes += 1;
                    let bad = script.refuse_index_from.is_some_and(|n| indexes > n);
                    Some(Reply::Generic(if bad { ReturnCode::UNK } else { code }))
                }
                Command::DataPending(_) | Command::EndDataPending(_) => {
                    Some(Reply::Pending(PendingReply::NOT_PENDING))
                }
                Command::CloseTraceChunk(_) => {
                    Some(Reply::CloseTraceChunk(CloseTraceChunkReply::Closed {
                        path: "host/s-20260101-000000".into(),
                    }))
                }
                Command::TraceChunkExists(_) => {
                    Some(Reply::TraceChunkExists(TraceChunkExistsReply {
                        ret_code: code,
                        exists: false,
                    }))
                }
                _ => Some(Reply::Generic(code)),
            };
            if let Some(r) = reply {
                let mut b = Vec::new();
                r.encode(minor, &mut b);
                s.write_all(&b).await.unwrap();
            }
            if script.hang_up_after == Some(kind) {
                return;
            }
        }
    });
    let l = log.clone();
    tokio::spawn(async move {
        let (mut s, _) = data.accept().await.unwrap();
        loop {
            let mut h = [0u8; DATA_HEADER_LEN];
            if s.read_exact(&mut h).await.is_err() {
                return;
            }
            let Decoded::Done { msg: dh, .. } = DataHeader::decode(&h) else {
                return;
            };
            let mut p = vec![0u8; dh.data_size as usize];
            s.read_exact(&mut p).await.unwrap();
            let magic_ok = p.get(..4) == Some(&[0xc1, 0x1f, 0xfc, 0xc1][..]);
            l.lock().unwrap().data.push((
                dh.stream_id.0,
                dh.net_seq.0,
                dh.data_size,
                dh.padding_size,
                usize::from(magic_ok),
            ));
        }
    });
    (ca, da, log)
}

fn config() -> SessionConfig {
    let mut c = SessionConfig::new("sess", "host");
    c.connect_timeout = Duration::from_secs(5);
    c.live_timer_us = 500;
    c
}

fn packet(seq: u64) -> (Vec<u8>, IndexEntry) {
    let mut g = trelay_consumer::synth::StreamGenerator::new([1; 16], 0, 4096).unwrap();
    for _ in 0..seq {
        g.next_packet();
    }
    let p = g.next_packet();
    (p.content.to_vec(), p.index)
}

#[tokio::test]
async fn full_session_sequence() {
    let (c, d, log) = fake_relay(Script {
        relay_minor: 13,
        ..Script::default()
    })
    .await;
    let mut cfg = config();
    cfg.index_window = 3;
    let mut s = RelaySession::connect(c, d, &cfg).await.unwrap();
    assert_eq!(s.output_path(), "host/sess-20260101-000000");
    assert_eq!(s.id(), SessionId(7));
    assert!(s.clear_allowed());
    let a = s.add_stream("chan_0", "ust/uid/0/64-bit").await.unwrap();
    let b = s.add_stream("chan_1", "ust/uid/0/64-bit").await.unwrap();
    let m = s.add_stream("metadata", "ust/uid/0/64-bit").await.unwrap();
    s.streams_sent().await.unwrap();
    s.send_metadata(m, b"tsdl", 4092).await.unwrap();
    for k in 0..3 {
        let (content, idx) = packet(k);
        s.send_packet(a, &content, (4096 - content.len()) as u32, Some(&idx))
            .await
            .unwrap();
    }
    s.send_beacon(b, 42).await.unwrap();
    assert_eq!(s.packets_sent(a), 3);
    let path = s.close(Duration::from_secs(5)).await.unwrap();
    assert_eq!(path, "host/s-20260101-000000");
    let log = log.lock().unwrap();
    let expected = [
        "VERSION",
        "GET_CONFIGURATION",
        "CREATE_SESSION sess host 500",
        "CREATE_TRACE_CHUNK",
        "ADD_STREAM chan_0 ust/uid/0/64-bit",
        "ADD_STREAM chan_1 ust/uid/0/64-bit",
        "ADD_STREAM metadata ust/uid/0/64-bit",
        "STREAMS_SENT",
        "SEND_METADATA 3 4+4092",
        "SEND_INDEX 1 0",
        "SEND_INDEX 1 1",
        "SEND_INDEX 1 2",
        // Beacon of a stream that sent nothing: last net seq all ones, date 42.
        "BEACON 2 42",
        "BEGIN_DATA_PENDING",
        "DATA_PENDING 1 2",
        "DATA_PENDING 2 18446744073709551615",
        "QUIESCENT_CONTROL",
        "END_DATA_PENDING",
        "ROTATE_STREAMS None [(1, 3), (2, 0)]",
        "ROTATE_STREAMS None [(3, 0)]",
        "CLOSE_TRACE_CHUNK",
        "TRACE_CHUNK_EXISTS",
        "CLOSE_STREAM 3 18446744073709551615",
        "CLOSE_STREAM 2 18446744073709551615",
        "CLOSE_STREAM 1 2",
    ];
    assert_eq!(log.commands, expected);
    assert_eq!(log.data.len(), 3);
    for (k, (stream, seq, size, pad, magic)) in log.data.iter().enumerate() {
        assert_eq!((*stream, *seq, *magic), (1, k as u64, 1));
        assert_eq!(size + pad, 4096);
    }
}

#[tokio::test]
async fn refusals_are_typed_errors() {
    let (c, d, _) = fake_relay(Script {
        relay_minor: 13,
        refuse: Some(CommandKind::AddStream),
        ..Script::default()
    })
    .await;
    let mut s = RelaySession::connect(c, d, &config()).await.unwrap();
    match s.add_stream("chan_0", "ust").await {
        Err(SendError::Refused {
            cmd: "ADD_STREAM",
            code: 11,
        }) => {}
        other => panic!("{other:?}"),
    }

    let (c, d, _) = fake_relay(Script {
        relay_minor: 10,
        ..Script::default()
    })
    .await;
    match RelaySession::connect(c, d, &config()).await {
        Err(SendError::Version {
            major: 2,
            minor: 10,
        }) => {}
        other => panic!("{other:?}"),
    }

    let (c, d, _) = fake_relay(Script {
        relay_minor: 13,
        refuse: Some(CommandKind::CreateSession),
        ..Script::default()
    })
    .await;
    let e = RelaySession::connect(c, d, &config()).await.unwrap_err();
    assert!(
        e.to_string().contains("CREATE_SESSION") && e.to_string().contains("LTTNG_ERR_UNK"),
        "{e}"
    );
}

#[tokio::test]
async fn pipelined_index_refusal_surfaces() {
    let (c, d, _) = fake_relay(Script {
        relay_minor: 13,
        refuse_index_from: Some(2),
        ..Script::default()
    })
    .await;
    let mut cfg = config();
    cfg.index_window = 8;
    let mut s = RelaySession::connect(c, d, &cfg).await.unwrap();
    let a = s.add_stream("chan_0", "ust").await.unwrap();
    let (content, idx) = packet(0);
    for _ in 0..4 {
        s.send_packet(a, &content, 0, Some(&idx)).await.unwrap();
    }
    assert!(s.control().indexes_in_flight() > 0);
    match s.control().drain_indexes().await {
        Err(SendError::Refused {
            cmd: "SEND_INDEX",
            code: 11,
        }) => {}
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn dropped_connection_is_an_io_error() {
    let (c, d, _) = fake_relay(Script {
        relay_minor: 13,
        hang_up_after: Some(CommandKind::CreateTraceChunk),
        ..Script::default()
    })
    .await;
    let mut s = RelaySession::connect(c, d, &config()).await.unwrap();
    match s.add_stream("chan_0", "ust").await {
        Err(SendError::Io {
            cmd: "ADD_STREAM", ..
        }) => {}
        other => panic!("{other:?}"),
    }
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    assert!(matches!(
        RelaySession::connect(addr, addr, &config()).await,
        Err(SendError::Connect {
            what: "control",
            ..
        })
    ));
}
