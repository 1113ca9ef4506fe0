//! `live`: attach to a live session and mirror it into a CTF trace on disk.
//!
//! The sequence follows what babeltrace2 does (wire reference §5.8), with seek BEGINNING by
//! default so the mirror holds everything the relay still serves:
//!
//! 1. CONNECT, CREATE_SESSION, then LIST_SESSIONS until sessions with the URL's hostname and
//!    name appear (every relay session of a multi-consumer tracing session is attached);
//! 2. ATTACH each; the stream records give the trace folders (`path_name`) and channel names;
//! 3. then, until every session hung up: GET_METADATA until NO_NEW for traces that need it
//!    (at start and on NEW_METADATA), GET_NEXT_INDEX on every data stream — OK: GET_PACKET in
//!    chunks, write the packet then its index entry; RETRY/INACTIVE: ask again later;
//!    HUP: the stream is done; ERR: fatal —, GET_NEW_STREAMS on NEW_STREAM, every second, and
//!    whenever no data stream is left (HUP there means the session is over);
//! 4. on stop (Ctrl-C), DETACH_SESSION each attached session.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use trelay_proto::ctf::index::IndexEntry;
use trelay_proto::ctf::packet::{PacketHeader, WordSize};
use trelay_proto::lttng::live::{
    AttachStatus, DetachStatus, GetMetadataStatus, GetPacketStatus, IndexReply, NewStreamsStatus,
    NextIndexStatus, Seek, StreamRecord, ViewerFlags, ViewerReply, ViewerRequest, MAX_PACKET_LEN,
};
use trelay_proto::{CtfTraceId, Decoded, SessionId, StreamId};

use super::files::{safe_component, safe_rel_path, MetadataOut, StreamOut};
use super::{sessions, LiveError, ViewerConn};
use crate::report::PacketLine;
use crate::tsdl::{Clock, Metadata};
use crate::url::LiveUrl;

/// How to mirror.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// The session URL.
    pub url: LiveUrl,
    /// Output folder.
    pub output: PathBuf,
    /// Where attached streams start.
    pub seek: Seek,
    /// How long to wait for the session to be listed.
    pub wait: Duration,
    /// Pause when nothing new arrived.
    pub poll: Duration,
    /// Largest GET_PACKET request, bytes.
    pub chunk: u32,
}

impl LiveOptions {
    /// Defaults for `url` into `output`: seek beginning, wait 30 s, poll 100 ms, 256 KiB chunks.
    pub fn new(url: LiveUrl, output: PathBuf) -> LiveOptions {
        LiveOptions {
            url,
            output,
            seek: Seek::Beginning,
            wait: Duration::from_secs(30),
            poll: Duration::from_millis(100),
            chunk: 256 * 1024,
        }
    }
}

/// What a mirror run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveStats {
    /// Relay sessions attached.
    pub sessions: u64,
    /// Data streams seen.
    pub streams: u64,
    /// Packets mirrored.
    pub packets: u64,
    /// Packet bytes mirrored.
    pub bytes: u64,
    /// Metadata bytes mirrored.
    pub metadata_bytes: u64,
    /// Whether the run ended by a stop request (and detached) rather than by the relay's HUP.
    pub detached: bool,
}

struct Trace {
    dir: PathBuf,
    metadata_stream: Option<StreamId>,
    out: Option<MetadataOut>,
    bytes: Vec<u8>,
    closed: bool,
    needs_fetch: bool,
    clock: Option<Clock>,
    word: WordSize,
}

struct DataStream {
    trace: CtfTraceId,
    dir: PathBuf,
    channel: String,
    label: String,
    out: Option<StreamOut>,
    hup: bool,
    prev_discarded: Option<u64>,
}

struct Session {
    id: SessionId,
    hup: bool,
}

struct Client<'a, F> {
    conn: ViewerConn,
    opts: &'a LiveOptions,
    stop: &'a AtomicBool,
    traces: BTreeMap<CtfTraceId, Trace>,
    streams: BTreeMap<StreamId, DataStream>,
    sessions: Vec<Session>,
    stats: LiveStats,
    packet: Vec<u8>,
    want_new_streams: bool,
    out: F,
}

/// Mirrors the session named by `opts.url` into `opts.output` until it ends or `stop` is set;
/// calls `out` with each packet written.
pub fn mirror<F>(opts: &LiveOptions, stop: &AtomicBool, out: F) -> Result<LiveStats, LiveError>
where
    F: FnMut(&PacketLine) -> std::io::Result<()>,
{
    let (host, name) = opts.url.session.clone().ok_or(LiveError::NoSessionInUrl)?;
    let mut conn = ViewerConn::connect(&opts.url.addr())?;
    conn.create_viewer_session()?;
    let start = Instant::now();
    let ids = loop {
        let ids: Vec<SessionId> = sessions::fetch(&mut conn)?
            .into_iter()
            .filter(|s| s.hostname == host && s.session_name == name)
            .map(|s| s.id)
            .collect();
        if !ids.is_empty() {
            break ids;
        }
        if start.elapsed() >= opts.wait || stop.load(Ordering::Relaxed) {
            return Err(LiveError::NoSession {
                host,
                session: name,
                waited: start.elapsed(),
            });
        }
        std::thread::sleep(opts.poll.max(Duration::from_millis(10)));
    };
    let mut c = Client {
        conn,
        opts,
        stop,
        traces: BTreeMap::new(),
        streams: BTreeMap::new(),
        sessions: Vec::new(),
        stats: LiveStats::default(),
        packet: Vec::new(),
        want_new_streams: false,
        out,
    };
    for id in ids {
        c.attach(id)?;
    }
    c.run()?;
    Ok(c.stats)
}

impl<F> Client<'_, F>
where
    F: FnMut(&PacketLine) -> std::io::Result<()>,
{
    fn attach(&mut self, id: SessionId) -> Result<(), LiveError> {
        let req = ViewerRequest::AttachSession {
            session_id: id,
            offset: 0,
            seek: self.opts.seek,
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
        self.add_streams(records)
    }

    fn add_streams(&mut self, records: Vec<StreamRecord>) -> Result<(), LiveError> {
        for r in records {
            let dir = safe_rel_path(&r.path_name).map_err(LiveError::Protocol)?;
            let channel = safe_component(&r.channel_name)
                .map_err(LiveError::Protocol)?
                .to_owned();
            let trace = self.traces.entry(r.ctf_trace_id).or_insert_with(|| Trace {
                dir: self.opts.output.join(&dir),
                metadata_stream: None,
                out: None,
                bytes: Vec::new(),
                closed: false,
                needs_fetch: false,
                clock: None,
                word: WordSize::Bits64,
            });
            if r.is_metadata() {
                trace.dir = self.opts.output.join(&dir);
                trace.metadata_stream = Some(r.id);
                trace.needs_fetch = true;
                continue;
            }
            if self.streams.contains_key(&r.id) {
                continue;
            }
            self.stats.streams += 1;
            self.streams.insert(
                r.id,
                DataStream {
                    trace: r.ctf_trace_id,
                    label: dir.join(&channel).to_string_lossy().into_owned(),
                    dir: self.opts.output.join(&dir),
                    channel,
                    out: None,
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

    fn run(&mut self) -> Result<(), LiveError> {
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
                std::thread::sleep(self.opts.poll);
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

    /// GET_NEW_STREAMS for every session still open; returns whether streams were added.
    fn new_streams(&mut self) -> Result<bool, LiveError> {
        let mut added = false;
        for i in 0..self.sessions.len() {
            let Some(s) = self.sessions.get(i) else { break };
            if s.hup {
                continue;
            }
            let id = s.id;
            let (status, records) = match self
                .conn
                .call(&ViewerRequest::GetNewStreams { session_id: id })?
            {
                ViewerReply::NewStreams { status, streams } => (status, streams),
                other => {
                    return Err(LiveError::Protocol(format!(
                        "GET_NEW_STREAMS answered {other:?}"
                    )))
                }
            };
            match status {
                NewStreamsStatus::Ok => {
                    added |= !records.is_empty();
                    self.add_streams(records)?;
                }
                NewStreamsStatus::NoNew => {}
                NewStreamsStatus::Hup => {
                    if let Some(s) = self.sessions.get_mut(i) {
                        s.hup = true;
                    }
                }
                NewStreamsStatus::Error => {
                    return Err(LiveError::Refused(format!("GET_NEW_STREAMS {id}: ERR")))
                }
            }
        }
        Ok(added)
    }

    fn handle_flags(&mut self, trace: CtfTraceId, flags: ViewerFlags) -> Result<(), LiveError> {
        if flags.contains(ViewerFlags::NEW_METADATA) {
            self.fetch_metadata(trace)?;
        }
        if flags.contains(ViewerFlags::NEW_STREAM) {
            self.new_streams()?;
        }
        Ok(())
    }

    fn fetch_metadata(&mut self, id: CtfTraceId) -> Result<(), LiveError> {
        let Some(t) = self.traces.get_mut(&id) else {
            return Ok(());
        };
        t.needs_fetch = false;
        let (Some(sid), false) = (t.metadata_stream, t.closed) else {
            return Ok(());
        };
        let mut changed = false;
        loop {
            let reply = self
                .conn
                .call(&ViewerRequest::GetMetadata { stream_id: sid })?;
            let ViewerReply::Metadata { status, data } = reply else {
                return Err(LiveError::Protocol(format!(
                    "GET_METADATA answered {reply:?}"
                )));
            };
            match status {
                GetMetadataStatus::Ok if !data.is_empty() => {
                    if t.out.is_none() {
                        t.out = Some(MetadataOut::create(&t.dir)?);
                    }
                    if let Some(o) = t.out.as_mut() {
                        o.append(data)?;
                    }
                    t.bytes.extend_from_slice(data);
                    self.stats.metadata_bytes += data.len() as u64;
                    changed = true;
                }
                GetMetadataStatus::Ok | GetMetadataStatus::NoNewMetadata => break,
                GetMetadataStatus::Error => {
                    t.closed = true;
                    break;
                }
            }
        }
        if changed {
            if let Ok(md) = Metadata::from_file_bytes(&t.bytes) {
                t.clock = md.clock().cloned();
                t.word = md.word_size();
            }
        }
        Ok(())
    }

    /// GET_NEXT_INDEX on one stream, and the packet if there is one; returns whether a packet
    /// was mirrored.
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
        match ix.status {
            NextIndexStatus::Ok => {}
            NextIndexStatus::Retry | NextIndexStatus::Inactive => return Ok(false),
            NextIndexStatus::Hup | NextIndexStatus::Eof => {
                if let Some(s) = self.streams.get_mut(&id) {
                    s.hup = true;
                }
                return Ok(false);
            }
            NextIndexStatus::Error => {
                return Err(LiveError::Refused(format!(
                    "GET_NEXT_INDEX on stream {id}: ERR"
                )))
            }
        }
        self.handle_flags(trace, ix.flags)?;
        if !self.fetch_packet(id, trace, &ix)? {
            return Ok(false);
        }
        self.write_packet(id, trace, &ix)?;
        Ok(true)
    }

    /// Reads the packet of `ix` into `self.packet`; false if the stream ended meanwhile.
    fn fetch_packet(
        &mut self,
        id: StreamId,
        trace: CtfTraceId,
        ix: &IndexReply,
    ) -> Result<bool, LiveError> {
        if ix.packet_size == 0 || ix.packet_size % 8 != 0 || ix.packet_size / 8 > MAX_PACKET_LEN {
            return Err(LiveError::Protocol(format!(
                "stream {id}: index packet_size {} bits is not a sane packet size",
                ix.packet_size
            )));
        }
        let size = ix.packet_size / 8;
        self.packet.clear();
        while (self.packet.len() as u64) < size {
            if self.stopped() {
                return Ok(false);
            }
            let have = self.packet.len() as u64;
            let want = u32::try_from((size - have).min(u64::from(self.opts.chunk.max(1))))
                .unwrap_or(u32::MAX);
            let req = ViewerRequest::GetPacket {
                stream_id: id,
                offset: ix.offset.saturating_add(have),
                len: want,
            };
            let (status, flags) = match self.conn.call(&req)? {
                ViewerReply::Packet {
                    status: GetPacketStatus::Ok,
                    data,
                    ..
                } => {
                    if data.len() as u64 != u64::from(want) {
                        return Err(LiveError::Protocol(format!(
                            "GET_PACKET on stream {id}: asked {want} bytes, got {}",
                            data.len()
                        )));
                    }
                    self.packet.extend_from_slice(data);
                    continue;
                }
                ViewerReply::Packet { status, flags, .. } => (status, flags),
                other => {
                    return Err(LiveError::Protocol(format!(
                        "GET_PACKET answered {other:?}"
                    )))
                }
            };
            match status {
                GetPacketStatus::Retry => std::thread::sleep(self.opts.poll),
                GetPacketStatus::Error
                    if flags.contains(ViewerFlags::NEW_METADATA)
                        || flags.contains(ViewerFlags::NEW_STREAM) =>
                {
                    self.handle_flags(trace, flags)?
                }
                GetPacketStatus::Eof => {
                    if let Some(s) = self.streams.get_mut(&id) {
                        s.hup = true;
                    }
                    return Ok(false);
                }
                _ => {
                    return Err(LiveError::Refused(format!(
                        "GET_PACKET on stream {id} at offset {}: {status:?}",
                        req_offset(&req)
                    )))
                }
            }
        }
        Ok(true)
    }

    fn write_packet(
        &mut self,
        id: StreamId,
        trace: CtfTraceId,
        ix: &IndexReply,
    ) -> Result<(), LiveError> {
        if self.traces.get(&trace).is_some_and(|t| t.out.is_none()) {
            // The metadata must be on disk before the first packet that needs it.
            self.fetch_metadata(trace)?;
        }
        let (clock, word) = self
            .traces
            .get(&trace)
            .map(|t| (t.clock.clone(), t.word))
            .unwrap_or((None, WordSize::Bits64));
        let (instance, seq) = match PacketHeader::decode(&self.packet, word) {
            Ok(Decoded::Done { msg, .. }) => (msg.stream_instance_id, msg.packet_seq_num),
            _ => (u64::MAX, u64::MAX),
        };
        let entry = IndexEntry {
            offset: 0,
            packet_size: ix.packet_size,
            content_size: ix.content_size,
            timestamp_begin: ix.timestamp_begin,
            timestamp_end: ix.timestamp_end,
            events_discarded: ix.events_discarded,
            stream_id: ix.stream_id,
            stream_instance_id: instance,
            packet_seq_num: seq,
        };
        let Some(s) = self.streams.get_mut(&id) else {
            return Ok(());
        };
        if s.out.is_none() {
            s.out = Some(StreamOut::create(&s.dir, &s.channel)?);
        }
        let Some(out) = s.out.as_mut() else {
            return Ok(());
        };
        let written = out.append(&self.packet, entry)?;
        let line = PacketLine::from_entry(&s.label, &written, clock.as_ref(), s.prev_discarded);
        s.prev_discarded = Some(written.events_discarded);
        self.stats.packets += 1;
        self.stats.bytes += self.packet.len() as u64;
        (self.out)(&line).map_err(LiveError::Io)
    }
}

fn req_offset(req: &ViewerRequest) -> u64 {
    match req {
        ViewerRequest::GetPacket { offset, .. } => *offset,
        _ => 0,
    }
}
