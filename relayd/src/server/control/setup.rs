//! VERSION, GET_CONFIGURATION and CREATE_SESSION.

use super::{Conn, Flow};
use crate::session::{ChunkKey, Registry, SessionParams};
use crate::storage::layout::{self, NameError};
use trelay_proto::lttng::relayd::{
    ConfigurationFlags, ConfigurationReply, CreateSession, CreateSessionReply, GetConfiguration,
    ProtocolMinor, Reply, ReturnCode, Version, RELAYD_MAJOR, RELAYD_MINOR,
};
use trelay_proto::SessionId;

/// GET_CONFIGURATION flag: `lttng clear` allowed.
const CLEAR_ALLOWED: u64 = 1;

/// VERSION: reply with our own version; negotiate `min(15, peer minor)`.
pub(super) fn version(conn: &mut Conn, v: Version) -> Flow {
    conn.minor = Some(ProtocolMinor::negotiate(RELAYD_MINOR, v.minor).0);
    conn.reply(Reply::Version(Version {
        major: RELAYD_MAJOR,
        minor: RELAYD_MINOR,
    }));
    if v.major != RELAYD_MAJOR {
        return Flow::Close(format!(
            "VERSION: peer major {}, ours is {RELAYD_MAJOR}",
            v.major
        ));
    }
    tracing::debug!(peer = %conn.peer, major = v.major, minor = v.minor, used = %conn.minor(), "version negotiated");
    Flow::Continue
}

/// GET_CONFIGURATION: query flags must be 0; reply (OK, CLEAR_ALLOWED?).
pub(super) fn get_configuration(registry: &Registry, conn: &mut Conn, q: GetConfiguration) -> Flow {
    if q.query_flags != 0 {
        conn.reply(Reply::Configuration(ConfigurationReply {
            ret_code: ReturnCode::INVALID_PROTOCOL,
            flags: ConfigurationFlags(0),
        }));
        return Flow::Close(format!(
            "GET_CONFIGURATION: unsupported query {:#x}",
            q.query_flags
        ));
    }
    let flags = if registry.settings.allow_clear {
        CLEAR_ALLOWED
    } else {
        0
    };
    conn.reply(Reply::Configuration(ConfigurationReply {
        ret_code: ReturnCode::OK,
        flags: ConfigurationFlags(flags),
    }));
    Flow::Continue
}

fn validate(c: &CreateSession) -> Result<(String, String, String), NameError> {
    Ok((
        layout::component("session name", &c.session_name)?.to_owned(),
        layout::component("hostname", &c.hostname)?.to_owned(),
        layout::relative_path("base path", c.base_path.as_deref().unwrap_or(""), true)?,
    ))
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// CREATE_SESSION: reply (relay session id, status[, output path]).
pub(super) fn create_session(registry: &Registry, conn: &mut Conn, c: CreateSession) -> Flow {
    let minor = conn.minor();
    let refuse = |conn: &mut Conn, why: String| {
        tracing::error!(peer = %conn.peer, "CREATE_SESSION refused: {why}");
        conn.reply(Reply::CreateSession(CreateSessionReply {
            session_id: SessionId(0),
            ret_code: ReturnCode::FATAL,
            output_path: None,
        }));
    };
    if conn.session.is_some() {
        refuse(conn, "this connection already has a session".into());
        return Flow::Close("CREATE_SESSION: second session on one connection".into());
    }
    if !minor.has_trace_chunks() && minor.0 < 4 {
        refuse(
            conn,
            format!("peer minor {} sends no session parameters", minor.0),
        );
        return Flow::Continue;
    }
    if minor.has_trace_chunks() && c.sessiond_uuid == [0; 16] {
        refuse(conn, "sessiond uuid is all zeros".into());
        return Flow::Continue;
    }
    let (name, mut hostname, base_path) = match validate(&c) {
        Ok(v) => v,
        Err(e) => {
            refuse(conn, e.to_string());
            return Flow::Continue;
        }
    };
    if let Some(peer_name) = conn.identity.name.clone() {
        // An allowed peer writes under its configured name, whatever host it claims.
        if hostname != peer_name {
            tracing::warn!(
                peer = %conn.peer,
                claimed = %hostname,
                name = %peer_name,
                session = %name,
                "peer claims another hostname: its session goes under its configured name"
            );
        }
        hostname = peer_name;
    }
    let key = conn.identity.key();
    if let Err(why) = registry.admit_session(&key) {
        refuse(conn, why);
        return Flow::Continue;
    }
    let creation_time = if minor.has_trace_chunks() {
        c.creation_time
    } else {
        now_secs()
    };
    let session = registry.create_session(SessionParams {
        name,
        hostname,
        base_path,
        live_timer: c.live_timer_us,
        snapshot: c.snapshot,
        name_has_time: c.name_contains_creation_time,
        minor: minor.0,
        sessiond_uuid: c.sessiond_uuid,
        sessiond_session_id: c.sessiond_session_id,
        creation_time,
        peer: key,
        trace_format: c.trace_format,
    });
    if minor.has_trace_chunks() {
        // As lttng-relayd: the session directory exists from its creation on, even if nothing is
        // ever recorded in it (`lttng clear` of a session without events leaves it, empty).
        if let Err(e) = crate::storage::tree::create_dir_all(&registry.fs, &session.abs_dir) {
            registry.remove_session(session.id);
            refuse(conn, format!("cannot create the session directory: {e}"));
            return Flow::Continue;
        }
    }
    if let Some(chunk_id) = c.current_chunk_id {
        match registry.chunks.get(&session.chunk_key(chunk_id)) {
            Some(chunk) => session.lock().current_chunk = Some(chunk),
            None => {
                registry.remove_session(session.id);
                refuse(conn, format!("current chunk {chunk_id} is unknown"));
                return Flow::Continue;
            }
        }
    }
    if !minor.has_trace_chunks() {
        // Pre-2.11 peers send stream paths relative to the output root: one anonymous chunk there.
        let key = ChunkKey {
            session_dir: registry.output().to_path_buf(),
            sessiond_uuid: [0; 16],
            sessiond_session_id: u64::MAX - session.id.0,
            chunk_id: 0,
        };
        let (chunk, _) =
            registry
                .chunks
                .publish(key, creation_time, registry.output(), None, String::new);
        session.lock().current_chunk = Some(chunk);
    }
    let path = session.rel_dir.to_string_lossy().into_owned();
    tracing::info!(
        peer = %conn.peer,
        session = %session.id,
        name = %session.params.name,
        host = %session.params.hostname,
        live_timer = c.live_timer_us,
        snapshot = c.snapshot,
        trace_format = %c.trace_format,
        minor = %minor,
        %path,
        "session created"
    );
    conn.reply(Reply::CreateSession(CreateSessionReply {
        session_id: session.id,
        ret_code: ReturnCode::OK,
        output_path: Some(path),
    }));
    conn.session = Some(session);
    Flow::Continue
}
