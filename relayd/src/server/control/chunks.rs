//! CREATE_TRACE_CHUNK, CLOSE_TRACE_CHUNK, TRACE_CHUNK_EXISTS and ROTATE_STREAMS: rotations,
//! `lttng clear`, snapshots and the quiet rotation at destroy.

use super::{Conn, Flow};
use crate::session::{CloseCommand, Registry};
use crate::storage::layout;
use std::sync::Arc;
use trelay_proto::lttng::relayd::{
    CloseTraceChunk, CloseTraceChunkReply, CreateTraceChunk, Reply, ReturnCode, RotateStreams,
    TraceChunkExistsReply,
};

/// CREATE_TRACE_CHUNK: the new chunk becomes current; the previous one awaits its close.
pub(super) fn create_trace_chunk(
    registry: &Registry,
    conn: &mut Conn,
    c: CreateTraceChunk,
) -> Option<Flow> {
    let (session, _) = conn.gated()?;
    if let Some(name) = &c.override_name {
        if let Err(e) = layout::component("chunk name", name) {
            return Some(conn.fail(ReturnCode::INVALID, format!("CREATE_TRACE_CHUNK: {e}")));
        }
    }
    // Only this connection changes the session's chunks: read them, move the previous chunk
    // with the session lock released, then install the new one.
    let (previous, has_rotated, pending) = {
        let st = session.lock();
        (
            st.current_chunk.clone(),
            st.has_rotated,
            st.pending_closure.is_some(),
        )
    };
    if previous.is_some() && pending {
        return Some(conn.fail(
            ReturnCode::INVALID_PROTOCOL,
            "CREATE_TRACE_CHUNK: a chunk is already pending closure".into(),
        ));
    }
    let (chunk, _) = registry.chunks.publish(
        session.chunk_key(c.chunk_id),
        c.creation_timestamp,
        &session.abs_dir,
        c.override_name.as_deref(),
        || {
            if previous.is_some() {
                ".tmp_new_chunk".to_owned()
            } else if !has_rotated {
                String::new()
            } else {
                layout::chunk_name(c.creation_timestamp, None, c.chunk_id)
            }
        },
    );
    if let Some(prev) = &previous {
        if !prev.name_overridden() {
            if let Err(e) = prev.rename(".tmp_old_chunk") {
                return Some(conn.fail(
                    ReturnCode::UNK,
                    format!("CREATE_TRACE_CHUNK: cannot move the previous chunk: {e}"),
                ));
            }
        }
    }
    {
        let mut st = session.lock();
        if let Some(prev) = previous {
            st.pending_closure = Some(prev);
            st.rotation_ongoing = true;
        }
        st.current_chunk = Some(chunk);
    }
    tracing::info!(session = %session.id, chunk = c.chunk_id, "trace chunk created");
    conn.status(ReturnCode::OK);
    Some(Flow::Continue)
}

/// CLOSE_TRACE_CHUNK: record the close; reply with the chunk's final path.
pub(super) fn close_trace_chunk(
    registry: &Registry,
    conn: &mut Conn,
    c: CloseTraceChunk,
) -> Option<Flow> {
    let (session, _) = conn.gated()?;
    let cmd = c.close_command;
    let chunk_id = c.chunk_id;
    if cmd == Some(CloseCommand::Delete) && !registry.settings.allow_clear {
        return Some(close_fail(
            conn,
            ReturnCode::INVALID_PROTOCOL,
            "CLOSE_TRACE_CHUNK: clear is not allowed".into(),
        ));
    }
    let Some(chunk) = registry.chunks.get(&session.chunk_key(chunk_id)) else {
        return Some(close_fail(
            conn,
            ReturnCode::NOMEM,
            format!("CLOSE_TRACE_CHUNK: unknown chunk {chunk_id}"),
        ));
    };
    // Renames happen with the session lock released (only this connection changes chunks).
    let (current, has_rotated) = {
        let st = session.lock();
        (st.current_chunk.clone(), st.has_rotated)
    };
    if let Some(current) = current {
        if !Arc::ptr_eq(&current, &chunk) && !current.name_overridden() {
            let to_root = cmd == Some(CloseCommand::Delete) && !has_rotated;
            let renamed = if to_root {
                current.rename("")
            } else {
                current.rename_to_name()
            };
            if let Err(e) = renamed {
                return Some(close_fail(
                    conn,
                    ReturnCode::UNK,
                    format!("CLOSE_TRACE_CHUNK: cannot rename the new chunk: {e}"),
                ));
            }
        }
    }
    if matches!(cmd, None | Some(CloseCommand::NoOperation)) && !chunk.name_overridden() {
        // Quiet close: the chunk goes back to the session root if the session never rotated,
        // else it keeps its name.
        let renamed = if has_rotated {
            chunk.rename_to_name()
        } else {
            chunk.rename("")
        };
        if let Err(e) = renamed {
            tracing::warn!(session = %session.id, chunk = chunk_id, "cannot rename closed chunk: {e}");
        }
    }
    chunk.close(c.close_timestamp, cmd);
    let mut st = session.lock();
    st.rotation_ongoing = false;
    if cmd == Some(CloseCommand::MoveToCompleted) {
        st.has_rotated = true;
    }
    let name = chunk.name().unwrap_or_default();
    let rel = session.rel_dir.to_string_lossy().into_owned();
    let path = if session.params.snapshot {
        format!("{rel}/{name}")
    } else if !st.has_rotated {
        rel
    } else {
        format!("{rel}/archives/{name}")
    };
    if st
        .pending_closure
        .as_ref()
        .is_some_and(|p| Arc::ptr_eq(p, &chunk))
    {
        st.pending_closure = None;
    }
    if st
        .current_chunk
        .as_ref()
        .is_some_and(|p| Arc::ptr_eq(p, &chunk))
    {
        st.current_chunk = None;
    }
    drop(st);
    drop(chunk);
    tracing::info!(session = %session.id, chunk = chunk_id, command = ?cmd, %path, "trace chunk closed");
    conn.reply(Reply::CloseTraceChunk(CloseTraceChunkReply::Closed {
        path,
    }));
    Some(Flow::Continue)
}

fn close_fail(conn: &mut Conn, ret_code: ReturnCode, why: String) -> Flow {
    conn.reply(Reply::CloseTraceChunk(CloseTraceChunkReply::Failed {
        ret_code,
        path_length: 0,
    }));
    Flow::Close(why)
}

/// TRACE_CHUNK_EXISTS: whether anything still holds the chunk.
pub(super) fn trace_chunk_exists(
    registry: &Registry,
    conn: &mut Conn,
    chunk_id: u64,
) -> Option<Flow> {
    let (session, _) = conn.gated()?;
    // A released chunk exists until its archive (or delete) is done.
    let exists = registry.chunks.get(&session.chunk_key(chunk_id)).is_some()
        || registry
            .chunks
            .releases()
            .unfinished(&session.abs_dir, chunk_id);
    conn.reply(Reply::TraceChunkExists(TraceChunkExistsReply {
        ret_code: ReturnCode::OK,
        exists,
    }));
    Some(Flow::Continue)
}

/// ROTATE_STREAMS: each listed stream moves to the new chunk (or to none) at its position.
pub(super) fn rotate_streams(
    registry: &Registry,
    conn: &mut Conn,
    r: RotateStreams,
) -> Option<Flow> {
    let (session, _) = conn.gated()?;
    let next = match r.new_chunk_id {
        Some(id) => match registry.chunks.get(&session.chunk_key(id)) {
            Some(c) => Some(c),
            None => {
                return Some(conn.fail(
                    ReturnCode::INVALID_PROTOCOL,
                    format!("ROTATE_STREAMS: unknown chunk {id}"),
                ))
            }
        },
        None => None,
    };
    let mut rotated = Vec::with_capacity(r.positions.len());
    for pos in &r.positions {
        let stream = registry
            .stream(pos.stream_id)
            .filter(|s| Arc::ptr_eq(&s.session, &session));
        let Some(stream) = stream else {
            return Some(conn.fail(
                ReturnCode::INVALID,
                format!("ROTATE_STREAMS: unknown stream {}", pos.stream_id),
            ));
        };
        if let Err(e) = stream.start_rotation(next.clone(), pos.rotate_at_seq_num) {
            return Some(conn.fail(
                ReturnCode::FILE_CREATION_ERROR,
                format!("ROTATE_STREAMS: {e}"),
            ));
        }
        rotated.push(stream);
    }
    registry.request_commit(&session, rotated);
    conn.status(ReturnCode::OK);
    Some(Flow::Continue)
}
