//! Pieces of a scripted live relay for the viewer's tests: reading requests, sending replies,
//! and the replies every script gives alike (connect, create, list, attach, detach) for one
//! session 7, "s" of host "h".

use std::io::{Read, Write};
use std::net::TcpStream;

use trelay_proto::lttng::live::*;
use trelay_proto::{CtfTraceId, Decoded, SessionId, StreamId, ViewerSessionId};

/// The next request, or `None` once the client closed the connection.
pub fn read_request(s: &mut TcpStream) -> Option<ViewerRequest> {
    let mut buf = Vec::new();
    loop {
        match decode_request(&buf).expect("a valid request") {
            Decoded::Done { msg, .. } => return Some(msg),
            Decoded::Incomplete { needed } => {
                let start = buf.len();
                buf.resize(needed, 0);
                if s.read_exact(&mut buf[start..]).is_err() {
                    return None;
                }
            }
        }
    }
}

/// Sends one reply.
pub fn send(s: &mut TcpStream, r: ViewerReply<'_>) {
    let mut out = Vec::new();
    r.encode(&mut out);
    s.write_all(&out).expect("the reply is sent");
}

/// A stream record of trace 1 under `path`.
pub fn stream(id: u64, metadata: bool, path: &str, channel: &str) -> StreamRecord {
    StreamRecord {
        id: StreamId(id),
        ctf_trace_id: CtfTraceId(1),
        metadata_flag: u32::from(metadata),
        path_name: path.into(),
        channel_name: channel.into(),
    }
}

/// Answers the requests every script answers alike (attaching gives `streams`); false for the
/// others, which the script answers itself.
pub fn answer_setup(s: &mut TcpStream, req: &ViewerRequest, streams: &[StreamRecord]) -> bool {
    let reply = match req {
        ViewerRequest::Connect(_) => ViewerReply::Connect(ConnectReply {
            viewer_session_id: ViewerSessionId(1),
            major: 2,
            minor: 13,
            conn_type: 0,
        }),
        ViewerRequest::CreateSession => ViewerReply::CreateSession(CreateSessionStatus::Ok),
        ViewerRequest::ListSessions => ViewerReply::ListSessions(vec![SessionRecord {
            id: SessionId(7),
            live_timer: 100_000,
            clients: 0,
            streams: streams.len() as u32,
            hostname: "h".into(),
            session_name: "s".into(),
            ..SessionRecord::default()
        }]),
        ViewerRequest::AttachSession { .. } => ViewerReply::AttachSession {
            status: AttachStatus::Ok,
            streams: streams.to_vec(),
        },
        ViewerRequest::DetachSession { .. } => ViewerReply::DetachSession(DetachStatus::Ok),
        _ => return false,
    };
    send(s, reply);
    true
}
