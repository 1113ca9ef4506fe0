//! VERSION, GET_CONFIGURATION and CREATE_SESSION.

use super::{code, Conn, Flow};
use crate::session::layout::{self, NameError};
use crate::session::{Registry, SessionParams};
use trelay_proto::codec::{str_from_counted, str_from_fixed};
use trelay_proto::Reader;

/// Protocol version trelayd speaks.
pub const VERSION_MAJOR: u32 = 2;
/// Protocol minor trelayd speaks.
pub const VERSION_MINOR: u32 = 13;
/// GET_CONFIGURATION flag: `lttng clear` allowed.
const CLEAR_ALLOWED: u64 = 1;

/// VERSION: reply with our own version; negotiate `min(13, peer minor)`.
pub(super) fn version(conn: &mut Conn, p: &[u8]) -> Flow {
    let mut r = Reader::new(p);
    let (Some(major), Some(minor)) = (r.u32(), r.u32()) else {
        return Flow::Close(format!("VERSION: payload of {} bytes", p.len()));
    };
    conn.out.extend_from_slice(&VERSION_MAJOR.to_be_bytes());
    conn.out.extend_from_slice(&VERSION_MINOR.to_be_bytes());
    conn.minor = Some(minor.min(VERSION_MINOR));
    if major != VERSION_MAJOR {
        return Flow::Close(format!(
            "VERSION: peer major {major}, ours is {VERSION_MAJOR}"
        ));
    }
    tracing::debug!(peer = %conn.peer, major, minor, "version negotiated");
    Flow::Continue
}

/// GET_CONFIGURATION: query flags must be 0; reply (OK, CLEAR_ALLOWED?).
pub(super) fn get_configuration(registry: &Registry, conn: &mut Conn, p: &[u8]) -> Flow {
    let flags = Reader::new(p).u64();
    let (rc, cfg) = match flags {
        Some(0) => (
            code::OK,
            if registry.settings.allow_clear {
                CLEAR_ALLOWED
            } else {
                0
            },
        ),
        _ => (code::INVALID_PROTOCOL, 0),
    };
    conn.out.extend_from_slice(&rc.to_be_bytes());
    conn.out.extend_from_slice(&cfg.to_be_bytes());
    if rc == code::OK {
        Flow::Continue
    } else {
        Flow::Close(format!("GET_CONFIGURATION: unsupported query {flags:?}"))
    }
}

/// A decoded CREATE_SESSION (any layout).
struct Create {
    name: String,
    hostname: String,
    base_path: String,
    live_timer: u32,
    snapshot: bool,
    name_has_time: bool,
    uuid: [u8; 16],
    sessiond_session_id: u64,
    creation_time: u64,
    current_chunk: Option<u64>,
}

fn decode_2_11(p: &[u8]) -> Result<Create, String> {
    let mut r = Reader::new(p);
    let short = || "payload shorter than its fixed part".to_owned();
    let name_len = r.u32().ok_or_else(short)? as usize;
    let host_len = r.u32().ok_or_else(short)? as usize;
    let base_len = r.u32().ok_or_else(short)? as usize;
    if name_len == 0 || name_len > 255 || host_len == 0 || host_len > 256 || base_len > 4096 {
        return Err(format!(
            "bad name lengths ({name_len}, {host_len}, {base_len})"
        ));
    }
    let live_timer = r.u32().ok_or_else(short)?;
    let snapshot = r.u8().ok_or_else(short)? != 0;
    let name_has_time = r.u8().ok_or_else(short)? != 0;
    let uuid: [u8; 16] = r.array().ok_or_else(short)?;
    let sessiond_session_id = r.u64().ok_or_else(short)?;
    let creation_time = r.u64().ok_or_else(short)?;
    let chunk_set = r.u8().ok_or_else(short)? != 0;
    let chunk = r.u64().ok_or_else(short)?;
    let names = "declared name lengths reach past the payload".to_owned();
    let name = str_from_counted(
        r.bytes(name_len).ok_or_else(|| names.clone())?,
        "session_name",
    )
    .map_err(|e| e.to_string())?;
    let hostname = str_from_counted(r.bytes(host_len).ok_or_else(|| names.clone())?, "hostname")
        .map_err(|e| e.to_string())?;
    let base_path = if base_len == 0 {
        String::new()
    } else {
        str_from_counted(r.bytes(base_len).ok_or(names)?, "base_path").map_err(|e| e.to_string())?
    };
    if uuid == [0; 16] {
        return Err("sessiond uuid is all zeros".into());
    }
    Ok(Create {
        name,
        hostname,
        base_path,
        live_timer,
        snapshot,
        name_has_time,
        uuid,
        sessiond_session_id,
        creation_time,
        current_chunk: chunk_set.then_some(chunk),
    })
}

fn decode_2_4(p: &[u8]) -> Result<Create, String> {
    let mut r = Reader::new(p);
    let short = || format!("payload of {} bytes, expected 327", p.len());
    let name = str_from_fixed(r.bytes(255).ok_or_else(short)?, "session_name")
        .map_err(|e| e.to_string())?;
    let hostname =
        str_from_fixed(r.bytes(64).ok_or_else(short)?, "hostname").map_err(|e| e.to_string())?;
    let live_timer = r.u32().ok_or_else(short)?;
    let snapshot = r.u32().ok_or_else(short)? != 0;
    Ok(Create {
        name,
        hostname,
        base_path: String::new(),
        live_timer,
        snapshot,
        name_has_time: false,
        uuid: [0; 16],
        sessiond_session_id: 0,
        creation_time: now_secs(),
        current_chunk: None,
    })
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn validate(c: &Create) -> Result<(String, String, String), NameError> {
    Ok((
        layout::component("session name", &c.name)?.to_owned(),
        layout::component("hostname", &c.hostname)?.to_owned(),
        layout::relative_path("base path", &c.base_path, true)?,
    ))
}

/// CREATE_SESSION: reply (relay session id, status[, output path]).
pub(super) fn create_session(registry: &Registry, conn: &mut Conn, p: &[u8]) -> Flow {
    let minor = conn.minor.unwrap_or(0);
    if conn.session.is_some() {
        reply(conn, minor, 0, code::FATAL, "");
        return Flow::Close("CREATE_SESSION: this connection already has a session".into());
    }
    let decoded = if minor >= 11 {
        decode_2_11(p)
    } else if minor >= 4 {
        decode_2_4(p)
    } else {
        Err("peer negotiated no CREATE_SESSION payload (minor < 4): unsupported".into())
    };
    let refuse = |conn: &mut Conn, why: String| {
        tracing::error!(peer = %conn.peer, "CREATE_SESSION refused: {why}");
        reply(conn, minor, 0, code::FATAL, "");
        Flow::Continue
    };
    let c = match decoded {
        Ok(c) => c,
        Err(why) => return refuse(conn, why),
    };
    let (name, hostname, base_path) = match validate(&c) {
        Ok(v) => v,
        Err(e) => return refuse(conn, e.to_string()),
    };
    let session = registry.create_session(SessionParams {
        name,
        hostname,
        base_path,
        live_timer: c.live_timer,
        snapshot: c.snapshot,
        name_has_time: c.name_has_time,
        minor,
        sessiond_uuid: c.uuid,
        sessiond_session_id: c.sessiond_session_id,
        creation_time: c.creation_time,
    });
    if let Some(chunk_id) = c.current_chunk {
        match registry.chunks.get(&session.chunk_key(chunk_id)) {
            Some(chunk) => session.lock().current_chunk = Some(chunk),
            None => {
                registry.remove_session(session.id);
                return refuse(conn, format!("current chunk {chunk_id} is unknown"));
            }
        }
    }
    if minor < 11 {
        // Pre-2.11 peers send stream paths relative to the output root: one anonymous chunk there.
        let key = crate::session::ChunkKey {
            sessiond_uuid: [0; 16],
            sessiond_session_id: u64::MAX - session.id.0,
            chunk_id: 0,
        };
        let (chunk, _) =
            registry
                .chunks
                .publish(key, c.creation_time, registry.output(), None, String::new);
        session.lock().current_chunk = Some(chunk);
    }
    let path = session.rel_dir.to_string_lossy().into_owned();
    tracing::info!(
        peer = %conn.peer,
        session = %session.id,
        name = %session.params.name,
        host = %session.params.hostname,
        live_timer = c.live_timer,
        snapshot = c.snapshot,
        %path,
        "session created"
    );
    reply(conn, minor, session.id.0, code::OK, &path);
    conn.session = Some(session);
    Flow::Continue
}

fn reply(conn: &mut Conn, minor: u32, id: u64, rc: u32, path: &str) {
    conn.out.extend_from_slice(&id.to_be_bytes());
    conn.out.extend_from_slice(&rc.to_be_bytes());
    if minor >= 11 {
        if rc == code::OK {
            let len = u32::try_from(path.len() + 1).unwrap_or(0);
            conn.out.extend_from_slice(&len.to_be_bytes());
            conn.out.extend_from_slice(path.as_bytes());
            conn.out.push(0);
        } else {
            conn.out.extend_from_slice(&0u32.to_be_bytes());
        }
    }
}
