//! ADD_STREAM, STREAMS_SENT, SEND_METADATA, SEND_INDEX, CLOSE_STREAM and RESET_METADATA.

use super::{code, Conn, Flow};
use crate::session::layout;
use crate::session::{IndexHalf, Registry, Stream};
use trelay_proto::codec::{str_from_counted, str_from_fixed};
use trelay_proto::{NetSeq, Reader, StreamId};

/// Reply of ADD_STREAM: handle, status.
fn stream_reply(conn: &mut Conn, handle: u64, rc: u32) {
    conn.out.extend_from_slice(&handle.to_be_bytes());
    conn.out.extend_from_slice(&rc.to_be_bytes());
}

struct AddStream {
    name: String,
    path: String,
    tracefile_size: u64,
    tracefile_count: u64,
}

fn decode_add_stream(minor: u32, p: &[u8]) -> Result<AddStream, String> {
    let mut r = Reader::new(p);
    if minor >= 11 {
        let short = || "payload shorter than its fixed part".to_owned();
        let name_len = r.u32().ok_or_else(short)? as usize;
        let path_len = r.u32().ok_or_else(short)? as usize;
        if name_len == 0 || name_len > 264 || path_len == 0 || path_len > 255 {
            return Err(format!("bad name lengths ({name_len}, {path_len})"));
        }
        let tracefile_size = r.u64().ok_or_else(short)?;
        let tracefile_count = r.u64().ok_or_else(short)?;
        let _chunk_id = r.u64().ok_or_else(short)?;
        let past = || "declared lengths reach past the payload".to_owned();
        let name = str_from_counted(r.bytes(name_len).ok_or_else(past)?, "channel_name")
            .map_err(|e| e.to_string())?;
        let path = str_from_counted(r.bytes(path_len).ok_or_else(past)?, "pathname")
            .map_err(|e| e.to_string())?;
        Ok(AddStream {
            name,
            path,
            tracefile_size,
            tracefile_count,
        })
    } else {
        let short = || format!("payload of {} bytes is too short", p.len());
        let name = str_from_fixed(r.bytes(264).ok_or_else(short)?, "channel_name")
            .map_err(|e| e.to_string())?;
        let path = str_from_fixed(r.bytes(4096).ok_or_else(short)?, "pathname")
            .map_err(|e| e.to_string())?;
        let (tracefile_size, tracefile_count) = if minor >= 2 {
            (r.u64().ok_or_else(short)?, r.u64().ok_or_else(short)?)
        } else {
            (0, 0)
        };
        Ok(AddStream {
            name,
            path,
            tracefile_size,
            tracefile_count,
        })
    }
}

/// ADD_STREAM: create the stream's files in the session's current chunk.
pub(super) fn add_stream(registry: &Registry, conn: &mut Conn, p: &[u8]) -> Option<Flow> {
    let (session, minor) = conn.gated()?;
    let refuse = |conn: &mut Conn, why: String| {
        tracing::error!(peer = %conn.peer, session = %session.id, "ADD_STREAM refused: {why}");
        stream_reply(conn, u64::MAX, code::UNK);
        Flow::Close(format!("ADD_STREAM: {why}"))
    };
    let req = match decode_add_stream(minor, p) {
        Ok(r) => r,
        Err(why) => return Some(refuse(conn, why)),
    };
    let name = match layout::component("channel name", &req.name) {
        Ok(n) => n.to_owned(),
        Err(e) => return Some(refuse(conn, e.to_string())),
    };
    let path = match layout::relative_path("stream path", &req.path, false) {
        Ok(p) => p,
        Err(e) => return Some(refuse(conn, e.to_string())),
    };
    let Some(chunk) = session.lock().current_chunk.clone() else {
        return Some(refuse(
            conn,
            "the session has no current trace chunk".into(),
        ));
    };
    let id = registry.next_stream_id();
    let trace = registry.trace_id(&session, &path);
    let stream = match Stream::new(
        id,
        session.clone(),
        trace,
        name,
        path,
        req.tracefile_size,
        req.tracefile_count,
        chunk,
    ) {
        Ok(s) => s,
        Err(e) => {
            return Some(refuse(
                conn,
                format!("cannot create the stream's file: {e}"),
            ))
        }
    };
    tracing::debug!(session = %session.id, stream = %id, name = %stream.name, path = %stream.path, "stream added");
    registry.insert_stream(stream);
    stream_reply(conn, id.0, code::OK);
    Some(Flow::Continue)
}

/// STREAMS_SENT: publish every unpublished stream of the session; commit them.
pub(super) fn streams_sent(registry: &Registry, conn: &mut Conn) -> Option<Flow> {
    let (session, _) = conn.gated()?;
    let streams = registry.session_streams(&session);
    let mut any = false;
    for s in &streams {
        let mut st = s.lock();
        if !st.published {
            st.published = true;
            any = true;
        }
    }
    if any {
        session.lock().new_streams = true;
    }
    registry.request_commit(&session, streams);
    conn.status(code::OK);
    Some(Flow::Continue)
}

/// The stream named by the first 8 bytes, if it belongs to this connection's session.
fn own_stream(registry: &Registry, conn: &Conn, id: u64) -> Option<std::sync::Arc<Stream>> {
    let session = conn.session.as_ref()?;
    registry
        .stream(StreamId(id))
        .filter(|s| std::sync::Arc::ptr_eq(&s.session, session))
}

/// SEND_METADATA: append to the metadata file; no reply.
pub(super) fn send_metadata(registry: &Registry, conn: &mut Conn, p: &[u8]) -> Option<Flow> {
    conn.session.as_ref()?;
    let mut r = Reader::new(p);
    let (Some(id), Some(padding)) = (r.u64(), r.u32()) else {
        return Some(Flow::Close(format!(
            "SEND_METADATA: payload of {} bytes",
            p.len()
        )));
    };
    let Some(stream) = own_stream(registry, conn, id) else {
        return Some(Flow::Close(format!("SEND_METADATA: unknown stream {id}")));
    };
    match stream.append_metadata(r.rest(), u64::from(padding)) {
        Ok(()) => Some(Flow::Continue),
        Err(e) => Some(Flow::Close(format!("SEND_METADATA: {e}"))),
    }
}

/// SEND_INDEX: the index half of a packet, or a live beacon.
pub(super) fn send_index(registry: &Registry, conn: &mut Conn, p: &[u8]) -> Option<Flow> {
    let (session, minor) = conn.gated()?;
    let need = if minor >= 8 { 80 } else { 64 };
    if p.len() < need {
        return Some(conn.fail(
            code::UNK,
            format!("SEND_INDEX: {} bytes, need {need}", p.len()),
        ));
    }
    let mut r = Reader::new(p);
    let mut next = || r.u64().unwrap_or(u64::MAX);
    let id = next();
    let seq = next();
    let mut half = IndexHalf {
        packet_size: next(),
        content_size: next(),
        timestamp_begin: next(),
        timestamp_end: next(),
        events_discarded: next(),
        stream_id: next(),
        stream_instance_id: u64::MAX,
        packet_seq_num: u64::MAX,
    };
    if minor >= 8 {
        half.stream_instance_id = next();
        half.packet_seq_num = next();
    }
    let Some(stream) = own_stream(registry, conn, id) else {
        return Some(conn.fail(code::UNK, format!("SEND_INDEX: unknown stream {id}")));
    };
    match stream.add_index(NetSeq(seq), half, registry.settings.max_pending_per_stream) {
        Ok(fx) => {
            let live = session.params.live_timer > 0;
            if live && (fx.completed || half.packet_size == 0) {
                registry.request_commit(&session, [stream.clone()]);
            }
            if fx.close_ready {
                let aborted = session.lock().aborted;
                registry.try_close_stream(&stream, aborted);
            }
            conn.status(code::OK);
            Some(Flow::Continue)
        }
        Err(e) => Some(conn.fail(code::UNK, format!("SEND_INDEX: {e}"))),
    }
}

/// CLOSE_STREAM: close once the last packet the sender names is in.
pub(super) fn close_stream(registry: &Registry, conn: &mut Conn, p: &[u8]) -> Option<Flow> {
    let (session, _) = conn.gated()?;
    let mut r = Reader::new(p);
    let (Some(id), Some(last)) = (r.u64(), r.u64()) else {
        return Some(conn.fail(
            code::UNK,
            format!("CLOSE_STREAM: payload of {} bytes", p.len()),
        ));
    };
    let Some(stream) = own_stream(registry, conn, id) else {
        return Some(conn.fail(code::UNK, format!("CLOSE_STREAM: unknown stream {id}")));
    };
    stream.request_close(NetSeq(last));
    let aborted = session.lock().aborted;
    registry.try_close_stream(&stream, aborted);
    conn.status(code::OK);
    Some(Flow::Continue)
}

/// RESET_METADATA: truncate the metadata file (refused for live sessions).
pub(super) fn reset_metadata(registry: &Registry, conn: &mut Conn, p: &[u8]) -> Option<Flow> {
    let (session, _) = conn.gated()?;
    let id = Reader::new(p).u64().unwrap_or(u64::MAX);
    if session.params.live_timer > 0 {
        return Some(conn.fail(code::UNK, "RESET_METADATA on a live session".into()));
    }
    let Some(stream) = own_stream(registry, conn, id) else {
        return Some(conn.fail(code::UNK, format!("RESET_METADATA: unknown stream {id}")));
    };
    match stream.reset_metadata() {
        Ok(()) => {
            conn.status(code::OK);
            Some(Flow::Continue)
        }
        Err(e) => Some(conn.fail(code::UNK, format!("RESET_METADATA: {e}"))),
    }
}
