//! Strategies producing valid commands and replies for every negotiated minor.

use proptest::prelude::*;
use trelay_proto::lttng::relayd::{
    AddStream, AddStreamLayout, AddStreamReply, CloseCommand, CloseStream, CloseTraceChunk,
    CloseTraceChunkReply, Command, CommandKind, ConfigurationFlags, ConfigurationReply,
    CreateSession, CreateSessionLayout, CreateSessionReply, CreateTraceChunk, DataPending,
    GetConfiguration, PendingReply, ProtocolMinor, Reply, ResetMetadata, ReturnCode,
    RotatePosition, RotateStreams, SendIndex, TraceChunkExistsReply, Version,
};
use trelay_proto::{NetSeq, SessionId, StreamId, TraceFormat};

/// Text without NUL, up to `max` characters.
pub fn text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::char::range('a', 'z'),
            1 => Just('/'),
            1 => Just('-'),
            1 => prop::char::range('\u{1}', '\u{7f}'),
            1 => prop::char::range('\u{80}', '\u{10ffff}'),
        ],
        0..=max,
    )
    .prop_map(|cs| cs.into_iter().collect::<String>())
}

/// Text of at most `max_bytes` bytes.
pub fn text_bytes(max_bytes: usize) -> impl Strategy<Value = String> {
    text(max_bytes).prop_map(move |mut s| {
        while s.len() > max_bytes {
            s.pop();
        }
        s
    })
}

pub fn minor() -> impl Strategy<Value = ProtocolMinor> {
    (0u32..18).prop_map(ProtocolMinor)
}

pub fn create_session(minor: ProtocolMinor) -> BoxedStrategy<CreateSession> {
    match minor.create_session_layout() {
        CreateSessionLayout::Empty => Just(CreateSession::default()).boxed(),
        CreateSessionLayout::V2_4 => (text_bytes(254), text_bytes(63), any::<u32>(), any::<bool>())
            .prop_map(
                |(session_name, hostname, live_timer_us, snapshot)| CreateSession {
                    session_name,
                    hostname,
                    live_timer_us,
                    snapshot,
                    ..CreateSession::default()
                },
            )
            .boxed(),
        layout @ (CreateSessionLayout::V2_11 | CreateSessionLayout::V2_15) => (
            (
                text_bytes(254),
                text_bytes(255),
                prop::option::of(text_bytes(300)),
            ),
            (
                any::<u32>(),
                any::<bool>(),
                any::<bool>(),
                any::<[u8; 16]>(),
            ),
            (any::<u64>(), any::<u64>(), any::<Option<u64>>()),
            // The trace format travels only from 2.15 on; below, it decodes as CTF 1.8.
            if layout == CreateSessionLayout::V2_15 {
                prop::sample::select(TraceFormat::ALL.to_vec()).boxed()
            } else {
                Just(TraceFormat::Ctf1_8).boxed()
            },
        )
            .prop_map(
                |((name, host, base), (live, snap, ct, uuid), (sid, ctime, chunk), format)| {
                    CreateSession {
                        session_name: name,
                        hostname: host,
                        base_path: base,
                        live_timer_us: live,
                        snapshot: snap,
                        name_contains_creation_time: ct,
                        sessiond_uuid: uuid,
                        sessiond_session_id: sid,
                        creation_time: ctime,
                        current_chunk_id: chunk,
                        trace_format: format,
                    }
                },
            )
            .boxed(),
    }
}

pub fn add_stream(minor: ProtocolMinor) -> impl Strategy<Value = AddStream> {
    let layout = minor.add_stream_layout();
    (
        text_bytes(263),
        text_bytes(400),
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(move |(channel_name, pathname, size, count, chunk)| {
            let mut a = AddStream {
                channel_name,
                pathname,
                ..AddStream::default()
            };
            if layout != AddStreamLayout::V2_1 {
                (a.tracefile_size, a.tracefile_count) = (size, count);
            }
            if layout == AddStreamLayout::V2_11 {
                a.trace_chunk_id = chunk;
            }
            a
        })
}

pub fn send_index(minor: ProtocolMinor) -> impl Strategy<Value = SendIndex> {
    (any::<[u64; 8]>(), any::<u64>(), any::<u64>()).prop_map(move |(f, inst, psn)| {
        let extended = minor.has_extended_index();
        SendIndex {
            relay_stream_id: StreamId(f[0]),
            net_seq: NetSeq(f[1]),
            packet_size: f[2],
            content_size: f[3],
            timestamp_begin: f[4],
            timestamp_end: f[5],
            events_discarded: f[6],
            stream_class_id: f[7],
            stream_instance_id: if extended { inst } else { u64::MAX },
            packet_seq_num: if extended { psn } else { u64::MAX },
        }
    })
}

pub fn close_command() -> impl Strategy<Value = Option<CloseCommand>> {
    prop::option::of(prop_oneof![
        Just(CloseCommand::MoveToCompleted),
        Just(CloseCommand::NoOperation),
        Just(CloseCommand::Delete),
    ])
}

/// Every command that exists at `minor` (SEND_METADATA is tested apart: it borrows).
pub fn command(minor: ProtocolMinor) -> BoxedStrategy<Command<'static>> {
    let m = minor.0;
    let mut all: Vec<BoxedStrategy<Command<'static>>> = vec![
        create_session(minor)
            .prop_map(Command::CreateSession)
            .boxed(),
        add_stream(minor).prop_map(Command::AddStream).boxed(),
        Just(Command::StartData).boxed(),
        any::<(u32, u32)>()
            .prop_map(|(major, minor)| Command::Version(Version { major, minor }))
            .boxed(),
        any::<(u64, u64)>()
            .prop_map(|(s, n)| {
                Command::CloseStream(CloseStream {
                    stream_id: StreamId(s),
                    last_net_seq: NetSeq(n),
                })
            })
            .boxed(),
        any::<(u64, u64)>()
            .prop_map(|(s, n)| {
                Command::DataPending(DataPending {
                    stream_id: StreamId(s),
                    last_net_seq: NetSeq(n),
                })
            })
            .boxed(),
        any::<u64>()
            .prop_map(|s| Command::QuiescentControl(StreamId(s)))
            .boxed(),
        any::<u64>()
            .prop_map(|s| Command::BeginDataPending(SessionId(s)))
            .boxed(),
        any::<u64>()
            .prop_map(|s| Command::EndDataPending(SessionId(s)))
            .boxed(),
        any::<u64>()
            .prop_map(|q| Command::GetConfiguration(GetConfiguration { query_flags: q }))
            .boxed(),
    ];
    if m >= 4 {
        all.push(send_index(minor).prop_map(Command::SendIndex).boxed());
        all.push(Just(Command::StreamsSent).boxed());
    }
    if m >= 8 {
        all.push(
            any::<(u64, u64)>()
                .prop_map(|(s, v)| {
                    Command::ResetMetadata(ResetMetadata {
                        stream_id: StreamId(s),
                        version: v,
                    })
                })
                .boxed(),
        );
    }
    if m >= 11 {
        all.push(
            (
                any::<Option<u64>>(),
                prop::collection::vec(any::<(u64, u64)>(), 0..40),
            )
                .prop_map(|(new_chunk_id, ps)| {
                    Command::RotateStreams(RotateStreams {
                        new_chunk_id,
                        positions: ps
                            .into_iter()
                            .map(|(s, at)| RotatePosition {
                                stream_id: StreamId(s),
                                rotate_at_seq_num: at,
                            })
                            .collect(),
                    })
                })
                .boxed(),
        );
        all.push(
            (
                any::<u64>(),
                any::<u64>(),
                prop::option::of(text_bytes(254)),
            )
                .prop_map(|(chunk_id, creation_timestamp, override_name)| {
                    Command::CreateTraceChunk(CreateTraceChunk {
                        chunk_id,
                        creation_timestamp,
                        override_name,
                    })
                })
                .boxed(),
        );
        all.push(
            (any::<u64>(), any::<u64>(), close_command())
                .prop_map(|(chunk_id, close_timestamp, close_command)| {
                    Command::CloseTraceChunk(CloseTraceChunk {
                        chunk_id,
                        close_timestamp,
                        close_command,
                    })
                })
                .boxed(),
        );
        all.push(any::<u64>().prop_map(Command::TraceChunkExists).boxed());
    }
    prop::strategy::Union::new(all).boxed()
}

pub fn minor_and_command() -> impl Strategy<Value = (ProtocolMinor, Command<'static>)> {
    minor().prop_flat_map(|m| (Just(m), command(m)))
}

pub fn code() -> impl Strategy<Value = ReturnCode> {
    prop_oneof![
        Just(ReturnCode::OK),
        Just(ReturnCode::UNK),
        any::<u32>().prop_map(ReturnCode)
    ]
}

/// A command kind and a reply of the shape it gets at `minor`.
pub fn reply(minor: ProtocolMinor) -> BoxedStrategy<(CommandKind, Reply)> {
    let generic = prop::sample::select(vec![
        CommandKind::StartData,
        CommandKind::CloseStream,
        CommandKind::QuiescentControl,
        CommandKind::BeginDataPending,
        CommandKind::SendIndex,
        CommandKind::StreamsSent,
        CommandKind::ResetMetadata,
        CommandKind::RotateStreams,
        CommandKind::CreateTraceChunk,
    ]);
    let with_path = minor.has_trace_chunks();
    prop_oneof![
        (generic, code()).prop_map(|(k, c)| (k, Reply::Generic(c))),
        any::<(u32, u32)>().prop_map(|(major, minor)| (
            CommandKind::Version,
            Reply::Version(Version { major, minor })
        )),
        (code(), any::<u64>()).prop_map(|(ret_code, f)| (
            CommandKind::GetConfiguration,
            Reply::Configuration(ConfigurationReply {
                ret_code,
                flags: ConfigurationFlags(f)
            })
        )),
        (any::<u64>(), code(), prop::option::of(text_bytes(400))).prop_map(
            move |(id, ret_code, path)| (
                CommandKind::CreateSession,
                Reply::CreateSession(CreateSessionReply {
                    session_id: SessionId(id),
                    ret_code,
                    output_path: path.filter(|_| with_path),
                })
            )
        ),
        (any::<u64>(), code()).prop_map(|(h, ret_code)| (
            CommandKind::AddStream,
            Reply::AddStream(AddStreamReply {
                handle: StreamId(h),
                ret_code
            })
        )),
        (
            prop::sample::select(vec![CommandKind::DataPending, CommandKind::EndDataPending]),
            any::<u32>()
        )
            .prop_map(|(k, v)| (k, Reply::Pending(PendingReply(v)))),
        text_bytes(4094).prop_map(|path| (
            CommandKind::CloseTraceChunk,
            Reply::CloseTraceChunk(CloseTraceChunkReply::Closed { path })
        )),
        (
            any::<u32>().prop_filter("not OK", |c| *c != 10),
            any::<u32>()
        )
            .prop_map(|(c, n)| (
                CommandKind::CloseTraceChunk,
                Reply::CloseTraceChunk(CloseTraceChunkReply::Failed {
                    ret_code: ReturnCode(c),
                    path_length: n
                })
            )),
        (code(), any::<bool>()).prop_map(|(ret_code, exists)| (
            CommandKind::TraceChunkExists,
            Reply::TraceChunkExists(TraceChunkExistsReply { ret_code, exists })
        )),
    ]
    .boxed()
}
