//! CREATE_TRACE_CHUNK, CLOSE_TRACE_CHUNK, TRACE_CHUNK_EXISTS and ROTATE_STREAMS: rotations,
//! `lttng clear`, snapshots and the quiet rotation at destroy.

use super::{code, Conn, Flow};
use crate::session::layout;
use crate::session::{CloseCommand, Registry};
use std::sync::Arc;
use trelay_proto::codec::str_from_counted;
use trelay_proto::{Reader, StreamId};

/// CREATE_TRACE_CHUNK: the new chunk becomes current; the previous one awaits its close.
pub(super) fn create_trace_chunk(registry: &Registry, conn: &mut Conn, p: &[u8]) -> Option<Flow> {
    let (session, minor) = conn.gated()?;
    if minor < 11 {
        return Some(conn.fail(
            code::INVALID_PROTOCOL,
            "CREATE_TRACE_CHUNK before 2.11".into(),
        ));
    }
    let mut r = Reader::new(p);
    let (Some(chunk_id), Some(ts), Some(name_len)) = (r.u64(), r.u64(), r.u32()) else {
        return Some(conn.fail(
            code::INVALID_PROTOCOL,
            format!("CREATE_TRACE_CHUNK: payload of {} bytes", p.len()),
        ));
    };
    let override_name = if name_len == 0 {
        None
    } else {
        let checked = usize::try_from(name_len)
            .ok()
            .filter(|n| *n <= 256)
            .and_then(|n| r.bytes(n))
            .ok_or_else(|| "override name length".to_owned())
            .and_then(|b| str_from_counted(b, "chunk name").map_err(|e| e.to_string()))
            .and_then(|n| {
                layout::component("chunk name", &n)
                    .map(|_| n.clone())
                    .map_err(|e| e.to_string())
            });
        match checked {
            Ok(n) => Some(n),
            Err(why) => {
                return Some(conn.fail(code::INVALID, format!("CREATE_TRACE_CHUNK: {why}")))
            }
        }
    };
    let mut st = session.lock();
    if st.current_chunk.is_some() && st.pending_closure.is_some() {
        drop(st);
        return Some(conn.fail(
            code::INVALID_PROTOCOL,
            "CREATE_TRACE_CHUNK: a chunk is already pending closure".into(),
        ));
    }
    let previous = st.current_chunk.take();
    let has_rotated = st.has_rotated;
    let (chunk, _) = registry.chunks.publish(
        session.chunk_key(chunk_id),
        ts,
        &session.abs_dir,
        override_name.as_deref(),
        || {
            if previous.is_some() {
                ".tmp_new_chunk".to_owned()
            } else if !has_rotated {
                String::new()
            } else {
                layout::chunk_name(ts, None, chunk_id)
            }
        },
    );
    if let Some(prev) = previous {
        if !prev.name_overridden() {
            if let Err(e) = prev.rename(".tmp_old_chunk") {
                st.current_chunk = Some(prev);
                drop(st);
                return Some(conn.fail(
                    code::UNK,
                    format!("CREATE_TRACE_CHUNK: cannot move the previous chunk: {e}"),
                ));
            }
        }
        st.pending_closure = Some(prev);
        st.rotation_ongoing = true;
    }
    st.current_chunk = Some(chunk);
    drop(st);
    tracing::info!(session = %session.id, chunk = chunk_id, "trace chunk created");
    conn.status(code::OK);
    Some(Flow::Continue)
}

/// CLOSE_TRACE_CHUNK: record the close; reply with the chunk's final path.
pub(super) fn close_trace_chunk(registry: &Registry, conn: &mut Conn, p: &[u8]) -> Option<Flow> {
    let (session, _) = conn.gated()?;
    let mut r = Reader::new(p);
    let (Some(chunk_id), Some(ts), Some(cmd_set), Some(cmd_value)) =
        (r.u64(), r.u64(), r.u8(), r.u32())
    else {
        return Some(close_fail(
            conn,
            code::INVALID_PROTOCOL,
            format!("CLOSE_TRACE_CHUNK: payload of {} bytes", p.len()),
        ));
    };
    let cmd = if cmd_set != 0 {
        match CloseCommand::from_wire(cmd_value) {
            Some(c) => Some(c),
            None => {
                return Some(close_fail(
                    conn,
                    code::INVALID_PROTOCOL,
                    format!("CLOSE_TRACE_CHUNK: bad command {cmd_value}"),
                ))
            }
        }
    } else {
        None
    };
    if cmd == Some(CloseCommand::Delete) && !registry.settings.allow_clear {
        return Some(close_fail(
            conn,
            code::INVALID_PROTOCOL,
            "CLOSE_TRACE_CHUNK: clear is not allowed".into(),
        ));
    }
    let Some(chunk) = registry.chunks.get(&session.chunk_key(chunk_id)) else {
        return Some(close_fail(
            conn,
            code::NOMEM,
            format!("CLOSE_TRACE_CHUNK: unknown chunk {chunk_id}"),
        ));
    };
    let mut st = session.lock();
    if let Some(current) = st.current_chunk.clone() {
        if !Arc::ptr_eq(&current, &chunk) && !current.name_overridden() {
            let to_root = cmd == Some(CloseCommand::Delete) && !st.has_rotated;
            let renamed = if to_root {
                current.rename("")
            } else {
                current.rename_to_name()
            };
            if let Err(e) = renamed {
                drop(st);
                return Some(close_fail(
                    conn,
                    code::UNK,
                    format!("CLOSE_TRACE_CHUNK: cannot rename the new chunk: {e}"),
                ));
            }
        }
    }
    st.rotation_ongoing = false;
    if cmd.is_none() && !chunk.name_overridden() {
        // Quiet close: the chunk stays where it is named, or at the session root if never rotated.
        let renamed = if st.has_rotated {
            chunk.rename_to_name()
        } else {
            chunk.rename("")
        };
        if let Err(e) = renamed {
            tracing::warn!(session = %session.id, chunk = chunk_id, "cannot rename closed chunk: {e}");
        }
    }
    chunk.close(ts, cmd);
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
        .is_some_and(|c| Arc::ptr_eq(c, &chunk))
    {
        st.pending_closure = None;
    }
    if st
        .current_chunk
        .as_ref()
        .is_some_and(|c| Arc::ptr_eq(c, &chunk))
    {
        st.current_chunk = None;
    }
    drop(st);
    drop(chunk);
    tracing::info!(session = %session.id, chunk = chunk_id, command = ?cmd, %path, "trace chunk closed");
    conn.status(code::OK);
    let len = u32::try_from(path.len() + 1).unwrap_or(0);
    conn.out.extend_from_slice(&len.to_be_bytes());
    conn.out.extend_from_slice(path.as_bytes());
    conn.out.push(0);
    Some(Flow::Continue)
}

fn close_fail(conn: &mut Conn, rc: u32, why: String) -> Flow {
    conn.status(rc);
    conn.out.extend_from_slice(&0u32.to_be_bytes());
    Flow::Close(why)
}

/// TRACE_CHUNK_EXISTS: whether anything still holds the chunk.
pub(super) fn trace_chunk_exists(registry: &Registry, conn: &mut Conn, p: &[u8]) -> Option<Flow> {
    let (session, _) = conn.gated()?;
    let Some(chunk_id) = Reader::new(p).u64() else {
        conn.status(code::INVALID_PROTOCOL);
        conn.out.push(0);
        return Some(Flow::Close("TRACE_CHUNK_EXISTS: short payload".into()));
    };
    let exists = registry.chunks.get(&session.chunk_key(chunk_id)).is_some();
    conn.status(code::OK);
    conn.out.push(u8::from(exists));
    Some(Flow::Continue)
}

/// ROTATE_STREAMS: each listed stream moves to the new chunk (or to none) at its position.
pub(super) fn rotate_streams(registry: &Registry, conn: &mut Conn, p: &[u8]) -> Option<Flow> {
    let (session, _) = conn.gated()?;
    let mut r = Reader::new(p);
    let Some(count) = r.u32() else {
        return Some(conn.fail(
            code::INVALID_PROTOCOL,
            "ROTATE_STREAMS: short payload".into(),
        ));
    };
    let positions = (count as usize).checked_mul(16);
    // 2.13 senders leave the optional chunk id unpacked: pick the header size by total length.
    let header = [13usize, 16, 20]
        .into_iter()
        .find(|h| positions.and_then(|n| n.checked_add(*h)) == Some(p.len()));
    let Some(header) = header else {
        return Some(conn.fail(
            code::INVALID_PROTOCOL,
            format!("ROTATE_STREAMS: {} bytes for {count} streams", p.len()),
        ));
    };
    let is_set = r.u8().unwrap_or(0) != 0;
    let mut r = Reader::new(p);
    let _ = r.skip(header - 8);
    let chunk_id = r.u64().unwrap_or(0);
    let next = if is_set {
        match registry.chunks.get(&session.chunk_key(chunk_id)) {
            Some(c) => Some(c),
            None => {
                return Some(conn.fail(
                    code::INVALID_PROTOCOL,
                    format!("ROTATE_STREAMS: unknown chunk {chunk_id}"),
                ))
            }
        }
    } else {
        None
    };
    let mut rotated = Vec::new();
    for _ in 0..count {
        let (Some(id), Some(psn)) = (r.u64(), r.u64()) else {
            break;
        };
        let stream = registry
            .stream(StreamId(id))
            .filter(|s| Arc::ptr_eq(&s.session, &session));
        let Some(stream) = stream else {
            return Some(conn.fail(
                code::INVALID,
                format!("ROTATE_STREAMS: unknown stream {id}"),
            ));
        };
        if let Err(e) = stream.start_rotation(next.clone(), psn) {
            return Some(conn.fail(code::FILE_CREATION_ERROR, format!("ROTATE_STREAMS: {e}")));
        }
        rotated.push(stream);
    }
    registry.request_commit(&session, rotated);
    conn.status(code::OK);
    Some(Flow::Continue)
}
