//! Sessions, streams, CTF traces and trace chunks: the registry shared by every connection.
//!
//! Relay sessions (one per CREATE_SESSION) and streams (one per ADD_STREAM) live in dashmaps
//! keyed by the ids the relay hands out (global counters from 1, shared by all sessions). Each
//! session and each stream keeps its mutable state behind its own `std::sync::Mutex`, never held
//! across an `.await`. Trace chunks are shared across the relay sessions of one sessiond session
//! through the [`chunk::ChunkRegistry`]. The two halves of every packet's index entry meet in the
//! relay-wide [`crate::merge::MergeTable`] ([`ingest`]); completed entries queue on their stream
//! until the commit group ([`commit`]) makes them durable and visible.

pub mod chunk;
mod close;
pub mod commit;
pub mod files;
mod held;
pub mod ingest;
pub mod loss_log;
pub mod manifest;
mod metadata;
mod peers;
pub mod pins;
pub mod resumable;
pub mod rotate;
pub mod stream;

pub use chunk::{Chunk, ChunkKey, ChunkRegistry, CloseCommand};
pub use ingest::{Effects, IngestError, PacketSlot};
pub use metadata::MetadataError;
pub use stream::{IndexHalf, Stream};

use crate::config::{Durability, GroupBy, Settings};
use crate::merge::{MergeConfig, MergeTable};
use crate::storage::layout;
use chunk::lock;
use commit::CommitQueue;
use dashmap::DashMap;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use tokio_util::task::TaskTracker;
use trelay_proto::{CtfTraceId, SessionId, StreamId, TraceFormat};

/// What a relay session was created with.
#[derive(Debug, Clone)]
pub struct SessionParams {
    /// Session name (validated).
    pub name: String,
    /// Host name (validated).
    pub hostname: String,
    /// Base path (validated, possibly empty).
    pub base_path: String,
    /// Live timer in µs (0: not live).
    pub live_timer: u32,
    /// Snapshot session.
    pub snapshot: bool,
    /// Session name carries its creation time.
    pub name_has_time: bool,
    /// Negotiated protocol minor.
    pub minor: u32,
    /// The sessiond's uuid.
    pub sessiond_uuid: [u8; 16],
    /// The sessiond's session id.
    pub sessiond_session_id: u64,
    /// Creation time (seconds since the epoch).
    pub creation_time: u64,
    /// The sending peer: its configured name, else its address (per-peer limits count by it).
    pub peer: String,
    /// Trace format (CTF 2 only from senders at minor 15 and later).
    pub trace_format: TraceFormat,
}

/// Mutable state of a relay session.
#[derive(Debug, Default)]
pub struct SessionState {
    /// The data connection that writes the session's streams (its number), once one started:
    /// no other may ([`crate::server::data`]). trelay:// sessions carry their data in-band:
    /// [`NATIVE_DATA`].
    pub data_connection: Option<u64>,
    /// Chunk new streams go into.
    pub current_chunk: Option<Arc<Chunk>>,
    /// Previous chunk, between CREATE_TRACE_CHUNK and its CLOSE_TRACE_CHUNK.
    pub pending_closure: Option<Arc<Chunk>>,
    /// A chunk was archived (MOVE_TO_COMPLETED) at least once.
    pub has_rotated: bool,
    /// A chunk creation/rotation is in progress (viewers wait).
    pub rotation_ongoing: bool,
    /// CTF traces of this session by trace path.
    pub traces: HashMap<String, CtfTraceId>,
    /// Streams of this session (open or waiting to close).
    pub streams: Vec<StreamId>,
    /// The sender's connections are gone.
    pub connection_closed: bool,
    /// The control connection ended after shutdown began (no SEND_INDEX can come any more):
    /// the data connection's drain may end once the data of every index received is in.
    pub control_done: bool,
    /// The session was aborted by a protocol error.
    pub aborted: bool,
    /// The session failed (commit error); the message says why.
    pub failed: Option<String>,
    /// Streams appeared or got their first packet since a viewer last asked.
    pub new_streams: bool,
}

/// [`SessionState::data_connection`] of a trelay:// session: no LTTng data connection writes it.
pub const NATIVE_DATA: u64 = u64::MAX;

/// A relay session.
#[derive(Debug)]
pub struct Session {
    /// Relay session id.
    pub id: SessionId,
    /// Creation parameters.
    pub params: SessionParams,
    /// Negotiated minor (copy of `params.minor`).
    pub minor: u32,
    /// Session directory relative to the output root.
    pub rel_dir: PathBuf,
    /// Session directory, absolute.
    pub abs_dir: PathBuf,
    state: Mutex<SessionState>,
    /// Pending commit requests.
    pub commit: CommitQueue,
    /// Streams announced to live viewers, and the viewers attached.
    pub live: crate::frontier::Roster<Arc<Stream>>,
    /// Whether the session's writes are waiting for disk space.
    pub disk_full: crate::storage::space::DiskFull,
    /// What the session received and lost, for the metrics.
    pub counters: crate::telemetry::SessionCounters,
    /// The relay's metrics (commit latencies are recorded here).
    pub telemetry: Arc<crate::telemetry::Telemetry>,
}

impl Session {
    /// Locks the session state (never across an `.await`).
    pub fn lock(&self) -> MutexGuard<'_, SessionState> {
        lock(&self.state)
    }

    /// Whether data packets get index entries (minor ≥ 4 and not a snapshot session).
    pub fn uses_index(&self) -> bool {
        self.minor >= 4 && !self.params.snapshot
    }

    /// Marks the session failed (a commit failed); its connections are refused from now on,
    /// and the relay's exit reports it ([`failed_sessions`]).
    pub fn fail(&self, why: String) {
        tracing::error!(session = %self.id, name = %self.params.name, "session failed: {why}");
        let mut st = self.lock();
        if st.failed.is_none() {
            FAILED_SESSIONS.fetch_add(1, Ordering::Relaxed);
        }
        st.failed.get_or_insert(why);
        st.aborted = true;
        for chunk in st.current_chunk.iter().chain(st.pending_closure.iter()) {
            chunk.mark_torn();
        }
    }

    /// The registry key of chunk `chunk_id` of this session's sessiond session.
    pub fn chunk_key(&self, chunk_id: u64) -> ChunkKey {
        ChunkKey {
            session_dir: self.abs_dir.clone(),
            sessiond_uuid: self.params.sessiond_uuid,
            sessiond_session_id: self.params.sessiond_session_id,
            chunk_id,
        }
    }
}

static FAILED_SESSIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How many sessions failed since the process started (each one lost what it had not committed).
pub fn failed_sessions() -> u64 {
    FAILED_SESSIONS.load(Ordering::Relaxed)
}

/// Everything the connections share.
#[derive(Debug)]
pub struct Registry {
    /// trelay's settings.
    pub settings: Settings,
    /// The file system everything is written through.
    pub fs: crate::storage::Fs,
    /// Output root (absolute).
    pub output: PathBuf,
    /// Session directory grouping.
    pub group_by: GroupBy,
    sessions: DashMap<SessionId, Arc<Session>>,
    streams: DashMap<StreamId, Arc<Stream>>,
    /// Trace chunks.
    pub chunks: ChunkRegistry,
    next_session: AtomicU64,
    next_stream: AtomicU64,
    next_trace: AtomicU64,
    tracker: TaskTracker,
    /// The merge table of every stream's data and index halves.
    pub merge: Arc<MergeTable>,
    expired: Mutex<Vec<crate::merge::Expired>>,
    maintaining: std::sync::atomic::AtomicBool,
    retention_last: Mutex<Option<Instant>>,
    expiry_hold: Mutex<Option<Instant>>,
    /// Every session object still alive (listed, or held by a viewer), for retention.
    alive: DashMap<SessionId, std::sync::Weak<Session>>,
    /// The relay's metrics.
    pub telemetry: Arc<crate::telemetry::Telemetry>,
    /// Who may connect, under which name, and the limits.
    pub gate: Arc<crate::identity::Gate>,
    /// trelay:// sessions by the identity their sender chose.
    pub resumables: resumable::Resumables,
    /// Sessions being forwarded to a core relay (pinned against retention).
    pub forwards: crate::forward::Forwards,
    /// Sessions of a previous run that may still be resumed ([`pins`]).
    pub pins: pins::Pins,
    /// What the status page keeps: rate history, notable events, attached viewers.
    pub status: Arc<crate::ops::status::Book>,
}

impl Registry {
    /// An empty registry writing under `output`; blocking work is tracked by `tracker`.
    pub fn new(
        settings: Settings,
        output: PathBuf,
        group_by: GroupBy,
        tracker: TaskTracker,
    ) -> Self {
        Self::with_fs(
            settings,
            output,
            group_by,
            tracker,
            crate::storage::RealFs::shared(),
        )
    }

    /// An empty registry writing under `output` through the file system `fs`.
    pub fn with_fs(
        settings: Settings,
        output: PathBuf,
        group_by: GroupBy,
        tracker: TaskTracker,
        fs: crate::storage::Fs,
    ) -> Self {
        Registry {
            output,
            group_by,
            sessions: DashMap::new(),
            streams: DashMap::new(),
            chunks: ChunkRegistry::new(fs.clone()),
            fs,
            maintaining: std::sync::atomic::AtomicBool::new(false),
            retention_last: Mutex::new(None),
            expiry_hold: Mutex::new(None),
            alive: DashMap::new(),
            next_session: AtomicU64::new(1),
            next_stream: AtomicU64::new(1),
            next_trace: AtomicU64::new(1),
            tracker,
            merge: Arc::new(MergeTable::new(
                MergeConfig {
                    deadline: settings.merge_deadline(),
                    tick: settings.tick(),
                    max_per_stream: settings.max_pending_per_stream,
                    max_total: settings.pending_cap(),
                },
                Instant::now(),
            )),
            expired: Mutex::new(Vec::new()),
            telemetry: Arc::new(crate::telemetry::Telemetry::new()),
            resumables: resumable::Resumables::default(),
            forwards: crate::forward::Forwards::default(),
            pins: pins::Pins::default(),
            status: Arc::default(),
            gate: Arc::new(
                crate::identity::Gate::new(
                    settings.peers.clone(),
                    settings.viewers.clone(),
                    settings.limits.clone(),
                )
                .with_ops(settings.ops.clone()),
            ),
            settings,
        }
    }

    /// Creates a relay session.
    pub fn create_session(&self, params: SessionParams) -> Arc<Session> {
        let id = SessionId(self.next_session.fetch_add(1, Ordering::Relaxed));
        let rel_dir = layout::session_dir(
            self.group_by,
            &layout::SessionNames {
                name: &params.name,
                hostname: &params.hostname,
                base_path: &params.base_path,
                creation_time: params.creation_time,
                name_has_time: params.name_has_time,
            },
        );
        let session = Arc::new(Session {
            id,
            minor: params.minor,
            abs_dir: self.output.join(&rel_dir),
            rel_dir,
            params,
            state: Mutex::new(SessionState::default()),
            commit: CommitQueue::default(),
            live: crate::frontier::Roster::default(),
            disk_full: crate::storage::space::DiskFull::default(),
            counters: crate::telemetry::SessionCounters::default(),
            telemetry: self.telemetry.clone(),
        });
        self.sessions.insert(id, session.clone());
        self.alive.insert(id, Arc::downgrade(&session));
        if self.settings.forward.is_some() {
            self.forwards.created(&session);
        }
        session
    }

    /// A session by id.
    pub fn session(&self, id: SessionId) -> Option<Arc<Session>> {
        self.sessions.get(&id).map(|s| s.clone())
    }

    /// All sessions currently listed.
    pub fn sessions(&self) -> Vec<Arc<Session>> {
        self.sessions.iter().map(|s| s.clone()).collect()
    }

    /// Unlists a session (its connections are gone).
    pub fn remove_session(&self, id: SessionId) {
        self.sessions.remove(&id);
    }

    /// A stream by handle (open streams only).
    pub fn stream(&self, id: StreamId) -> Option<Arc<Stream>> {
        self.streams.get(&id).map(|s| s.clone())
    }

    /// A new stream handle.
    pub fn next_stream_id(&self) -> StreamId {
        StreamId(self.next_stream.fetch_add(1, Ordering::Relaxed))
    }

    /// The CTF trace id of `path` in `session`, assigned on first use.
    pub fn trace_id(&self, session: &Session, path: &str) -> CtfTraceId {
        let mut st = session.lock();
        *st.traces
            .entry(path.to_owned())
            .or_insert_with(|| CtfTraceId(self.next_trace.fetch_add(1, Ordering::Relaxed)))
    }

    /// Registers a new stream.
    pub fn insert_stream(&self, stream: Arc<Stream>) {
        stream.session.lock().streams.push(stream.id);
        self.streams.insert(stream.id, stream);
    }

    /// Streams of a session that are still in the registry.
    pub fn session_streams(&self, session: &Session) -> Vec<Arc<Stream>> {
        let ids = session.lock().streams.clone();
        ids.into_iter().filter_map(|id| self.stream(id)).collect()
    }

    /// Tries to close `stream`; on success removes it and commits what it holds.
    pub fn try_close_stream(&self, stream: &Arc<Stream>, aborted: bool) -> bool {
        if !stream.try_close(aborted) {
            return false;
        }
        self.streams.remove(&stream.id);
        stream.session.lock().streams.retain(|id| *id != stream.id);
        self.request_commit(&stream.session, [stream.clone()]);
        true
    }

    /// One of the sender's connections of `session` closed (EOF or error; §4.6 "session close").
    ///
    /// Every stream is closed once its data is in. When the closed connection is the data
    /// connection, no more data can come: streams still waiting for packets are closed now. When
    /// it is the control connection, the session lets go of its chunks (no CLOSE_TRACE_CHUNK can
    /// come any more). The session is unlisted for viewers.
    pub fn close_session(&self, session: &Arc<Session>, aborted: bool, data_side: bool) {
        let aborted = {
            let mut st = session.lock();
            st.connection_closed = true;
            st.aborted |= aborted;
            st.aborted
        };
        for s in self.session_streams(session) {
            if !self.try_close_stream(&s, aborted) && data_side {
                self.try_close_stream(&s, true);
            }
        }
        if !data_side {
            let mut st = session.lock();
            st.current_chunk = None;
            st.pending_closure = None;
        }
        self.remove_session(session.id);
        tracing::info!(session = %session.id, name = %session.params.name, aborted, data_side, "session connection closed");
    }

    /// Asks for a commit of `streams` of `session` (runs on a blocking thread, batched).
    pub fn request_commit(
        &self,
        session: &Arc<Session>,
        streams: impl IntoIterator<Item = Arc<Stream>>,
    ) {
        // Live: the metadata a packet needs is committed with it.
        let metadata = if session.params.live_timer > 0 {
            session.live.metadata_streams()
        } else {
            Vec::new()
        };
        let metadata = metadata.into_iter().filter(|m| m.lock().has_commit_work());
        if session.commit.request(streams.into_iter().chain(metadata)) {
            let s = session.clone();
            let durability = self.settings.durability;
            let timeout = self.settings.disk_full_timeout();
            if tokio::runtime::Handle::try_current().is_ok() {
                let chunks = self.chunks.releases_handle();
                let fs = self.fs.clone();
                self.tracker.spawn_blocking(move || {
                    s.commit.run(&s, durability, timeout);
                    chunks.run(&fs);
                });
            } else {
                s.commit.run(&s, durability, timeout);
                self.chunks.run_releases();
            }
        }
    }

    /// Commits every stream of every session that holds uncommitted work.
    pub fn commit_all(&self) {
        for s in self.streams.iter() {
            let has_work = s.lock().has_commit_work();
            if has_work {
                self.request_commit(&s.session, [s.clone()]);
            }
        }
    }

    /// Housekeeping: expires the merge table's halves whose deadline passed, and takes the halves
    /// of other streams that inserts pushed out under the relay-wide cap (each is logged,
    /// counted per stream by the table, recorded in its session's loss book, and the stream's
    /// commit requested so its loss sidecar is written; see [`crate::merge`]).
    ///
    /// While a session waits for disk space (and one merge deadline after), halves are not
    /// expired: their partners are held back by the full disk, not lost.
    pub fn expire(&self, now: Instant) {
        if self.sessions.iter().any(|s| s.disk_full.is_full()) {
            *lock(&self.expiry_hold) = Some(now + self.settings.merge_deadline());
        }
        let held = lock(&self.expiry_hold).is_some_and(|until| now < until);
        let mut expired = std::mem::take(&mut *lock(&self.expired));
        expired.clear();
        if !held {
            self.merge.expire(now, &mut expired);
        }
        self.merge.take_deferred(&mut expired);
        // Record them for the loss sidecars; one commit per stream that lost halves writes it.
        // In sequence order per stream (the wheel hands them over newest first), so that
        // consecutive losses merge into one range of the sidecar.
        expired.sort_by_key(|e| (e.stream, e.seq.0));
        for group in expired.chunk_by(|a, b| a.stream == b.stream) {
            let Some(s) = group.first().and_then(|e| self.stream(e.stream)) else {
                group.iter().for_each(ingest::log_expired);
                continue;
            };
            {
                let st = s.lock();
                for e in group {
                    s.record_loss(&st, e);
                }
            }
            self.request_commit(&s.session, [s.clone()]);
        }
        *lock(&self.expired) = expired;
    }

    /// At shutdown, once no connection is left: every half still waiting in the merge table
    /// (an index whose data never came, data never indexed) leaves it, in sequence order, and is
    /// recorded in its stream's loss sidecar by the final commit, so what trelayd received and
    /// could not index is accounted for on disk.
    pub fn expire_pending_at_shutdown(&self) {
        let now = Instant::now();
        let streams: Vec<Arc<stream::Stream>> = self.streams.iter().map(|s| s.clone()).collect();
        for s in streams {
            let mut removed = self.merge.remove_stream(s.id, now).expired;
            if removed.is_empty() {
                continue;
            }
            removed.sort_by_key(|e| e.seq.0);
            {
                let st = s.lock();
                for e in &removed {
                    s.record_loss(&st, e);
                }
            }
            self.request_commit(&s.session, [s.clone()]);
        }
    }

    /// Housekeeping I/O, on a blocking thread (at most one at a time): carries out the close
    /// commands of released chunks, then applies the retention policy.
    pub fn maintain(self: &Arc<Self>) {
        let dormant_due = self.pins.due(Instant::now());
        if !self.chunks.releases().pending() && !self.retention_due() && !dormant_due {
            return;
        }
        if self.maintaining.swap(true, Ordering::AcqRel) {
            return;
        }
        let r = self.clone();
        let job = move || {
            r.chunks.run_releases();
            r.pins.expire(&r.fs, &r.output, Instant::now());
            if r.retention_due() {
                r.apply_retention();
            }
            r.maintaining.store(false, Ordering::Release);
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            self.tracker.spawn_blocking(job);
        } else {
            job();
        }
    }

    fn retention_due(&self) -> bool {
        let policy = &self.settings.retention;
        policy.enabled()
            && lock(&self.retention_last).is_none_or(|t| t.elapsed() >= policy.interval())
    }

    /// Sessions whose writes wait for disk space, with the ongoing episode.
    pub fn disk_full(&self) -> Vec<(Arc<Session>, crate::storage::space::Episode)> {
        self.sessions
            .iter()
            .filter_map(|s| s.disk_full.episode().map(|e| (s.clone(), e)))
            .collect()
    }

    /// The durability mode.
    pub fn durability(&self) -> Durability {
        self.settings.durability
    }

    /// The output root.
    pub fn output(&self) -> &Path {
        &self.output
    }
}

#[cfg(test)]
mod tests;
