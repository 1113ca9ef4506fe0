//! Unit tests of the live state machine against an in-memory [`Fake`] relay on virtual time.

mod discovery;
mod formats;
mod reading;

use super::source::{Announced, EntryError, SessionInfo, Source, StreamInfo, StreamView};
use super::{LiveSettings, Step, Viewer};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};
use trelay_proto::ctf::index::IndexEntry;
use trelay_proto::lttng::live::{
    decode_reply, ConnectRequest, ConnectionType, Seek, ViewerReply, ViewerRequest,
};
use trelay_proto::{CtfTraceId, Decoded, SessionId, StreamId, ViewerSessionId};

/// A stream of the fake relay: committed entries, beacon, close state, metadata bytes.
#[derive(Debug, Clone, Default)]
pub struct FakeStream {
    pub info: Option<StreamInfo>,
    pub entries: Vec<IndexEntry>,
    pub oldest: u64,
    pub beacon: Option<u64>,
    pub uncommitted: bool,
    pub closed: bool,
    pub metadata: u64,
    pub file_len: u64,
    pub generation: u64,
}

#[derive(Debug, Clone)]
pub struct FakeSession {
    pub info: SessionInfo,
    pub announced: Vec<StreamId>,
    pub generation: u64,
}

/// The fake relay.
#[derive(Debug, Default)]
pub struct Fake {
    pub sessions: RefCell<BTreeMap<SessionId, FakeSession>>,
    pub streams: RefCell<BTreeMap<StreamId, FakeStream>>,
    pub viewers: Rc<RefCell<BTreeMap<SessionId, u32>>>,
    pub scanned: RefCell<Vec<(SessionId, u64)>>,
}

/// A registration that decrements the fake's viewer count when dropped.
#[derive(Debug)]
pub struct FakeTicket(SessionId, Rc<RefCell<BTreeMap<SessionId, u32>>>);

impl Drop for FakeTicket {
    fn drop(&mut self) {
        if let Some(n) = self.1.borrow_mut().get_mut(&self.0) {
            *n -= 1;
        }
    }
}

/// A file of the fake: (stream, length).
pub type FakeFile = (StreamId, u64);

impl Source for Fake {
    type Session = SessionId;
    type Stream = StreamId;
    type File = FakeFile;
    type Ticket = FakeTicket;

    fn sessions(&self) -> Vec<SessionId> {
        self.sessions.borrow().keys().copied().collect()
    }
    fn session(&self, id: SessionId) -> Option<SessionId> {
        self.sessions.borrow().contains_key(&id).then_some(id)
    }
    fn session_info(&self, s: &SessionId) -> SessionInfo {
        let mut i = self.sessions.borrow()[s].info.clone();
        i.viewers = self.viewers.borrow().get(s).copied().unwrap_or(0);
        i
    }
    fn announced(&self, s: &SessionId) -> Announced<StreamId> {
        let sessions = self.sessions.borrow();
        Announced {
            generation: sessions[s].generation,
            streams: sessions[s].announced.clone(),
        }
    }
    fn generation(&self, s: &SessionId) -> u64 {
        self.sessions.borrow()[s].generation
    }
    fn attach(&self, s: &SessionId, _viewer: ViewerSessionId, _peer: &str) -> FakeTicket {
        *self.viewers.borrow_mut().entry(*s).or_default() += 1;
        FakeTicket(*s, self.viewers.clone())
    }
    fn scanned(&self, ticket: &FakeTicket, generation: u64) {
        self.scanned.borrow_mut().push((ticket.0, generation));
    }
    fn stream_info(&self, st: &StreamId) -> StreamInfo {
        self.streams.borrow()[st]
            .info
            .clone()
            .unwrap_or_else(|| panic!("no info"))
    }
    fn view(&self, st: &StreamId) -> StreamView {
        let streams = self.streams.borrow();
        let s = &streams[st];
        let session = self
            .sessions
            .borrow()
            .values()
            .find(|x| x.announced.contains(st))
            .map(|x| x.info.closed)
            .unwrap_or(false);
        StreamView {
            entries: s.entries.len() as u64,
            oldest: s.oldest,
            beacon: s.beacon.filter(|_| !s.uncommitted),
            ctf_stream_id: 7,
            all_committed: !s.uncommitted,
            closed: s.closed,
            session_closed: session,
            metadata: s.metadata,
            generation: s.generation,
        }
    }
    fn read_entry(&self, st: &StreamId, n: u64) -> Result<(IndexEntry, FakeFile), EntryError> {
        let streams = self.streams.borrow();
        let s = &streams[st];
        if n < s.oldest {
            return Err(EntryError::Gone(n));
        }
        let e = s
            .entries
            .get(n as usize)
            .copied()
            .ok_or(EntryError::Gone(n))?;
        Ok((e, (*st, s.file_len)))
    }
    fn metadata_file(&self, st: &StreamId) -> Option<FakeFile> {
        let streams = self.streams.borrow();
        Some((*st, streams[st].file_len))
    }
    fn file_len(&self, f: &FakeFile) -> std::io::Result<u64> {
        Ok(f.1)
    }
}

impl Fake {
    /// Adds a live session `id` named `name` on host `vm`.
    pub fn session(&self, id: u64, name: &str, live_timer: u32) -> SessionId {
        let sid = SessionId(id);
        self.sessions.borrow_mut().insert(
            sid,
            FakeSession {
                info: SessionInfo {
                    id: sid,
                    name: name.into(),
                    hostname: "vm".into(),
                    live_timer,
                    streams: 0,
                    viewers: 0,
                    closed: false,
                    trace_format: trelay_proto::TraceFormat::Ctf1_8,
                },
                announced: Vec::new(),
                generation: 0,
            },
        );
        sid
    }

    /// Announces stream `id` of trace `trace` in session `s`.
    pub fn announce(&self, s: SessionId, id: u64, trace: u64, metadata: bool) -> StreamId {
        let sid = StreamId(id);
        self.streams.borrow_mut().insert(
            sid,
            FakeStream {
                info: Some(StreamInfo {
                    id: sid,
                    trace: CtfTraceId(trace),
                    is_metadata: metadata,
                    path: "ust/uid/0/64-bit".into(),
                    channel: if metadata {
                        "metadata".into()
                    } else {
                        format!("chan_{id}")
                    },
                }),
                file_len: 1 << 20,
                ..FakeStream::default()
            },
        );
        let mut sessions = self.sessions.borrow_mut();
        let x = sessions.get_mut(&s).unwrap_or_else(|| panic!("no session"));
        x.announced.push(sid);
        x.generation += 1;
        sid
    }

    /// Commits one more 4 KiB packet on `st`.
    pub fn commit_packet(&self, st: StreamId) {
        let mut streams = self.streams.borrow_mut();
        let s = streams.get_mut(&st).unwrap_or_else(|| panic!("no stream"));
        let n = s.entries.len() as u64;
        s.entries.push(IndexEntry {
            offset: n * 4096,
            packet_size: 4096 * 8,
            content_size: 4000 * 8,
            timestamp_begin: 100 * n,
            timestamp_end: 100 * n + 99,
            events_discarded: 0,
            stream_id: 7,
            stream_instance_id: 0,
            packet_seq_num: n,
        });
        s.beacon = None;
        s.generation += 1;
    }

    /// Mutates stream `st`.
    pub fn with<R>(&self, st: StreamId, f: impl FnOnce(&mut FakeStream) -> R) -> R {
        f(self
            .streams
            .borrow_mut()
            .get_mut(&st)
            .unwrap_or_else(|| panic!("no stream")))
    }

    /// Sets the trace format of session `s`.
    pub fn set_format(&self, s: SessionId, format: trelay_proto::TraceFormat) {
        let mut sessions = self.sessions.borrow_mut();
        let x = sessions.get_mut(&s).unwrap_or_else(|| panic!("no session"));
        x.info.trace_format = format;
    }

    /// Marks session `s` closed (sender gone).
    pub fn close_session(&self, s: SessionId) {
        let mut sessions = self.sessions.borrow_mut();
        let x = sessions.get_mut(&s).unwrap_or_else(|| panic!("no session"));
        x.info.closed = true;
        x.generation += 1;
    }
}

/// A viewer under test with its own virtual clock.
pub struct T {
    pub v: Viewer<Fake>,
    pub now: Instant,
    pub out: Vec<u8>,
}

impl T {
    pub fn new(id: u64, settings: LiveSettings) -> T {
        let now = Instant::now();
        T {
            v: Viewer::new(ViewerSessionId(id), "test".into(), settings, now),
            now,
            out: Vec::new(),
        }
    }

    /// A viewer that did CONNECT and CREATE_SESSION.
    pub fn ready(id: u64, fake: &Fake) -> T {
        Self::ready_at(id, fake, 4)
    }

    /// A viewer that did CONNECT announcing live minor `minor`, and CREATE_SESSION.
    pub fn ready_at(id: u64, fake: &Fake, minor: u32) -> T {
        let mut t = T::new(id, LiveSettings::default());
        t.reply(fake, connect_at(minor));
        t.reply(fake, ViewerRequest::CreateSession);
        t
    }

    pub fn step(&mut self, fake: &Fake, r: ViewerRequest, may_hold: bool) -> Step<Fake> {
        self.now += Duration::from_millis(1);
        self.v.handle(fake, r, self.now, may_hold, &mut self.out)
    }

    /// Handles `r` (no hold) and decodes the reply's fixed part (and records).
    pub fn reply(&mut self, fake: &Fake, r: ViewerRequest) -> ViewerReply<'static> {
        let step = self.step(fake, r, false);
        assert!(matches!(step, Step::Reply(_)), "{r:?} gave {step:?}");
        decode(r.command().to_u32(), &self.out)
    }

    pub fn attach(&mut self, fake: &Fake, s: SessionId, seek: Seek) -> ViewerReply<'static> {
        self.reply(
            fake,
            ViewerRequest::AttachSession {
                session_id: s,
                offset: 0,
                seek,
            },
        )
    }

    pub fn next(&mut self, fake: &Fake, st: StreamId) -> trelay_proto::lttng::live::IndexReply {
        match self.reply(fake, ViewerRequest::GetNextIndex { stream_id: st }) {
            ViewerReply::NextIndex(i) => i,
            other => panic!("{other:?}"),
        }
    }
}

/// Decodes a reply's fixed part; packet and metadata replies lose their (absent) data.
pub fn decode(cmd: u32, out: &[u8]) -> ViewerReply<'static> {
    use trelay_proto::lttng::live::{MetadataReplyHead, PacketReplyHead};
    match cmd {
        5 => match PacketReplyHead::decode(out) {
            Ok(Decoded::Done { msg, .. }) => ViewerReply::Packet {
                status: msg.status,
                flags: msg.flags,
                data: &[],
            },
            other => panic!("{other:?}"),
        },
        6 => match MetadataReplyHead::decode(out) {
            Ok(Decoded::Done { msg, .. }) => {
                assert_eq!(out.len(), 12);
                ViewerReply::Metadata {
                    status: msg.status,
                    data: &[],
                }
            }
            other => panic!("{other:?}"),
        },
        _ => match decode_reply(cmd, out) {
            Ok(Decoded::Done { msg, used }) => {
                assert_eq!(used, out.len(), "reply has trailing bytes");
                match msg {
                    ViewerReply::Packet { .. } | ViewerReply::Metadata { .. } => unreachable!(),
                    ViewerReply::Connect(c) => ViewerReply::Connect(c),
                    ViewerReply::ListSessions(s) => ViewerReply::ListSessions(s),
                    ViewerReply::AttachSession { status, streams } => {
                        ViewerReply::AttachSession { status, streams }
                    }
                    ViewerReply::NextIndex(i) => ViewerReply::NextIndex(i),
                    ViewerReply::NewStreams { status, streams } => {
                        ViewerReply::NewStreams { status, streams }
                    }
                    ViewerReply::CreateSession(s) => ViewerReply::CreateSession(s),
                    ViewerReply::DetachSession(s) => ViewerReply::DetachSession(s),
                    ViewerReply::UnknownCommand { code } => ViewerReply::UnknownCommand { code },
                }
            }
            other => panic!("{other:?}"),
        },
    }
}

pub fn connect() -> ViewerRequest {
    connect_at(4)
}

/// CONNECT announcing live minor `minor`.
pub fn connect_at(minor: u32) -> ViewerRequest {
    ViewerRequest::Connect(ConnectRequest {
        viewer_session_id: ViewerSessionId::UNSET,
        major: 2,
        minor,
        conn_type: ConnectionType::Command,
    })
}

/// A live session 1 "s" with metadata stream 1 and data streams 2, 3 (trace 1).
pub fn setup() -> (Fake, SessionId, StreamId, StreamId, StreamId) {
    let f = Fake::default();
    let s = f.session(1, "s", 200_000);
    let m = f.announce(s, 1, 1, true);
    let a = f.announce(s, 2, 1, false);
    let b = f.announce(s, 3, 1, false);
    f.with(m, |x| x.metadata = 8192);
    (f, s, m, a, b)
}
