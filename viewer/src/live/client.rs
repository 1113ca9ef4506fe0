//! The live protocol loop shared by `live` (a mirror on disk) and the multi-relay `tail`: what
//! the client asks and in which order, with what it receives handed to a [`Sink`].
//!
//! The sequence follows what babeltrace2 does (wire reference §5.8):
//!
//! 1. CONNECT, CREATE_SESSION, then LIST_SESSIONS until sessions matching the [`SessionMatch`]
//!    appear (every relay session of a multi-consumer tracing session is attached);
//! 2. ATTACH each; the stream records give the trace folders (`path_name`) and channel names;
//! 3. then, until every session hung up: GET_METADATA until NO_NEW for traces that need it
//!    (at start and on NEW_METADATA), GET_NEXT_INDEX on every data stream — OK: GET_PACKET in
//!    chunks, hand the packet to the sink; RETRY: ask again later; INACTIVE: tell the sink the
//!    stream is quiet up to the beacon's time; HUP: the stream is done; ERR: fatal —,
//!    GET_NEW_STREAMS on NEW_STREAM, every second, and whenever no data stream is left (HUP
//!    there means the session is over; the metadata still unsent is fetched first, as a relay
//!    may wait for it to be read before saying HUP). The flags of every GET_NEXT_INDEX reply
//!    are honoured, not only those that come with a packet, and a packet is handed on only
//!    once its trace's metadata says how its times convert (a relay may serve a packet before
//!    the metadata describing it);
//! 4. on stop (Ctrl-C), DETACH_SESSION each attached session.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use trelay_proto::ctf::packet::WordSize;
use trelay_proto::lttng::live::{
    AttachStatus, DetachStatus, NextIndexStatus, Seek, StreamRecord, ViewerReply, ViewerRequest,
};
use trelay_proto::{CtfTraceId, SessionId, StreamId};

mod discover;
mod receive;

pub use super::sink::{Packet, Sink};

use super::files::{safe_component, safe_rel_path};
use super::mirror::LiveStats;
use super::select::SessionMatch;
use super::{sessions, LiveError, ViewerConn};
use crate::tsdl::Clock;

/// How a client runs.
#[derive(Debug, Clone, Copy)]
pub struct ClientSettings {
    /// Where attached streams start.
    pub seek: Seek,
    /// How long to wait for the session to be listed.
    pub wait: Duration,
    /// Pause when nothing new arrived.
    pub poll: Duration,
    /// Largest GET_PACKET request, bytes.
    pub chunk: u32,
}

struct Trace {
    dir: PathBuf,
    metadata_stream: Option<StreamId>,
    bytes: Vec<u8>,
    closed: bool,
    needs_fetch: bool,
    clock: Option<Clock>,
    /// The metadata read so far places packets in time (its clock, or its lack of one, is
    /// known): no packet time of the trace is converted before.
    timing_known: bool,
    word: WordSize,
}

struct DataStream {
    trace: CtfTraceId,
    session: SessionId,
    dir: PathBuf,
    channel: String,
    label: String,
    hup: bool,
    prev_discarded: Option<u64>,
}

struct Session {
    id: SessionId,
    hup: bool,
}

/// One live connection's client state.
pub struct Client<'a, S> {
    pub(super) conn: ViewerConn,
    settings: ClientSettings,
    stop: &'a AtomicBool,
    traces: BTreeMap<CtfTraceId, Trace>,
    streams: BTreeMap<StreamId, DataStream>,
    sessions: Vec<Session>,
    /// What the run did.
    pub stats: LiveStats,
    pub(super) packet: Vec<u8>,
    pub(super) want_new_streams: bool,
    /// The sink.
    pub sink: S,
}

/// LIST_SESSIONS until sessions matching `m` appear (or `wait` passes, or `stop`).
pub fn find_sessions(
    conn: &mut ViewerConn,
    m: &SessionMatch,
    settings: &ClientSettings,
    stop: &AtomicBool,
) -> Result<Vec<SessionId>, LiveError> {
    let start = Instant::now();
    loop {
        let ids: Vec<SessionId> = sessions::fetch(conn)?
            .into_iter()
            .filter(|s| m.matches(&s.hostname, &s.session_name))
            .map(|s| s.id)
            .collect();
        if !ids.is_empty() {
            return Ok(ids);
        }
        if start.elapsed() >= settings.wait || stop.load(Ordering::Relaxed) {
            return Err(LiveError::NoSession {
                host: m.host_text(),
                session: m.name_text(),
                waited: start.elapsed(),
            });
        }
        std::thread::sleep(settings.poll.max(Duration::from_millis(10)));
    }
}

impl<'a, S: Sink> Client<'a, S> {
    /// A client on `conn` (CREATE_SESSION done) handing what it receives to `sink`.
    pub fn new(conn: ViewerConn, settings: ClientSettings, stop: &'a AtomicBool, sink: S) -> Self {
        Client {
            conn,
            settings,
            stop,
            traces: BTreeMap::new(),
            streams: BTreeMap::new(),
            sessions: Vec::new(),
            stats: LiveStats::default(),
            packet: Vec::new(),
            want_new_streams: false,
            sink,
        }
    }

    /// ATTACH_SESSION `id`.
    pub fn attach(&mut self, id: SessionId) -> Result<(), LiveError> {
        let req = ViewerRequest::AttachSession {
            session_id: id,
            offset: 0,
            seek: self.settings.seek,
        };
        let records = match self.conn.call(&req)? {
            ViewerReply::AttachSession {
                status: AttachStatus::Ok,
                streams,
            } => streams,
            ViewerReply::AttachSession { status, .. } => {
                return Err(LiveError::Refused(format!(
                    "ATTACH_SESSION {id}: {status:?}"
                )))
            }
            other => {
                return Err(LiveError::Protocol(format!(
                    "ATTACH_SESSION answered {other:?}"
                )))
            }
        };
        self.sessions.push(Session { id, hup: false });
        self.stats.sessions += 1;
        self.add_streams(id, records)
    }

    fn add_streams(
        &mut self,
        session: SessionId,
        records: Vec<StreamRecord>,
    ) -> Result<(), LiveError> {
        for r in records {
            let dir = safe_rel_path(&r.path_name).map_err(LiveError::Protocol)?;
            let channel = safe_component(&r.channel_name)
                .map_err(LiveError::Protocol)?
                .to_owned();
            let trace = self.traces.entry(r.ctf_trace_id).or_insert_with(|| Trace {
                dir: dir.clone(),
                metadata_stream: None,
                bytes: Vec::new(),
                closed: false,
                needs_fetch: false,
                clock: None,
                timing_known: false,
                word: WordSize::Bits64,
            });
            if r.is_metadata() {
                trace.dir = dir;
                trace.metadata_stream = Some(r.id);
                trace.needs_fetch = true;
                continue;
            }
            if self.streams.contains_key(&r.id) {
                continue;
            }
            self.stats.streams += 1;
            self.sink.added(r.id);
            self.streams.insert(
                r.id,
                DataStream {
                    trace: r.ctf_trace_id,
                    session,
                    label: dir.join(&channel).to_string_lossy().into_owned(),
                    dir,
                    channel,
                    hup: false,
                    prev_discarded: None,
                },
            );
        }
        Ok(())
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Runs until every session hung up (`Ok`) or a stop request (detaches).
    pub fn run(&mut self) -> Result<(), LiveError> {
        let mut last_poll = Instant::now();
        loop {
            if self.stopped() {
                return self.detach();
            }
            let mut progressed = false;
            let pending: Vec<CtfTraceId> = self
                .traces
                .iter()
                .filter(|(_, t)| t.needs_fetch)
                .map(|(id, _)| *id)
                .collect();
            for t in pending {
                self.fetch_metadata(t)?;
            }
            let active: Vec<StreamId> = self
                .streams
                .iter()
                .filter(|(_, s)| !s.hup)
                .map(|(id, _)| *id)
                .collect();
            for id in &active {
                if self.stopped() {
                    break;
                }
                progressed |= self.step(*id)?;
            }
            let none_active = self.streams.values().all(|s| s.hup);
            if none_active {
                // Nothing left to read: take the metadata still unsent too, or a relay that
                // waits for its session to be drained never says HUP.
                let ids: Vec<CtfTraceId> = self.traces.keys().copied().collect();
                for t in ids {
                    self.fetch_metadata(t)?;
                }
            }
            if self.want_new_streams || none_active || last_poll.elapsed() >= Duration::from_secs(1)
            {
                last_poll = Instant::now();
                self.want_new_streams = false;
                progressed |= self.new_streams()?;
            }
            if self.sessions.iter().all(|s| s.hup) && self.streams.values().all(|s| s.hup) {
                let ids: Vec<CtfTraceId> = self.traces.keys().copied().collect();
                for t in ids {
                    self.fetch_metadata(t)?;
                }
                return Ok(());
            }
            if !progressed {
                std::thread::sleep(self.settings.poll);
            }
        }
    }

    fn detach(&mut self) -> Result<(), LiveError> {
        self.stats.detached = true;
        let ids: Vec<SessionId> = self.sessions.iter().map(|s| s.id).collect();
        for id in ids {
            match self
                .conn
                .call(&ViewerRequest::DetachSession { session_id: id })?
            {
                ViewerReply::DetachSession(DetachStatus::Ok) => {}
                ViewerReply::DetachSession(s) => {
                    eprintln!("trelay-viewer live: DETACH_SESSION {id}: {s:?}")
                }
                other => {
                    return Err(LiveError::Protocol(format!(
                        "DETACH_SESSION answered {other:?}"
                    )))
                }
            }
        }
        Ok(())
    }

    /// GET_NEXT_INDEX on one stream, and the packet if there is one; returns whether a packet
    /// was received.
    fn step(&mut self, id: StreamId) -> Result<bool, LiveError> {
        let Some(trace) = self.streams.get(&id).map(|s| s.trace) else {
            return Ok(false);
        };
        let ix = match self
            .conn
            .call(&ViewerRequest::GetNextIndex { stream_id: id })?
        {
            ViewerReply::NextIndex(ix) => ix,
            other => {
                return Err(LiveError::Protocol(format!(
                    "GET_NEXT_INDEX answered {other:?}"
                )))
            }
        };
        if ix.status != NextIndexStatus::Error {
            // A relay may flag new metadata or streams on any reply, not only with a packet.
            self.handle_flags(trace, ix.flags)?;
        }
        match ix.status {
            NextIndexStatus::Ok => {}
            NextIndexStatus::Retry => return Ok(false),
            NextIndexStatus::Inactive => {
                // A beacon's time is only passed on once the trace's clock is known.
                if let Some(t) = self.traces.get(&trace).filter(|t| t.timing_known) {
                    self.sink.quiet(id, ix.timestamp_end, t.clock.as_ref());
                }
                return Ok(false);
            }
            NextIndexStatus::Hup | NextIndexStatus::Eof => {
                if let Some(s) = self.streams.get_mut(&id) {
                    s.hup = true;
                }
                self.sink.ended(id);
                return Ok(false);
            }
            NextIndexStatus::Error => {
                return Err(LiveError::Refused(format!(
                    "GET_NEXT_INDEX on stream {id}: ERR"
                )))
            }
        }
        if !self.fetch_packet(id, trace, &ix)? {
            return Ok(false);
        }
        self.deliver(id, trace, &ix)?;
        Ok(true)
    }

    /// Marks stream `id` ended (the relay said EOF while its packet was read).
    pub(super) fn end_stream(&mut self, id: StreamId) {
        if let Some(s) = self.streams.get_mut(&id) {
            s.hup = true;
        }
        self.sink.ended(id);
    }

    pub(super) fn stopping(&self) -> bool {
        self.stopped()
    }

    pub(super) fn settings(&self) -> &ClientSettings {
        &self.settings
    }
}
