//! The per-connection live state machine: one [`Viewer`] per viewer connection.
//!
//! Sans-IO: [`Viewer::handle`] takes a decoded request, the current time and the relay as a
//! [`Source`], writes the reply's fixed part into a caller's buffer and returns a [`Step`]:
//! send it (optionally followed by a byte range of a file, sent by the caller without a copy),
//! wait for the stream's next commit before deciding (RETRY pacing), or close the connection.
//!
//! What it keeps per viewer: whether CONNECT and CREATE_SESSION happened, the live minor
//! negotiated at CONNECT (`min(viewer's, 15)`: below 15 CTF 2 sessions are neither listed nor
//! attachable, as the viewer could not tell their format), the sessions it
//! attached to (each with the set of streams already sent to it, so it never gets one twice and
//! its NEW_STREAM flag is its own) and its viewer streams (next entry number, the packet it may
//! read, metadata bytes sent). Any number of viewers can attach to one session; none affects
//! another, and a viewer only reaches streams of sessions it attached to.

use super::settings::LiveSettings;
use super::source::{Source, StreamInfo};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;
use trelay_proto::codec::DecodeError;
use trelay_proto::lttng::live::records::{NAME_LEN, PATH_LEN, TRACE_FORMAT_MINOR};
use trelay_proto::lttng::live::{
    AttachStatus, Command, ConnectReply, ConnectionType, CreateSessionStatus, DetachStatus, Seek,
    SessionRecord, StreamRecord, ViewerReply, ViewerRequest, ERR_UNKNOWN_COMMAND, PROTOCOL_MAJOR,
    PROTOCOL_MINOR,
};
use trelay_proto::{CtfTraceId, SessionId, StreamId, TraceFormat, ViewerSessionId};

/// Bytes of a file to send after the reply's fixed part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSlice<F> {
    /// The file.
    pub file: F,
    /// Where to start.
    pub offset: u64,
    /// How many bytes.
    pub len: u64,
}

/// What the caller does after [`Viewer::handle`].
#[derive(Debug)]
pub enum Step<S: Source> {
    /// Send the buffer, then the file bytes if any.
    Reply(Option<FileSlice<S::File>>),
    /// Nothing to answer yet: wait until `stream` publishes a commit past `generation` or
    /// `until` passes, then handle the same request again with `may_hold = false`.
    Hold {
        /// The stream to watch.
        stream: S::Stream,
        /// Its generation when the request was handled.
        generation: u64,
        /// Latest time to answer.
        until: Instant,
    },
    /// Send the buffer (possibly empty), then close the connection.
    Close(String),
}

/// The packet a viewer stream may read: the last index entry sent for it.
#[derive(Debug, Clone)]
pub(super) struct Packet<F> {
    pub(super) file: F,
    pub(super) offset: u64,
    pub(super) len: u64,
}

/// A stream sent to this viewer.
#[derive(Debug)]
pub(super) struct ViewerStream<S: Source> {
    pub(super) stream: S::Stream,
    pub(super) info: StreamInfo,
    pub(super) session: SessionId,
    /// Next entry number to send.
    pub(super) next: u64,
    pub(super) packet: Option<Packet<S::File>>,
    /// Metadata bytes sent (metadata streams).
    pub(super) metadata_sent: u64,
}

/// A session this viewer attached to.
pub(super) struct Attachment<S: Source> {
    pub(super) session: S::Session,
    pub(super) ticket: S::Ticket,
    /// Every stream already sent (or deliberately skipped): never sent again.
    pub(super) known: HashSet<StreamId>,
    /// Traces whose metadata stream was sent.
    pub(super) traces: HashSet<CtfTraceId>,
    /// Announcement generation `has_new` was computed at.
    pub(super) seen_generation: Option<u64>,
    /// An announced stream is waiting for GET_NEW_STREAMS.
    pub(super) has_new: bool,
}

/// One viewer connection's protocol state.
pub struct Viewer<S: Source> {
    pub(super) id: ViewerSessionId,
    pub(super) peer: String,
    connected: bool,
    /// Live minor negotiated at CONNECT.
    minor: u32,
    pub(super) session_created: bool,
    pub(super) settings: LiveSettings,
    pub(super) attached: BTreeMap<SessionId, Attachment<S>>,
    pub(super) streams: HashMap<StreamId, ViewerStream<S>>,
    /// Metadata viewer stream of each trace.
    pub(super) metadata_of: HashMap<CtfTraceId, StreamId>,
    last_activity: Instant,
    /// The live ACL's verdict for this viewer (`None`: sees everything).
    scope: Option<crate::identity::Scope>,
}

impl<S: Source> std::fmt::Debug for Viewer<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Viewer")
            .field("id", &self.id)
            .field("peer", &self.peer)
            .field("attached", &self.attached.keys().collect::<Vec<_>>())
            .field("streams", &self.streams.len())
            .finish()
    }
}

impl<S: Source> Viewer<S> {
    /// A viewer connection from `peer`; `id` is the viewer session id CONNECT will report.
    pub fn new(id: ViewerSessionId, peer: String, settings: LiveSettings, now: Instant) -> Self {
        Viewer {
            id,
            peer,
            connected: false,
            minor: 0,
            session_created: false,
            settings,
            attached: BTreeMap::new(),
            streams: HashMap::new(),
            metadata_of: HashMap::new(),
            last_activity: now,
            scope: None,
        }
    }

    /// Limits what the viewer may list and attach to (the live ACL); `None`: everything.
    pub fn with_scope(mut self, scope: Option<crate::identity::Scope>) -> Self {
        self.scope = scope;
        self
    }

    fn visible(&self, info: &super::SessionInfo) -> bool {
        self.scope
            .as_ref()
            .is_none_or(|s| s.allows(&info.hostname, &info.name))
    }

    /// When the connection counts as idle and must be closed, if an idle timeout is set.
    pub fn idle_deadline(&self) -> Option<Instant> {
        self.settings
            .idle_timeout()
            .and_then(|d| self.last_activity.checked_add(d))
    }

    /// Sessions attached.
    pub fn attached_sessions(&self) -> Vec<SessionId> {
        self.attached.keys().copied().collect()
    }

    /// Handles one request; the reply's fixed part goes into `out` (cleared first).
    pub fn handle(
        &mut self,
        src: &S,
        req: ViewerRequest,
        now: Instant,
        may_hold: bool,
        out: &mut Vec<u8>,
    ) -> Step<S> {
        out.clear();
        self.last_activity = now;
        if !self.connected && !matches!(req, ViewerRequest::Connect(_)) {
            return Step::Close(format!("{:?} before CONNECT", req.command()));
        }
        match req {
            ViewerRequest::Connect(c) => {
                if c.major != PROTOCOL_MAJOR {
                    return Step::Close(format!("protocol major {} is not 2", c.major));
                }
                self.connected = true;
                self.minor = c.minor.min(PROTOCOL_MINOR);
                // A CONNECT again at a lower minor: sessions it can no longer tell the format
                // of are dropped, so it never reads CTF 2 below 15.
                let unspeakable: Vec<SessionId> = self
                    .attached
                    .iter()
                    .filter(|(_, a)| !self.speaks(src.session_info(&a.session).trace_format))
                    .map(|(id, _)| *id)
                    .collect();
                for id in unspeakable {
                    tracing::warn!(peer = %self.peer, viewer = %self.id, session = %id, minor = self.minor, "viewer re-connected below 2.{TRACE_FORMAT_MINOR}: detached from its CTF 2 session");
                    self.forget_session(id);
                }
                let id = match c.conn_type {
                    ConnectionType::Command => self.id,
                    ConnectionType::Notification => ViewerSessionId(0),
                };
                tracing::debug!(peer = %self.peer, viewer = %self.id, announced = c.minor, minor = self.minor, "viewer connected");
                reply(
                    out,
                    ViewerReply::Connect(ConnectReply {
                        viewer_session_id: id,
                        major: PROTOCOL_MAJOR,
                        minor: PROTOCOL_MINOR,
                        conn_type: 0,
                    }),
                )
            }
            ViewerRequest::CreateSession => {
                self.session_created = true;
                reply(out, ViewerReply::CreateSession(CreateSessionStatus::Ok))
            }
            ViewerRequest::ListSessions => {
                ViewerReply::ListSessions(self.list(src)).encode_at(self.minor, out);
                Step::Reply(None)
            }
            ViewerRequest::AttachSession {
                session_id, seek, ..
            } => {
                let (status, streams) = self.attach(src, session_id, seek);
                reply(out, ViewerReply::AttachSession { status, streams })
            }
            ViewerRequest::DetachSession { session_id } => {
                let status = self.detach(src, session_id);
                reply(out, ViewerReply::DetachSession(status))
            }
            ViewerRequest::GetNewStreams { session_id } => {
                let (status, streams) = self.new_streams(src, session_id);
                reply(out, ViewerReply::NewStreams { status, streams })
            }
            ViewerRequest::GetNextIndex { stream_id } => {
                self.next_index(src, stream_id, now, may_hold, out)
            }
            ViewerRequest::GetPacket {
                stream_id,
                offset,
                len,
            } => self.packet(src, stream_id, offset, len, out),
            ViewerRequest::GetMetadata { stream_id } => self.metadata(src, stream_id, out),
        }
    }

    /// Handles a request that did not decode: unknown commands get `LTTNG_ERR_UNK` and the
    /// connection closes; an ATTACH_SESSION with a bad seek gets SEEK_ERR; anything else closes.
    pub fn handle_undecodable(
        &mut self,
        cmd: u32,
        err: &DecodeError,
        now: Instant,
        out: &mut Vec<u8>,
    ) -> Step<S> {
        out.clear();
        self.last_activity = now;
        match err {
            DecodeError::UnknownCommand(_) => {
                reply::<S>(
                    out,
                    ViewerReply::UnknownCommand {
                        code: ERR_UNKNOWN_COMMAND,
                    },
                );
                Step::Close(format!("unknown command {cmd}"))
            }
            DecodeError::InvalidValue {
                field: "attach.seek",
                value,
            } if self.connected && cmd == Command::AttachSession.to_u32() => {
                tracing::warn!(peer = %self.peer, viewer = %self.id, seek = value, "ATTACH_SESSION with an invalid seek");
                reply(
                    out,
                    ViewerReply::AttachSession {
                        status: AttachStatus::SeekError,
                        streams: Vec::new(),
                    },
                )
            }
            other => Step::Close(format!("bad request (command {cmd}): {other}")),
        }
    }

    /// Whether this viewer's protocol can carry a session of `format`.
    fn speaks(&self, format: TraceFormat) -> bool {
        format == TraceFormat::Ctf1_8 || self.minor >= TRACE_FORMAT_MINOR
    }

    fn list(&self, src: &S) -> Vec<SessionRecord> {
        src.sessions()
            .iter()
            .map(|s| src.session_info(s))
            .filter(|i| i.live_timer > 0 && !i.closed && self.visible(i))
            .filter(|i| {
                let ok = self.speaks(i.trace_format);
                if !ok {
                    tracing::debug!(peer = %self.peer, viewer = %self.id, session = %i.id, minor = self.minor, "session not listed: {} needs live protocol 2.{TRACE_FORMAT_MINOR}", i.trace_format);
                }
                ok
            })
            .map(|i| SessionRecord {
                id: i.id,
                live_timer: i.live_timer,
                clients: i.viewers,
                streams: i.streams,
                hostname: i.hostname,
                session_name: i.name,
                trace_format: i.trace_format,
            })
            .filter(|r| {
                // Below 15 the record's fields are 64 and 255 bytes with a NUL; a longer name
                // could not be matched exactly by a viewer, so such sessions are never listed.
                let fits = r.fits(self.minor);
                if !fits {
                    tracing::debug!(session = %r.id, "session not listed: host or session name too long for the live protocol");
                }
                fits
            })
            .collect()
    }

    fn attach(&mut self, src: &S, id: SessionId, seek: Seek) -> (AttachStatus, Vec<StreamRecord>) {
        if !self.session_created {
            tracing::warn!(peer = %self.peer, viewer = %self.id, session = %id, "ATTACH_SESSION before CREATE_SESSION");
            return (AttachStatus::NoSession, Vec::new());
        }
        let Some(session) = src.session(id) else {
            tracing::info!(peer = %self.peer, viewer = %self.id, session = %id, "ATTACH_SESSION: unknown session");
            return (AttachStatus::Unknown, Vec::new());
        };
        let info = src.session_info(&session);
        if !self.visible(&info) {
            // Outside the viewer's ACL: as if the session did not exist.
            tracing::warn!(peer = %self.peer, viewer = %self.id, session = %id, "ATTACH_SESSION refused by the live ACL");
            return (AttachStatus::Unknown, Vec::new());
        }
        if info.live_timer == 0 {
            return (AttachStatus::NotLive, Vec::new());
        }
        if !self.speaks(info.trace_format) {
            // As lttng-relayd 2.15: the viewer could not read it, so it does not exist for it.
            tracing::warn!(peer = %self.peer, viewer = %self.id, session = %id, minor = self.minor, "ATTACH_SESSION refused: a {} session needs live protocol 2.{TRACE_FORMAT_MINOR}, the viewer speaks 2.{}", info.trace_format, self.minor);
            return (AttachStatus::Unknown, Vec::new());
        }
        if info.closed {
            return (AttachStatus::Unknown, Vec::new());
        }
        // Attaching again restarts this viewer's reading of the session.
        self.forget_session(id);
        let ticket = src.attach(&session, self.id, &self.peer);
        self.attached.insert(
            id,
            Attachment {
                session,
                ticket,
                known: HashSet::new(),
                traces: HashSet::new(),
                seen_generation: None,
                has_new: false,
            },
        );
        let streams = self.take_new_streams(src, id, seek);
        tracing::info!(peer = %self.peer, viewer = %self.id, session = %id, name = %info.name, ?seek, streams = streams.len(), "viewer attached");
        (AttachStatus::Ok, streams)
    }

    fn detach(&mut self, src: &S, id: SessionId) -> DetachStatus {
        if !self.session_created {
            return DetachStatus::Error;
        }
        if self.attached.contains_key(&id) {
            self.forget_session(id);
            tracing::info!(peer = %self.peer, viewer = %self.id, session = %id, "viewer detached");
            return DetachStatus::Ok;
        }
        if src.session(id).is_some() {
            DetachStatus::Error
        } else {
            DetachStatus::Unknown
        }
    }

    /// Drops the attachment of session `id` and its viewer streams.
    pub(super) fn forget_session(&mut self, id: SessionId) {
        self.attached.remove(&id);
        self.streams.retain(|_, vs| vs.session != id);
        let streams = &self.streams;
        self.metadata_of.retain(|_, sid| streams.contains_key(sid));
    }
}

/// Encodes `r` into `out`; a reply with no file part.
pub(super) fn reply<S: Source>(out: &mut Vec<u8>, r: ViewerReply<'_>) -> Step<S> {
    r.encode(out);
    Step::Reply(None)
}

/// The stream record of `info`.
pub(super) fn record(info: &StreamInfo) -> Option<StreamRecord> {
    (info.path.len() < PATH_LEN && info.channel.len() < NAME_LEN).then(|| StreamRecord {
        id: info.id,
        ctf_trace_id: info.trace,
        metadata_flag: u32::from(info.is_metadata),
        path_name: info.path.clone(),
        channel_name: info.channel.clone(),
    })
}
