//! DATA_PENDING, QUIESCENT_CONTROL, BEGIN_DATA_PENDING and END_DATA_PENDING: how `lttng stop`
//! and `lttng destroy` learn that the relay has everything the consumer sent. A session found
//! quiescent (END_DATA_PENDING answering 0) is committed.

use super::{Conn, Flow};
use crate::session::stream::seq_before;
use crate::session::{Registry, Session};
use std::sync::Arc;
use trelay_proto::lttng::relayd::{DataPending, PendingReply, Reply, ReturnCode};
use trelay_proto::{SessionId, StreamId};

/// DATA_PENDING: 1 if packets up to `last` are not all in, else 0.
pub(super) fn data_pending(registry: &Registry, conn: &mut Conn, d: DataPending) -> Option<Flow> {
    conn.gated()?;
    let Some(stream) = registry.stream(d.stream_id) else {
        conn.reply(Reply::Pending(PendingReply::UNKNOWN_STREAM));
        return Some(Flow::Close(format!(
            "DATA_PENDING: unknown stream {}",
            d.stream_id
        )));
    };
    let pending = {
        let mut st = stream.lock();
        st.set_checked(true);
        seq_before(
            st.last_complete_seq(stream.index_version.is_some()),
            d.last_net_seq,
        )
    };
    conn.reply(Reply::Pending(PendingReply::from_pending(pending)));
    Some(Flow::Continue)
}

/// QUIESCENT_CONTROL: mark the stream checked.
pub(super) fn quiescent_control(
    registry: &Registry,
    conn: &mut Conn,
    id: StreamId,
) -> Option<Flow> {
    conn.gated()?;
    if let Some(s) = registry.stream(id) {
        s.lock().set_checked(true);
    }
    conn.status(ReturnCode::OK);
    Some(Flow::Continue)
}

fn session_of(registry: &Registry, conn: &Conn, id: SessionId) -> Option<Arc<Session>> {
    let own = conn.session.as_ref()?;
    if own.id == id {
        Some(own.clone())
    } else {
        registry.session(id)
    }
}

/// BEGIN_DATA_PENDING: clear the checked flags of the session's streams.
pub(super) fn begin(registry: &Registry, conn: &mut Conn, id: SessionId) -> Option<Flow> {
    conn.gated()?;
    let Some(session) = session_of(registry, conn, id) else {
        return Some(conn.fail(
            ReturnCode::UNK,
            format!("BEGIN_DATA_PENDING: unknown session {id}"),
        ));
    };
    for s in registry.session_streams(&session) {
        s.lock().set_checked(false);
    }
    conn.status(ReturnCode::OK);
    Some(Flow::Continue)
}

/// END_DATA_PENDING: 1 if an unchecked stream still misses data, else 0 (and commit).
pub(super) fn end(registry: &Registry, conn: &mut Conn, id: SessionId) -> Option<Flow> {
    conn.gated()?;
    let Some(session) = session_of(registry, conn, id) else {
        return Some(conn.fail(
            ReturnCode::UNK,
            format!("END_DATA_PENDING: unknown session {id}"),
        ));
    };
    let streams = registry.session_streams(&session);
    // Closed streams have left the registry: an unchecked open stream is pending.
    let pending = streams.iter().any(|s| s.lock().awaits_check());
    if !pending {
        registry.request_commit(&session, streams);
    }
    conn.reply(Reply::Pending(PendingReply::from_pending(pending)));
    Some(Flow::Continue)
}
