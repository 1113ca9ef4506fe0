//! ADD_STREAM, STREAMS_SENT, SEND_METADATA, SEND_INDEX, CLOSE_STREAM and RESET_METADATA.

use super::{Conn, Flow};
use crate::session::{IndexHalf, IngestError, MetadataError, Registry, Stream};
use crate::storage::layout;
use std::sync::Arc;
use trelay_proto::lttng::relayd::{
    AddStream, AddStreamReply, CloseStream, Reply, ResetMetadata, ReturnCode, SendIndex,
    SendMetadata,
};
use trelay_proto::StreamId;

/// ADD_STREAM: create the stream's files in the session's current chunk.
pub(super) fn add_stream(registry: &Registry, conn: &mut Conn, req: AddStream) -> Option<Flow> {
    let (session, _) = conn.gated()?;
    let refuse = |conn: &mut Conn, why: String| {
        tracing::error!(peer = %conn.peer, session = %session.id, "ADD_STREAM refused: {why}");
        conn.reply(Reply::AddStream(AddStreamReply {
            handle: StreamId::UNSET,
            ret_code: ReturnCode::UNK,
        }));
        Flow::Close(format!("ADD_STREAM: {why}"))
    };
    let name = match layout::component("channel name", &req.channel_name) {
        Ok(n) => n.to_owned(),
        Err(e) => return Some(refuse(conn, e.to_string())),
    };
    let path = match layout::relative_path("stream path", &req.pathname, false) {
        Ok(p) => p,
        Err(e) => return Some(refuse(conn, e.to_string())),
    };
    if let Err(why) = registry.admit_stream(&session.params.peer) {
        return Some(refuse(conn, why));
    }
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
        registry.merge.clone(),
    ) {
        Ok(s) => s,
        // A full disk: nothing was recorded; the connection waits for space and runs the
        // command again (no reply meanwhile, so the sender waits too).
        Err(e) if e.is_no_space() => return Some(Flow::NoSpace(e)),
        Err(e) => {
            return Some(refuse(
                conn,
                format!("cannot create the stream's file: {e}"),
            ))
        }
    };
    tracing::debug!(session = %session.id, stream = %id, name = %stream.name, path = %stream.path, "stream added");
    registry.insert_stream(stream);
    conn.reply(Reply::AddStream(AddStreamReply {
        handle: id,
        ret_code: ReturnCode::OK,
    }));
    Some(Flow::Continue)
}

/// STREAMS_SENT: publish every unpublished stream of the session; commit them.
pub(super) fn streams_sent(registry: &Registry, conn: &mut Conn) -> Option<Flow> {
    let (session, _) = conn.gated()?;
    let streams = registry.session_streams(&session);
    let mut any = false;
    for s in &streams {
        any |= s.lock().publish();
    }
    if any {
        session.lock().new_streams = true;
    }
    registry.request_commit(&session, streams);
    conn.status(ReturnCode::OK);
    Some(Flow::Continue)
}

/// The stream `id` if it belongs to this connection's session.
fn own_stream(registry: &Registry, conn: &Conn, id: StreamId) -> Option<Arc<Stream>> {
    let session = conn.session.as_ref()?;
    registry
        .stream(id)
        .filter(|s| Arc::ptr_eq(&s.session, session))
}

/// SEND_METADATA: append to the metadata file; no reply.
pub(super) fn send_metadata(
    registry: &Registry,
    conn: &mut Conn,
    m: SendMetadata<'_>,
) -> Option<Flow> {
    let Some(stream) = own_stream(registry, conn, m.stream_id) else {
        return Some(Flow::Close(format!(
            "SEND_METADATA: unknown stream {}",
            m.stream_id
        )));
    };
    match stream.append_metadata(m.data, u64::from(m.padding_size)) {
        Ok(()) => Some(Flow::Continue),
        Err(MetadataError::Storage(_, e)) if e.is_no_space() => Some(Flow::NoSpace(e)),
        Err(e) => Some(Flow::Close(format!("SEND_METADATA: {e}"))),
    }
}

/// SEND_INDEX: the index half of a packet, or a live beacon.
pub(super) fn send_index(registry: &Registry, conn: &mut Conn, i: SendIndex) -> Option<Flow> {
    let (session, _) = conn.gated()?;
    let Some(stream) = own_stream(registry, conn, i.relay_stream_id) else {
        return Some(conn.fail(
            ReturnCode::UNK,
            format!("SEND_INDEX: unknown stream {}", i.relay_stream_id),
        ));
    };
    let half = IndexHalf {
        packet_size: i.packet_size,
        content_size: i.content_size,
        timestamp_begin: i.timestamp_begin,
        timestamp_end: i.timestamp_end,
        events_discarded: i.events_discarded,
        stream_id: i.stream_class_id,
        stream_instance_id: i.stream_instance_id,
        packet_seq_num: i.packet_seq_num,
    };
    match stream.add_index(i.net_seq, half) {
        Ok(fx) => {
            let live = session.params.live_timer > 0;
            if fx.rotated || (live && (fx.completed || i.is_beacon())) {
                registry.request_commit(&session, [stream.clone()]);
            }
            if fx.close_ready {
                let aborted = session.lock().aborted;
                registry.try_close_stream(&stream, aborted);
            }
            conn.status(ReturnCode::OK);
            Some(Flow::Continue)
        }
        // Refused entry (logged and counted where it was found): an error reply, the session
        // and the connection go on.
        Err(IngestError::IndexMismatch(..)) => {
            conn.status(ReturnCode::UNK);
            Some(Flow::Continue)
        }
        Err(e) => Some(conn.fail(ReturnCode::UNK, format!("SEND_INDEX: {e}"))),
    }
}

/// CLOSE_STREAM: close once the last packet the sender names is in.
pub(super) fn close_stream(registry: &Registry, conn: &mut Conn, c: CloseStream) -> Option<Flow> {
    let (session, _) = conn.gated()?;
    let Some(stream) = own_stream(registry, conn, c.stream_id) else {
        return Some(conn.fail(
            ReturnCode::UNK,
            format!("CLOSE_STREAM: unknown stream {}", c.stream_id),
        ));
    };
    stream.request_close(c.last_net_seq);
    let aborted = session.lock().aborted;
    registry.try_close_stream(&stream, aborted);
    conn.status(ReturnCode::OK);
    Some(Flow::Continue)
}

/// RESET_METADATA: truncate the metadata file (refused for live sessions).
pub(super) fn reset_metadata(
    registry: &Registry,
    conn: &mut Conn,
    r: ResetMetadata,
) -> Option<Flow> {
    let (session, _) = conn.gated()?;
    if session.params.live_timer > 0 {
        return Some(conn.fail(ReturnCode::UNK, "RESET_METADATA on a live session".into()));
    }
    let Some(stream) = own_stream(registry, conn, r.stream_id) else {
        return Some(conn.fail(
            ReturnCode::UNK,
            format!("RESET_METADATA: unknown stream {}", r.stream_id),
        ));
    };
    match stream.reset_metadata() {
        Ok(()) => {
            tracing::debug!(session = %session.id, stream = %stream.id, version = r.version, "metadata reset");
            conn.status(ReturnCode::OK);
            Some(Flow::Continue)
        }
        Err(e) => Some(conn.fail(ReturnCode::UNK, format!("RESET_METADATA: {e}"))),
    }
}
