//! The control port: strictly sequential request → reply, one relay session per connection.
//!
//! Framing: a 24-byte header (`circuit_id`, `data_size`, `cmd`, `cmd_version`, big-endian), then
//! `data_size` payload bytes; replies are unframed and their size is implied by the command.
//! Payloads are capped before anything is read (SEND_METADATA by the metadata cap, every other
//! command by [`MAX_PAYLOAD`]) and read into one reused buffer. One file per command family:
//! [`setup`] (VERSION, GET_CONFIGURATION, CREATE_SESSION), [`streams`] (ADD_STREAM, STREAMS_SENT,
//! SEND_METADATA, SEND_INDEX, CLOSE_STREAM, RESET_METADATA), [`pending`] (the data-pending
//! family), [`chunks`] (trace chunks and rotation).
//!
//! Errors follow lttng-relayd: the command gets its error reply, then the connection is closed and
//! its session aborted; commands that need a session before one exists, or VERSION first, get no
//! reply. Nothing a peer sends ends more than its own connection and session.

mod chunks;
mod pending;
mod setup;
mod streams;

use crate::session::{Registry, Session};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// Size of the control header.
pub const HEADER_LEN: usize = 24;
/// Cap on the payload of every command but SEND_METADATA.
pub const MAX_PAYLOAD: u64 = 1 << 20;
/// How long the rest of a message may take once its header arrived.
const MESSAGE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// LTTng error codes used in replies.
pub mod code {
    /// Success.
    pub const OK: u32 = 10;
    /// Unknown error.
    pub const UNK: u32 = 11;
    /// Fatal error.
    pub const FATAL: u32 = 25;
    /// Out of memory (also: unknown chunk at CLOSE_TRACE_CHUNK).
    pub const NOMEM: u32 = 26;
    /// Invalid argument.
    pub const INVALID: u32 = 97;
    /// Invalid protocol.
    pub const INVALID_PROTOCOL: u32 = 152;
    /// File creation error.
    pub const FILE_CREATION_ERROR: u32 = 153;
}

/// Command numbers.
pub mod cmd {
    /// ADD_STREAM.
    pub const ADD_STREAM: u32 = 1;
    /// CREATE_SESSION.
    pub const CREATE_SESSION: u32 = 2;
    /// START_DATA.
    pub const START_DATA: u32 = 3;
    /// VERSION.
    pub const VERSION: u32 = 5;
    /// SEND_METADATA.
    pub const SEND_METADATA: u32 = 6;
    /// CLOSE_STREAM.
    pub const CLOSE_STREAM: u32 = 7;
    /// DATA_PENDING.
    pub const DATA_PENDING: u32 = 8;
    /// QUIESCENT_CONTROL.
    pub const QUIESCENT_CONTROL: u32 = 9;
    /// BEGIN_DATA_PENDING.
    pub const BEGIN_DATA_PENDING: u32 = 10;
    /// END_DATA_PENDING.
    pub const END_DATA_PENDING: u32 = 11;
    /// SEND_INDEX.
    pub const SEND_INDEX: u32 = 13;
    /// STREAMS_SENT.
    pub const STREAMS_SENT: u32 = 16;
    /// RESET_METADATA.
    pub const RESET_METADATA: u32 = 17;
    /// ROTATE_STREAMS.
    pub const ROTATE_STREAMS: u32 = 18;
    /// CREATE_TRACE_CHUNK.
    pub const CREATE_TRACE_CHUNK: u32 = 19;
    /// CLOSE_TRACE_CHUNK.
    pub const CLOSE_TRACE_CHUNK: u32 = 20;
    /// TRACE_CHUNK_EXISTS.
    pub const TRACE_CHUNK_EXISTS: u32 = 21;
    /// GET_CONFIGURATION.
    pub const GET_CONFIGURATION: u32 = 22;
}

/// What to do after a command.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Send the reply (if any) and read the next command.
    Continue,
    /// Send the reply (if any), then close the connection and abort the session.
    Close(String),
}

/// State of one control connection.
pub(crate) struct Conn {
    /// Negotiated minor, once VERSION was received.
    pub minor: Option<u32>,
    /// The relay session this connection created.
    pub session: Option<Arc<Session>>,
    /// The reply being built.
    pub out: Vec<u8>,
    /// Peer address for logs.
    pub peer: String,
}

impl Conn {
    /// Appends a generic reply.
    pub fn status(&mut self, code: u32) {
        self.out.extend_from_slice(&code.to_be_bytes());
    }

    /// Appends a generic error reply and closes with `why`.
    pub fn fail(&mut self, code: u32, why: String) -> Flow {
        self.status(code);
        Flow::Close(why)
    }

    /// The session if VERSION was done and CREATE_SESSION succeeded (the gate of most
    /// commands); `None` means: drop the connection without a reply.
    pub fn gated(&self) -> Option<(Arc<Session>, u32)> {
        Some((self.session.clone()?, self.minor?))
    }
}

/// Serves one control connection.
pub async fn handle(mut sock: TcpStream, registry: Arc<Registry>, shutdown: CancellationToken) {
    let peer = sock
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into());
    let mut conn = Conn {
        minor: None,
        session: None,
        out: Vec::with_capacity(256),
        peer,
    };
    let mut payload = Vec::new();
    let outcome = serve(&mut sock, &registry, &shutdown, &mut conn, &mut payload).await;
    let aborted = match &outcome {
        Ok(()) => false,
        Err(why) => {
            tracing::error!(peer = %conn.peer, session = ?conn.session.as_ref().map(|s| s.id.0), "control connection closed: {why}");
            true
        }
    };
    if let Some(session) = conn.session.take() {
        if !shutdown.is_cancelled() {
            registry.close_session(&session, aborted);
        }
    }
}

async fn serve(
    sock: &mut TcpStream,
    registry: &Registry,
    shutdown: &CancellationToken,
    conn: &mut Conn,
    payload: &mut Vec<u8>,
) -> Result<(), String> {
    let mut header = [0u8; HEADER_LEN];
    loop {
        let first = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            r = sock.read(&mut header) => r.map_err(|e| format!("read: {e}"))?,
        };
        if first == 0 {
            return Ok(());
        }
        let (size, command) = tokio::time::timeout(MESSAGE_TIMEOUT, async {
            let rest = header.get_mut(first..).unwrap_or(&mut []);
            sock.read_exact(rest)
                .await
                .map_err(|e| format!("read: {e}"))?;
            let mut r = trelay_proto::Reader::new(&header);
            let _circuit = r.u64();
            let size = r.u64().unwrap_or(u64::MAX);
            let command = r.u32().unwrap_or(0);
            let cap = if command == cmd::SEND_METADATA {
                registry.settings.max_metadata_chunk
            } else {
                MAX_PAYLOAD
            };
            if size > cap {
                return Err(format!(
                    "command {command}: payload of {size} bytes exceeds the cap of {cap}"
                ));
            }
            let len = usize::try_from(size).map_err(|_| "payload too large".to_owned())?;
            payload.clear();
            payload.resize(len, 0);
            sock.read_exact(payload)
                .await
                .map_err(|e| format!("read payload: {e}"))?;
            Ok::<_, String>((size, command))
        })
        .await
        .map_err(|_| "peer stalled in the middle of a message".to_owned())??;
        let _ = size;
        conn.out.clear();
        let flow = dispatch(registry, conn, command, payload);
        if !conn.out.is_empty() {
            sock.write_all(&conn.out)
                .await
                .map_err(|e| format!("write reply: {e}"))?;
        }
        match flow {
            Some(Flow::Continue) => {
                if let Some(s) = &conn.session {
                    if let Some(why) = s.lock().failed.clone() {
                        return Err(format!("session {} failed: {why}", s.id));
                    }
                }
            }
            Some(Flow::Close(why)) => return Err(why),
            None => {
                return Err(format!(
                    "command {command} refused: no session or no VERSION"
                ))
            }
        }
    }
}

/// Runs one command; `None` means: close without a reply.
fn dispatch(registry: &Registry, conn: &mut Conn, command: u32, p: &[u8]) -> Option<Flow> {
    use cmd::*;
    Some(match command {
        VERSION => setup::version(conn, p),
        GET_CONFIGURATION => setup::get_configuration(registry, conn, p),
        CREATE_SESSION => setup::create_session(registry, conn, p),
        START_DATA => {
            conn.status(code::OK);
            Flow::Continue
        }
        ADD_STREAM => streams::add_stream(registry, conn, p)?,
        STREAMS_SENT => streams::streams_sent(registry, conn)?,
        SEND_METADATA => streams::send_metadata(registry, conn, p)?,
        SEND_INDEX => streams::send_index(registry, conn, p)?,
        CLOSE_STREAM => streams::close_stream(registry, conn, p)?,
        RESET_METADATA => streams::reset_metadata(registry, conn, p)?,
        DATA_PENDING => pending::data_pending(registry, conn, p)?,
        QUIESCENT_CONTROL => pending::quiescent_control(registry, conn, p)?,
        BEGIN_DATA_PENDING => pending::begin(registry, conn, p)?,
        END_DATA_PENDING => pending::end(registry, conn, p)?,
        CREATE_TRACE_CHUNK => chunks::create_trace_chunk(registry, conn, p)?,
        CLOSE_TRACE_CHUNK => chunks::close_trace_chunk(registry, conn, p)?,
        TRACE_CHUNK_EXISTS => chunks::trace_chunk_exists(registry, conn, p)?,
        ROTATE_STREAMS => chunks::rotate_streams(registry, conn, p)?,
        other => conn.fail(code::UNK, format!("unknown command {other}")),
    })
}
