//! The narrow view of the relay that the live state machine reads: sessions, the streams each
//! session announced to viewers, and each stream's committed state.
//!
//! [`crate::live::Viewer`] is generic over [`Source`] so its decisions are unit-tested against an
//! in-memory fake; the relay implements it for [`crate::session::Registry`]
//! (`live/registry.rs`). Every method is short and synchronous: implementations take their locks
//! inside the call and never hand a guard back, so nothing the state machine holds can block
//! ingest while a reply is being written.

use trelay_proto::ctf::index::IndexEntry;
use trelay_proto::{CtfTraceId, SessionId, StreamId, TraceFormat, ViewerSessionId};

/// What LIST_SESSIONS and ATTACH_SESSION need to know about a relay session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// Relay session id.
    pub id: SessionId,
    /// Session name.
    pub name: String,
    /// Host name of the traced machine.
    pub hostname: String,
    /// Live timer in µs (0: not a live session).
    pub live_timer: u32,
    /// Number of streams of the session (metadata included).
    pub streams: u32,
    /// Viewers attached right now.
    pub viewers: u32,
    /// The sender's connections are gone: nothing new will arrive.
    pub closed: bool,
    /// Trace format: a viewer below live minor 15 never sees a CTF 2 session.
    pub trace_format: TraceFormat,
}

/// The immutable description of a stream, sent in stream records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    /// Relay stream handle (also the viewer stream id).
    pub id: StreamId,
    /// The CTF trace (directory) it belongs to.
    pub trace: CtfTraceId,
    /// Metadata stream of its trace.
    pub is_metadata: bool,
    /// Trace directory relative to the chunk (`ust/uid/0/64-bit`).
    pub path: String,
    /// Channel (stream file) name.
    pub channel: String,
}

/// What a viewer may see of one stream right now: committed state only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamView {
    /// Committed index entries, numbered from 0 since the stream was created.
    pub entries: u64,
    /// First entry number still readable (older tracefiles were overwritten or released).
    pub oldest: u64,
    /// The stream is idle up to this timestamp (a live beacon received after every entry, all
    /// of them committed).
    pub beacon: Option<u64>,
    /// CTF stream class id (for INACTIVE replies), `u64::MAX` when unknown.
    pub ctf_stream_id: u64,
    /// Every entry the stream received is committed.
    pub all_committed: bool,
    /// The stream is closed: no entry will ever be added.
    pub closed: bool,
    /// The stream's session lost its sender: nothing new will arrive.
    pub session_closed: bool,
    /// Committed metadata bytes (metadata streams), whole SEND_METADATA units.
    pub metadata: u64,
    /// Counter bumped at every commit published for this stream.
    pub generation: u64,
}

impl StreamView {
    /// No entry can be added any more and every one that will exist is visible.
    pub fn finished(&self) -> bool {
        self.all_committed && (self.closed || self.session_closed)
    }
}

/// The streams a session announced to viewers (published, and their trace's metadata with them),
/// in announcement order, closed ones included until every attached viewer has seen them.
#[derive(Debug, Clone)]
pub struct Announced<T> {
    /// Changes whenever a stream is announced or closes.
    pub generation: u64,
    /// The streams.
    pub streams: Vec<T>,
}

/// Why an index entry could not be read.
#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    /// The entry is not (or no longer) readable: not committed yet, or its tracefile was
    /// overwritten meanwhile.
    #[error("entry {0} is not readable")]
    Gone(u64),
    /// Reading the index file failed.
    #[error("reading entry {0}: {1}")]
    Io(u64, std::io::Error),
}

/// The relay as the live state machine sees it.
pub trait Source {
    /// A relay session handle.
    type Session: Clone;
    /// A relay stream handle (keeps the stream readable after the relay closed it).
    type Stream: Clone;
    /// An open file a reply's bytes are sent from (data file or metadata file).
    type File: Clone;
    /// Registration of one viewer on one session; dropping it detaches the viewer.
    type Ticket;

    /// Every listed session (sender connected), live or not.
    fn sessions(&self) -> Vec<Self::Session>;
    /// A listed session by id.
    fn session(&self, id: SessionId) -> Option<Self::Session>;
    /// A session's current description.
    fn session_info(&self, s: &Self::Session) -> SessionInfo;
    /// The streams `s` announced so far.
    fn announced(&self, s: &Self::Session) -> Announced<Self::Stream>;
    /// The generation of `s`'s announcements (cheap).
    fn generation(&self, s: &Self::Session) -> u64;
    /// Registers `viewer` (connected from `peer`) as attached to `s`.
    fn attach(&self, s: &Self::Session, viewer: ViewerSessionId, peer: &str) -> Self::Ticket;
    /// Tells `s` that the viewer holding `ticket` took every stream announced up to `generation`
    /// (closed streams it has seen can be forgotten).
    fn scanned(&self, ticket: &Self::Ticket, generation: u64);
    /// The viewer holding `ticket` will next be sent entry `next` of data stream `st` (for the
    /// status page's position lag; sources without one ignore it).
    fn position(&self, _ticket: &Self::Ticket, _st: &Self::Stream, _next: u64) {}
    /// A stream's description.
    fn stream_info(&self, st: &Self::Stream) -> StreamInfo;
    /// A stream's committed state.
    fn view(&self, st: &Self::Stream) -> StreamView;
    /// Committed index entry `n` of a data stream and the data file holding its packet.
    fn read_entry(&self, st: &Self::Stream, n: u64)
        -> Result<(IndexEntry, Self::File), EntryError>;
    /// The metadata file the committed metadata bytes of `st` are in.
    fn metadata_file(&self, st: &Self::Stream) -> Option<Self::File>;
    /// The current length of an open file.
    fn file_len(&self, f: &Self::File) -> std::io::Result<u64>;
}
