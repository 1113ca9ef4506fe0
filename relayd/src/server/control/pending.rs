//! DATA_PENDING, QUIESCENT_CONTROL, BEGIN_DATA_PENDING and END_DATA_PENDING: how `lttng stop`
//! and `lttng destroy` learn that the relay has everything the consumer sent. A session found
//! quiescent (END_DATA_PENDING answering 0) is committed.

use super::{code, Conn, Flow};
use crate::session::stream::{seq_before, Stream, StreamState};
use crate::session::Registry;
use trelay_proto::{NetSeq, Reader, SessionId, StreamId};

/// The last packet the relay holds both halves of (data only without indexes).
fn seen(stream: &Stream, st: &StreamState) -> NetSeq {
    if stream.index_version.is_some() {
        NetSeq(st.prev_data_seq.0.min(st.prev_index_seq.0))
    } else {
        st.prev_data_seq
    }
}

/// DATA_PENDING: 1 if packets up to `last` are not all in, else 0.
pub(super) fn data_pending(registry: &Registry, conn: &mut Conn, p: &[u8]) -> Option<Flow> {
    conn.gated()?;
    let mut r = Reader::new(p);
    let (Some(id), Some(last)) = (r.u64(), r.u64()) else {
        return Some(conn.fail(
            u32::MAX,
            format!("DATA_PENDING: payload of {} bytes", p.len()),
        ));
    };
    let Some(stream) = registry.stream(StreamId(id)) else {
        return Some(conn.fail(u32::MAX, format!("DATA_PENDING: unknown stream {id}")));
    };
    let pending = {
        let mut st = stream.lock();
        st.checked = true;
        seq_before(seen(&stream, &st), NetSeq(last))
    };
    conn.status(u32::from(pending));
    Some(Flow::Continue)
}

/// QUIESCENT_CONTROL: mark the stream checked.
pub(super) fn quiescent_control(registry: &Registry, conn: &mut Conn, p: &[u8]) -> Option<Flow> {
    conn.gated()?;
    if let Some(s) = Reader::new(p)
        .u64()
        .and_then(|id| registry.stream(StreamId(id)))
    {
        s.lock().checked = true;
    }
    conn.status(code::OK);
    Some(Flow::Continue)
}

fn session_of(
    registry: &Registry,
    conn: &Conn,
    p: &[u8],
) -> Option<std::sync::Arc<crate::session::Session>> {
    let id = Reader::new(p).u64()?;
    let own = conn.session.as_ref()?;
    if own.id == SessionId(id) {
        Some(own.clone())
    } else {
        registry.session(SessionId(id))
    }
}

/// BEGIN_DATA_PENDING: clear the checked flags of the session's streams.
pub(super) fn begin(registry: &Registry, conn: &mut Conn, p: &[u8]) -> Option<Flow> {
    conn.gated()?;
    let Some(session) = session_of(registry, conn, p) else {
        return Some(conn.fail(code::UNK, "BEGIN_DATA_PENDING: unknown session".into()));
    };
    for s in registry.session_streams(&session) {
        s.lock().checked = false;
    }
    conn.status(code::OK);
    Some(Flow::Continue)
}

/// END_DATA_PENDING: 1 if an unchecked stream still misses data, else 0 (and commit).
pub(super) fn end(registry: &Registry, conn: &mut Conn, p: &[u8]) -> Option<Flow> {
    conn.gated()?;
    let Some(session) = session_of(registry, conn, p) else {
        return Some(conn.fail(code::UNK, "END_DATA_PENDING: unknown session".into()));
    };
    let streams = registry.session_streams(&session);
    let pending = streams.iter().any(|s| {
        let st = s.lock();
        // Closed streams have left the registry: an unchecked open stream is pending.
        !st.checked && !st.closed
    });
    if !pending {
        registry.request_commit(&session, streams);
    }
    conn.status(u32::from(pending));
    Some(Flow::Continue)
}
