//! Live port (5344): the viewer's requests and, matched to them in order, the relay's replies,
//! decoded with the layouts of the minor both ends agreed on at CONNECT (the smaller of the
//! two; the 2.15 session list from minor 15 on).

use trelay_proto::lttng::live::{
    decode_reply_at, decode_request, IndexReply, NextIndexStatus, StreamRecord, ViewerFlags,
    ViewerReply, ViewerRequest,
};
use trelay_proto::{Decoded, TraceFormat};

use super::data::ctf_summary;
use super::replies::Replies;
use super::{Side, Transcript};

/// Decodes a live connection.
pub fn dissect(client: Option<&[u8]>, server: Option<&[u8]>, t: &mut Transcript) {
    let Some(client) = client else {
        t.error(Side::Server, 0, "replies on the live port can only be decoded with the viewer's bytes (the .client file)");
        return;
    };
    let mut pos = 0usize;
    let mut replies = Replies::new(server);
    // Before CONNECT (and without it), the layouts of minors below 15.
    let (mut asked, mut minor) = (0u32, 0u32);
    while pos < client.len() {
        let rest = client.get(pos..).unwrap_or(&[]);
        let (req, used) = match decode_request(rest) {
            Ok(Decoded::Done { msg, used }) => (msg, used),
            Ok(Decoded::Incomplete { needed }) => {
                t.incomplete(Side::Client, pos as u64, "request", rest.len(), needed);
                return;
            }
            Err(e) => {
                t.error(Side::Client, pos as u64, e.to_string());
                return;
            }
        };
        t.line(Side::Client, pos as u64, request_text(&req));
        pos += used;
        if let ViewerRequest::Connect(c) = &req {
            asked = c.minor;
        }
        let label = || format!("reply to {:?}", req.command());
        if let Some((msg, at)) =
            replies.next(t, label, |b| decode_reply_at(req.command(), minor, b))
        {
            if let ViewerReply::Connect(c) = &msg {
                minor = asked.min(c.minor);
            }
            t.line(Side::Server, at, reply_text(&msg));
        }
    }
    replies.finish(t, "request");
}

/// One line for a request.
pub fn request_text(r: &ViewerRequest) -> String {
    match r {
        ViewerRequest::Connect(c) => format!(
            "CONNECT viewer_session={} version={}.{} type={:?}",
            id(c.viewer_session_id.0),
            c.major,
            c.minor,
            c.conn_type
        ),
        ViewerRequest::ListSessions => "LIST_SESSIONS".to_owned(),
        ViewerRequest::CreateSession => "CREATE_SESSION".to_owned(),
        ViewerRequest::AttachSession {
            session_id,
            offset,
            seek,
        } => {
            format!("ATTACH_SESSION session={session_id} seek={seek:?} offset={offset}")
        }
        ViewerRequest::GetNextIndex { stream_id } => format!("GET_NEXT_INDEX stream={stream_id}"),
        ViewerRequest::GetPacket {
            stream_id,
            offset,
            len,
        } => {
            format!("GET_PACKET stream={stream_id} offset={offset} len={len}")
        }
        ViewerRequest::GetMetadata { stream_id } => format!("GET_METADATA stream={stream_id}"),
        ViewerRequest::GetNewStreams { session_id } => {
            format!("GET_NEW_STREAMS session={session_id}")
        }
        ViewerRequest::DetachSession { session_id } => {
            format!("DETACH_SESSION session={session_id}")
        }
    }
}

fn id(v: u64) -> String {
    if v == u64::MAX {
        "unset".to_owned()
    } else {
        v.to_string()
    }
}

fn flags(f: ViewerFlags) -> String {
    let mut names = Vec::new();
    if f.contains(ViewerFlags::NEW_METADATA) {
        names.push("NEW_METADATA".to_owned());
    }
    if f.contains(ViewerFlags::NEW_STREAM) {
        names.push("NEW_STREAM".to_owned());
    }
    let other = f.0 & !(ViewerFlags::NEW_METADATA.0 | ViewerFlags::NEW_STREAM.0);
    if other != 0 {
        names.push(format!("{other:#x}"));
    }
    if names.is_empty() {
        String::new()
    } else {
        format!(" flags={}", names.join("|"))
    }
}

fn streams_text(streams: &[StreamRecord]) -> String {
    let s: Vec<String> = streams
        .iter()
        .map(|r| {
            format!(
                "{{id={} trace={}{} {}/{}}}",
                r.id,
                r.ctf_trace_id,
                if r.is_metadata() { " metadata" } else { "" },
                r.path_name,
                r.channel_name
            )
        })
        .collect();
    format!(" [{}]", s.join(" "))
}

fn index_text(i: &IndexReply) -> String {
    match i.status {
        NextIndexStatus::Ok => format!(
            "GET_NEXT_INDEX reply: Ok offset={} packet_size={} content_size={} begin={} end={} discarded={} class={}{}",
            i.offset,
            i.packet_size,
            i.content_size,
            i.timestamp_begin,
            i.timestamp_end,
            i.events_discarded,
            id(i.stream_id),
            flags(i.flags)
        ),
        NextIndexStatus::Inactive => format!(
            "GET_NEXT_INDEX reply: Inactive until={} class={}{}",
            i.timestamp_end,
            id(i.stream_id),
            flags(i.flags)
        ),
        other => format!("GET_NEXT_INDEX reply: {other:?}{}", flags(i.flags)),
    }
}

/// One line for a reply.
pub fn reply_text(r: &ViewerReply<'_>) -> String {
    match r {
        ViewerReply::Connect(c) => format!(
            "CONNECT reply: viewer_session={} version={}.{} type={}",
            id(c.viewer_session_id.0),
            c.major,
            c.minor,
            c.conn_type
        ),
        ViewerReply::ListSessions(s) => {
            let list: Vec<String> = s
                .iter()
                .map(|s| {
                    // The format is said only of CTF 2 sessions (every session of a list
                    // below minor 15 is CTF 1.8).
                    let format = match s.trace_format {
                        TraceFormat::Ctf2 => " format=ctf-2",
                        TraceFormat::Ctf1_8 => "",
                    };
                    format!(
                        "{{id={} host={:?} name={:?} live={}us clients={} streams={}{format}}}",
                        s.id, s.hostname, s.session_name, s.live_timer, s.clients, s.streams
                    )
                })
                .collect();
            format!(
                "LIST_SESSIONS reply: {} session(s) [{}]",
                s.len(),
                list.join(" ")
            )
        }
        ViewerReply::AttachSession { status, streams } => {
            format!(
                "ATTACH_SESSION reply: {status:?} {} stream(s){}",
                streams.len(),
                streams_text(streams)
            )
        }
        ViewerReply::NewStreams { status, streams } => {
            format!(
                "GET_NEW_STREAMS reply: {status:?} {} stream(s){}",
                streams.len(),
                streams_text(streams)
            )
        }
        ViewerReply::NextIndex(i) => index_text(i),
        ViewerReply::Packet {
            status,
            flags: f,
            data,
        } => {
            format!(
                "GET_PACKET reply: {status:?} len={}{}{}",
                data.len(),
                flags(*f),
                ctf_summary(data).unwrap_or_default()
            )
        }
        ViewerReply::Metadata { status, data } => {
            format!("GET_METADATA reply: {status:?} len={}", data.len())
        }
        ViewerReply::CreateSession(s) => format!("CREATE_SESSION reply: {s:?}"),
        ViewerReply::DetachSession(s) => format!("DETACH_SESSION reply: {s:?}"),
        ViewerReply::UnknownCommand { code } => format!("reply to an unknown command: code {code}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trelay_proto::lttng::live::{ConnectReply, ConnectRequest, ConnectionType, SessionRecord};
    use trelay_proto::{SessionId, ViewerSessionId};

    /// A viewer and a relay that agree on minor 15: the 2.15 session list is decoded, and the
    /// CTF 2 session says so.
    #[test]
    fn a_session_list_at_minor_15_is_read_with_its_formats() {
        let mut client = Vec::new();
        ViewerRequest::Connect(ConnectRequest {
            viewer_session_id: ViewerSessionId::UNSET,
            major: 2,
            minor: 15,
            conn_type: ConnectionType::Command,
        })
        .encode(&mut client);
        ViewerRequest::ListSessions.encode(&mut client);
        let mut server = Vec::new();
        ViewerReply::Connect(ConnectReply {
            viewer_session_id: ViewerSessionId(1),
            major: 2,
            minor: 15,
            conn_type: 0,
        })
        .encode_at(15, &mut server);
        let record = |id, trace_format| SessionRecord {
            id: SessionId(id),
            live_timer: 100,
            clients: 0,
            streams: 3,
            hostname: "h".into(),
            session_name: format!("s{id}"),
            trace_format,
        };
        ViewerReply::ListSessions(vec![
            record(1, TraceFormat::Ctf2),
            record(2, TraceFormat::Ctf1_8),
        ])
        .encode_at(15, &mut server);
        let mut t = Transcript::default();
        dissect(Some(&client), Some(&server), &mut t);
        assert!(t.errors.is_empty(), "{:?}", t.errors);
        let list = &t.lines.last().unwrap().2;
        assert!(
            list.contains("2 session(s)")
                && list.contains("name=\"s1\" live=100us clients=0 streams=3 format=ctf-2}")
                && list.contains("name=\"s2\" live=100us clients=0 streams=3}"),
            "{list}"
        );
    }
}
