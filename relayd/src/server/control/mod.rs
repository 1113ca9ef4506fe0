//! The control port: strictly sequential request → reply, one relay session per connection.
//!
//! Framing: a 24-byte header (`circuit_id`, `data_size`, `cmd`, `cmd_version`, big-endian), then
//! `data_size` payload bytes; replies are unframed and their size is implied by the command.
//! Payloads are capped before anything is read (SEND_METADATA by the metadata cap, every other
//! command by [`MAX_PAYLOAD`]) and read through a receive buffer that takes several commands per
//! read. One file per command family: `setup` (VERSION, GET_CONFIGURATION, CREATE_SESSION),
//! `streams` (ADD_STREAM, STREAMS_SENT, SEND_METADATA, SEND_INDEX, CLOSE_STREAM,
//! RESET_METADATA), `pending` (the data-pending family), `chunks` (trace chunks and rotation).
//!
//! Disk full: a SEND_METADATA that finds no space is run again once there is room (the command
//! stays in the receive buffer meanwhile), and while the session waits for space no further
//! command is read, so the sender's writes block instead of data being dropped.
//!
//! Errors follow lttng-relayd: the command gets its error reply, then the connection is closed and
//! its session aborted; commands that need a session before one exists, or VERSION first, get no
//! reply. Nothing a peer sends ends more than its own connection and session.

mod chunks;
mod pending;
mod setup;
mod streams;

use super::inbox::Inbox;
use super::room::Room;
use crate::session::{Registry, Session};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use trelay_proto::lttng::relayd::{
    decode_command, AddStreamReply, CloseTraceChunkReply, Command, CommandKind, ConfigurationFlags,
    ConfigurationReply, ControlHeader, CreateSessionReply, PendingReply, ProtocolMinor, Reply,
    ReturnCode, TraceChunkExistsReply,
};
use trelay_proto::{Decoded, SessionId, StreamId};

/// Size of the control header.
pub const HEADER_LEN: usize = trelay_proto::lttng::relayd::CONTROL_HEADER_LEN;
/// Cap on the payload of every command but SEND_METADATA.
pub const MAX_PAYLOAD: u64 = 1 << 20;
/// Size of the receive buffer: commands up to this size (all but large metadata chunks) are
/// parsed in place, several per read when the peer pipelines them.
const INBOX_LEN: usize = 64 * 1024;
/// How long the rest of a message may take once its header arrived.
const MESSAGE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
/// How long TRACE_CHUNK_EXISTS waits for released chunks to be archived before it answers.
const RELEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// What to do after a command.
#[derive(Debug)]
pub(crate) enum Flow {
    /// Send the reply (if any) and read the next command.
    Continue,
    /// The command found the disk full and changed nothing: wait for space and run it again.
    NoSpace(crate::storage::StorageError),
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
    /// Who the peer is (its configured name replaces the hostname it claims).
    pub identity: crate::identity::Peer,
}

impl Conn {
    /// The negotiated minor (0 before VERSION).
    pub fn minor(&self) -> ProtocolMinor {
        ProtocolMinor(self.minor.unwrap_or(0))
    }

    /// Appends a reply laid out for the negotiated minor.
    pub fn reply(&mut self, reply: Reply) {
        let minor = self.minor();
        reply.encode(minor, &mut self.out);
    }

    /// Appends a generic reply.
    pub fn status(&mut self, code: ReturnCode) {
        self.reply(Reply::Generic(code));
    }

    /// Appends a generic error reply and closes with `why`.
    pub fn fail(&mut self, code: ReturnCode, why: String) -> Flow {
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
pub async fn handle(
    mut sock: TcpStream,
    registry: Arc<Registry>,
    shutdown: CancellationToken,
    identity: crate::identity::Peer,
) {
    let peer = sock
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into());
    let mut conn = Conn {
        minor: None,
        session: None,
        out: Vec::with_capacity(256),
        peer,
        identity,
    };
    let mut payload = Vec::new();
    let outcome = serve(&mut sock, &registry, &shutdown, &mut conn, &mut payload).await;
    if let Ok(Some(first)) = &outcome {
        // trelay:// on the control port: its own handler from here on.
        let peer = conn.peer.clone();
        super::native::serve(&mut sock, peer, first, &registry, &shutdown, &conn.identity).await;
        return;
    }
    let aborted = match &outcome {
        Ok(_) => false,
        Err(why) => {
            tracing::error!(peer = %conn.peer, session = ?conn.session.as_ref().map(|s| s.id.0), "control connection closed: {why}");
            true
        }
    };
    if let Some(session) = conn.session.take() {
        if !shutdown.is_cancelled() {
            registry.close_session(&session, aborted, false);
        } else {
            session.lock().control_done = true;
        }
    }
}

async fn serve(
    sock: &mut TcpStream,
    registry: &Registry,
    shutdown: &CancellationToken,
    conn: &mut Conn,
    payload: &mut Vec<u8>,
) -> Result<Option<Vec<u8>>, String> {
    let mut drain = None;
    let mut inbox = Inbox::new(INBOX_LEN);
    let mut greeted = false;
    let mut budget_slot: Option<tokio::sync::OwnedSemaphorePermit> = None;
    let budget = &mut budget_slot;
    loop {
        if let Some(session) = &conn.session {
            let room = Room {
                registry,
                session,
                shutdown,
            };
            room.hold().await.map_err(|e| e.to_string())?;
        }
        let first = inbox.wait_first(sock, INBOX_LEN, shutdown, &mut drain);
        let more = if greeted {
            first.await
        } else {
            // A peer that sends nothing within the handshake deadline is let go.
            let limit = registry.gate.limits.handshake_timeout();
            match tokio::time::timeout(limit, first).await {
                Ok(r) => r,
                Err(_) => {
                    // A refusal, not a session failure: counted, logged under a budget.
                    let r = &registry.gate.refusals;
                    r.count("control", "handshake_timeout");
                    if let Some(skipped) = r.admit_line("handshake_timeout") {
                        tracing::warn!(
                            peer = %conn.peer,
                            skipped,
                            "control connection closed: nothing received within {limit:?} \
                             (handshake_timeout_ms)"
                        );
                    }
                    return Ok(None);
                }
            }
        }
        .map_err(|e| format!("read: {e}"))?;
        if !more {
            return Ok(None);
        }
        if !greeted {
            // The first bytes tell trelay:// (its magic) from an LTTng control header.
            let magic = trelay_proto::trelay::MAGIC.len();
            tokio::time::timeout(MESSAGE_TIMEOUT, inbox.fill(sock, magic, INBOX_LEN))
                .await
                .map_err(|_| "peer stalled in its first message".to_owned())?
                .map_err(|e| format!("read: {e}"))?;
            if trelay_proto::trelay::is_magic(inbox.data()) {
                return Ok(Some(inbox.data().to_vec()));
            }
        }
        greeted = true;
        let (hdr, in_inbox) = tokio::time::timeout(MESSAGE_TIMEOUT, async {
            inbox
                .fill(sock, HEADER_LEN, INBOX_LEN)
                .await
                .map_err(|e| format!("read: {e}"))?;
            let header = match ControlHeader::decode(inbox.data()) {
                Ok(Decoded::Done { msg, .. }) => msg,
                Ok(Decoded::Incomplete { .. }) => return Err("short header".to_owned()),
                Err(e) => return Err(format!("control header: {e}")),
            };
            inbox.consume(HEADER_LEN);
            let cap = if header.cmd == CommandKind::SendMetadata.to_u32() {
                registry.settings.max_metadata_chunk
            } else {
                MAX_PAYLOAD
            };
            if header.data_size > cap {
                return Err(format!(
                    "command {}: payload of {} bytes exceeds the cap of {cap}",
                    header.cmd, header.data_size
                ));
            }
            let len = header.payload_len();
            if len <= inbox.capacity() {
                // The usual case: the payload came with the header, or comes in one more read.
                inbox
                    .fill(sock, len, INBOX_LEN)
                    .await
                    .map_err(|e| format!("read payload: {e}"))?;
                return Ok::<_, String>((header, true));
            }
            // A large metadata chunk: what is buffered, then the rest read in place, once the
            // relay-wide metadata budget has room for it.
            let Some(permit) = registry.gate.reserve_metadata(len as u64).await else {
                return Err(format!(
                    "metadata payload of {len} bytes: the relay-wide metadata budget stays full"
                ));
            };
            *budget = Some(permit);
            payload.clear();
            payload.extend_from_slice(inbox.data());
            inbox.consume(payload.len());
            let have = payload.len();
            payload.resize(len, 0);
            sock.read_exact(payload.get_mut(have..).unwrap_or_default())
                .await
                .map_err(|e| format!("read payload: {e}"))?;
            Ok((header, false))
        })
        .await
        .map_err(|_| "peer stalled in the middle of a message".to_owned())??;
        conn.out.clear();
        let command = hdr.cmd;
        if command == CommandKind::TraceChunkExists.to_u32() {
            // Chunks that streams left are released by their commit: answer once it ran, and
            // once the releases it queued are carried out (archive or delete done).
            if let Some(s) = &conn.session {
                s.commit.idle(MESSAGE_TIMEOUT).await;
                let releases = registry.chunks.releases();
                let until = std::time::Instant::now() + RELEASE_WAIT;
                while releases.busy() && std::time::Instant::now() < until {
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
            }
        }
        let len = hdr.payload_len();
        let body = if in_inbox {
            inbox.data().get(..len).unwrap_or_default()
        } else {
            payload.as_slice()
        };
        let mut flow = dispatch(registry, conn, &hdr, body);
        let mut attempt = 0;
        while let Some(Flow::NoSpace(full)) = flow {
            let Some(session) = conn.session.clone() else {
                return Err(format!("command {command}: {full}"));
            };
            let room = Room {
                registry,
                session: &session,
                shutdown,
            };
            room.wait(full, attempt).await.map_err(|e| e.to_string())?;
            attempt = attempt.saturating_add(1);
            conn.out.clear();
            flow = dispatch(registry, conn, &hdr, body);
            if !matches!(flow, Some(Flow::NoSpace(_))) {
                room.cleared();
            }
        }
        if command == CommandKind::EndDataPending.to_u32() {
            // A session found quiescent was just given to its commit: answer once that commit
            // ran, so that what `lttng stop` / `lttng destroy` waited for is on disk, indexed,
            // when they return (a reader started right after sees every packet).
            if let Some(s) = conn.session.clone() {
                let idle = s.commit.idle(MESSAGE_TIMEOUT).await;
                if !idle && matches!(flow, Some(Flow::Continue)) {
                    // Not committed yet: still pending (the session daemon asks again).
                    conn.out.clear();
                    conn.reply(Reply::Pending(PendingReply::PENDING));
                }
                // That commit failed: what the sender waited for is not on disk.
                let failed = s.lock().failed.clone();
                if let (Some(why), Some(Flow::Continue)) = (failed, &flow) {
                    conn.out.clear();
                    conn.reply(Reply::Pending(PendingReply::UNKNOWN_STREAM));
                    flow = Some(Flow::Close(format!(
                        "END_DATA_PENDING: the session's commit failed: {why}"
                    )));
                }
            }
        }
        if in_inbox {
            inbox.consume(len);
        } else {
            // The large buffer goes back, and its share of the metadata budget with it.
            *payload = Vec::new();
            *budget = None;
        }
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
            Some(Flow::NoSpace(_)) => unreachable!("retried above"),
            None => {
                return Err(format!(
                    "command {command} refused: no session or no VERSION"
                ))
            }
        }
    }
}

/// Whether `kind` needs VERSION and CREATE_SESSION first (else: no reply, connection closed).
fn gated_kind(kind: CommandKind) -> bool {
    !matches!(
        kind,
        CommandKind::Version
            | CommandKind::GetConfiguration
            | CommandKind::CreateSession
            | CommandKind::StartData
            | CommandKind::SendMetadata
    )
}

/// Runs one command; `None` means: close without a reply.
fn dispatch(
    registry: &Registry,
    conn: &mut Conn,
    header: &ControlHeader,
    p: &[u8],
) -> Option<Flow> {
    let Ok(kind) = header.kind() else {
        return Some(conn.fail(ReturnCode::UNK, format!("unknown command {}", header.cmd)));
    };
    if gated_kind(kind) && conn.gated().is_none() {
        return None;
    }
    if gated_kind(kind) {
        // A failed session (a commit failed) has lost what it had not committed: no command
        // of it is answered OK any more (SEND_INDEX, DATA_PENDING, CLOSE_STREAM, ...), the
        // sender gets the command's error reply and the connection is closed.
        let failed = conn.session.as_ref().and_then(|s| s.lock().failed.clone());
        if let Some(why) = failed {
            return decode_failure(conn, kind, format!("{kind}: the session failed: {why}"));
        }
    }
    if kind == CommandKind::SendMetadata && conn.session.is_none() {
        return None;
    }
    let cmd = match decode_command(header, p, conn.minor()) {
        Ok(c) => c,
        Err(e) => return decode_failure(conn, kind, format!("{kind}: {e}")),
    };
    Some(match cmd {
        Command::Version(v) => setup::version(conn, v),
        Command::GetConfiguration(q) => setup::get_configuration(registry, conn, q),
        Command::CreateSession(c) => setup::create_session(registry, conn, c),
        Command::StartData => {
            conn.status(ReturnCode::OK);
            Flow::Continue
        }
        Command::AddStream(a) => streams::add_stream(registry, conn, a)?,
        Command::StreamsSent => streams::streams_sent(registry, conn)?,
        Command::SendMetadata(m) => streams::send_metadata(registry, conn, m)?,
        Command::SendIndex(i) => streams::send_index(registry, conn, i)?,
        Command::CloseStream(c) => streams::close_stream(registry, conn, c)?,
        Command::ResetMetadata(r) => streams::reset_metadata(registry, conn, r)?,
        Command::DataPending(d) => pending::data_pending(registry, conn, d)?,
        Command::QuiescentControl(id) => pending::quiescent_control(registry, conn, id)?,
        Command::BeginDataPending(id) => pending::begin(registry, conn, id)?,
        Command::EndDataPending(id) => pending::end(registry, conn, id)?,
        Command::CreateTraceChunk(c) => chunks::create_trace_chunk(registry, conn, c)?,
        Command::CloseTraceChunk(c) => chunks::close_trace_chunk(registry, conn, c)?,
        Command::TraceChunkExists(id) => chunks::trace_chunk_exists(registry, conn, id)?,
        Command::RotateStreams(r) => chunks::rotate_streams(registry, conn, r)?,
    })
}

/// The error reply for a payload that does not decode, in the shape the command's reply has.
fn decode_failure(conn: &mut Conn, kind: CommandKind, why: String) -> Option<Flow> {
    tracing::error!(peer = %conn.peer, "refused: {why}");
    let reply = match kind {
        CommandKind::Version | CommandKind::SendMetadata => return None,
        CommandKind::CreateSession => {
            conn.reply(Reply::CreateSession(CreateSessionReply {
                session_id: SessionId(0),
                ret_code: ReturnCode::FATAL,
                output_path: None,
            }));
            return Some(Flow::Continue);
        }
        CommandKind::AddStream => Reply::AddStream(AddStreamReply {
            handle: StreamId::UNSET,
            ret_code: ReturnCode::UNK,
        }),
        CommandKind::DataPending => Reply::Pending(PendingReply::UNKNOWN_STREAM),
        CommandKind::GetConfiguration => Reply::Configuration(ConfigurationReply {
            ret_code: ReturnCode::INVALID_PROTOCOL,
            flags: ConfigurationFlags(0),
        }),
        CommandKind::CloseTraceChunk => Reply::CloseTraceChunk(CloseTraceChunkReply::Failed {
            ret_code: ReturnCode::INVALID_PROTOCOL,
            path_length: 0,
        }),
        CommandKind::TraceChunkExists => Reply::TraceChunkExists(TraceChunkExistsReply {
            ret_code: ReturnCode::INVALID_PROTOCOL,
            exists: false,
        }),
        CommandKind::CreateTraceChunk | CommandKind::RotateStreams => {
            Reply::Generic(ReturnCode::INVALID_PROTOCOL)
        }
        _ => Reply::Generic(ReturnCode::UNK),
    };
    conn.reply(reply);
    Some(Flow::Close(why))
}
