//! Control port (5342): commands from the sender and, matched to them in order, the relay's
//! replies. The protocol minor that selects layouts is negotiated by VERSION: the minimum of the
//! sender's minor and the relay's (13 when the relay's bytes are not available).

use trelay_proto::lttng::relayd::{
    decode_framed, decode_reply, CloseTraceChunkReply, Command, ControlHeader, ProtocolMinor,
    Reply, RELAYD_MINOR,
};
use trelay_proto::Decoded;

use super::replies::Replies;
use super::{Side, Transcript};

/// Decodes a control connection.
pub fn dissect(client: Option<&[u8]>, server: Option<&[u8]>, t: &mut Transcript) {
    if client.is_some_and(super::native::is_native) {
        return super::native::dissect(client, server, t);
    }
    let Some(client) = client else {
        t.error(Side::Server, 0, "replies on the control port can only be decoded with the sender's bytes (the .client file)");
        return;
    };
    let mut minor = ProtocolMinor(RELAYD_MINOR);
    let mut sender_minor: Option<u32> = None;
    let mut pos = 0usize;
    let mut replies = Replies::new(server);
    while pos < client.len() {
        let rest = client.get(pos..).unwrap_or(&[]);
        let (cmd_text, kind, used, version) = match decode_framed(rest, minor) {
            Ok(Decoded::Done { msg, used }) => {
                let version = match &msg {
                    Command::Version(v) => Some(v.minor),
                    _ => None,
                };
                (command_text(&msg), msg.kind(), used, version)
            }
            Ok(Decoded::Incomplete { needed }) => {
                t.incomplete(Side::Client, pos as u64, "message", rest.len(), needed);
                return;
            }
            Err(e) => {
                let what = match ControlHeader::decode(rest) {
                    Ok(Decoded::Done { msg, .. }) => {
                        format!("command {} (data_size {}): {e}", msg.cmd, msg.data_size)
                    }
                    _ => e.to_string(),
                };
                t.error(Side::Client, pos as u64, what);
                return;
            }
        };
        t.line(Side::Client, pos as u64, cmd_text);
        if let Some(m) = version {
            sender_minor = Some(m);
            minor = ProtocolMinor(m.min(RELAYD_MINOR));
        }
        pos += used;
        if !kind.expects_reply() {
            continue;
        }
        let label = || format!("{} reply", kind.name());
        if let Some((msg, at)) = replies.next(t, label, |b| decode_reply(kind, minor, b)) {
            if let Reply::Version(v) = &msg {
                minor = ProtocolMinor(v.minor.min(sender_minor.unwrap_or(RELAYD_MINOR)));
            }
            t.line(
                Side::Server,
                at,
                format!("{} reply: {}", kind.name(), reply_text(&msg)),
            );
        }
    }
    replies.finish(t, "command");
}

fn opt(v: Option<u64>) -> String {
    v.map_or_else(|| "unset".to_owned(), |v| v.to_string())
}

fn seq(v: u64) -> String {
    if v == u64::MAX {
        "-1".to_owned()
    } else {
        v.to_string()
    }
}

/// One line for a command.
pub fn command_text(c: &Command<'_>) -> String {
    let name = c.kind().name();
    let body = match c {
        Command::Version(v) => format!("major={} minor={}", v.major, v.minor),
        Command::GetConfiguration(g) => format!("query_flags={:#x}", g.query_flags),
        Command::CreateSession(s) => format!(
            "name={:?} hostname={:?} base_path={:?} live_timer={}us snapshot={} name_has_time={} sessiond_session_id={} creation_time={} current_chunk={} sessiond_uuid={}",
            s.session_name, s.hostname, s.base_path.as_deref().unwrap_or(""), s.live_timer_us, s.snapshot,
            s.name_contains_creation_time, s.sessiond_session_id, s.creation_time, opt(s.current_chunk_id),
            hex(&s.sessiond_uuid)
        ),
        Command::AddStream(a) => format!(
            "channel={:?} path={:?} tracefile_size={} tracefile_count={} chunk={}",
            a.channel_name, a.pathname, a.tracefile_size, a.tracefile_count, a.trace_chunk_id
        ),
        Command::SendMetadata(m) => format!(
            "stream={} bytes={} padding={}{}",
            m.stream_id, m.data.len(), m.padding_size, metadata_hint(m.data)
        ),
        Command::SendIndex(i) if i.is_beacon() => format!(
            "BEACON stream={} net_seq={} timestamp_end={} class={}",
            i.relay_stream_id, seq(i.net_seq.0), i.timestamp_end, i.stream_class_id
        ),
        Command::SendIndex(i) => format!(
            "stream={} net_seq={} packet_size={} content_size={} begin={} end={} discarded={} class={} instance={} seq={}",
            i.relay_stream_id, i.net_seq, i.packet_size, i.content_size, i.timestamp_begin, i.timestamp_end,
            i.events_discarded, i.stream_class_id, seq(i.stream_instance_id), seq(i.packet_seq_num)
        ),
        Command::CloseStream(s) => format!("stream={} last_net_seq={}", s.stream_id, seq(s.last_net_seq.0)),
        Command::DataPending(d) => format!("stream={} last_net_seq={}", d.stream_id, seq(d.last_net_seq.0)),
        Command::QuiescentControl(s) => format!("stream={s}"),
        Command::BeginDataPending(s) | Command::EndDataPending(s) => format!("session={s}"),
        Command::TraceChunkExists(id) => format!("chunk={id}"),
        Command::ResetMetadata(r) => format!("stream={} version={}", r.stream_id, r.version),
        Command::CreateTraceChunk(c) => format!(
            "chunk={} created={} name={}",
            c.chunk_id, c.creation_timestamp, c.override_name.as_deref().map_or("(generated)".to_owned(), |n| format!("{n:?}"))
        ),
        Command::CloseTraceChunk(c) => format!(
            "chunk={} closed={} command={}",
            c.chunk_id, c.close_timestamp, c.close_command.map_or("unset".to_owned(), |c| format!("{c:?}"))
        ),
        Command::RotateStreams(r) => {
            let pos: Vec<String> = r.positions.iter().map(|p| format!("{}@{}", p.stream_id, p.rotate_at_seq_num)).collect();
            format!("new_chunk={} positions=[{}]", opt(r.new_chunk_id), pos.join(", "))
        }
        Command::StartData | Command::StreamsSent => String::new(),
    };
    if body.is_empty() {
        name.to_owned()
    } else {
        format!("{name} {body}")
    }
}

fn metadata_hint(data: &[u8]) -> String {
    match data.get(..4).and_then(|b| <[u8; 4]>::try_from(b).ok()) {
        Some(b) if u32::from_le_bytes(b) == trelay_proto::ctf::packet::METADATA_MAGIC => {
            " (packetized metadata, LE)".to_owned()
        }
        Some(b) if u32::from_be_bytes(b) == trelay_proto::ctf::packet::METADATA_MAGIC => {
            " (packetized metadata, BE)".to_owned()
        }
        _ => String::new(),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// One line for a reply.
pub fn reply_text(r: &Reply) -> String {
    match r {
        Reply::Generic(rc) => format!("{rc}"),
        Reply::Version(v) => format!("major={} minor={}", v.major, v.minor),
        Reply::Configuration(c) => format!(
            "{} flags={:#x} (clear {})",
            c.ret_code,
            c.flags.0,
            if c.flags.clear_allowed() {
                "allowed"
            } else {
                "not allowed"
            }
        ),
        Reply::CreateSession(s) => format!(
            "session={} {} path={:?}",
            s.session_id,
            s.ret_code,
            s.output_path.as_deref().unwrap_or("")
        ),
        Reply::AddStream(a) => format!("handle={} {}", seq(a.handle.0), a.ret_code),
        Reply::Pending(p) if p.0 == u32::MAX => "-1 (unknown stream)".to_owned(),
        Reply::Pending(p) => format!(
            "{} ({})",
            p.0,
            if p.0 == 0 { "not pending" } else { "pending" }
        ),
        Reply::CloseTraceChunk(CloseTraceChunkReply::Closed { path }) => {
            format!("LTTNG_OK path={path:?}")
        }
        Reply::CloseTraceChunk(CloseTraceChunkReply::Failed {
            ret_code,
            path_length,
        }) => {
            format!("{ret_code} path_length={path_length}")
        }
        Reply::TraceChunkExists(e) => format!("{} exists={}", e.ret_code, e.exists),
    }
}
