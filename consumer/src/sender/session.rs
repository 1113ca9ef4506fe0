//! A relay session driven like LTTng's session and consumer daemons drive one (protocol up to 2.15).
//!
//! [`RelaySession::connect`] performs the session daemon's part (VERSION, GET_CONFIGURATION,
//! CREATE_SESSION, data connection) and `lttng start`'s CREATE_TRACE_CHUNK(0). Then the consumer
//! part: streams ([`RelaySession::add_stream`], [`RelaySession::streams_sent`]), metadata,
//! packets with their index, beacons, and at the end data pending and the destroy sequence
//! ([`RelaySession::close`]).

use std::fs::File;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use trelay_proto::ctf::format::TraceFormat;

use tokio::net::TcpStream;
use trelay_proto::ctf::index::IndexEntry;
use trelay_proto::lttng::relayd::{
    AddStream, CloseCommand, CloseStream, CloseTraceChunk, CloseTraceChunkReply, Command,
    CommandKind, CreateSession, CreateTraceChunk, DataPending, GetConfiguration, ProtocolMinor,
    Reply, RotatePosition, RotateStreams, SendIndex, Version,
};
use trelay_proto::{NetSeq, SessionId, StreamId};

use super::control::{check_ok, unexpected, ControlConn};
use super::data::DataConn;
use super::SendError;

/// Oldest relay protocol minor this sender speaks (2.11: trace chunks, 2.11 layouts).
pub const MIN_MINOR: u32 = 11;
/// Oldest relay protocol minor that can carry CTF 2 sessions (LTTng 2.15).
pub const CTF2_MINOR: u32 = 15;
/// Protocol version announced (LTTng 2.15's: CREATE_SESSION carries the trace format).
pub const VERSION: (u32, u32) = (2, 15);

/// How to create the relay session.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Session name.
    pub name: String,
    /// Hostname the trace is filed under.
    pub hostname: String,
    /// Live timer in µs; 0 for a non-live session.
    pub live_timer_us: u32,
    /// Sessiond UUID (random, non-zero).
    pub sessiond_uuid: [u8; 16],
    /// Sessiond session id.
    pub sessiond_session_id: u64,
    /// Creation time, seconds since the Epoch.
    pub creation_time: u64,
    /// SEND_INDEX replies that may stay unanswered (0 = wait for each, like a consumer daemon).
    pub index_window: usize,
    /// How long to wait for the connections to open.
    pub connect_timeout: Duration,
    /// The session's trace format. CTF 2 needs a relay that negotiates protocol minor 15 or
    /// later (CREATE_SESSION says the format from 2.15 on); with an older one connecting fails
    /// before the session is created, as LTTng 2.15's session daemon refuses.
    pub trace_format: TraceFormat,
}

impl SessionConfig {
    /// A configuration with a fresh UUID, the current time and a window of 0.
    pub fn new(name: &str, hostname: &str) -> Self {
        SessionConfig {
            name: name.to_owned(),
            hostname: hostname.to_owned(),
            live_timer_us: 0,
            sessiond_uuid: crate::random_uuid(),
            sessiond_session_id: u64::from(std::process::id()),
            creation_time: now_secs(),
            index_window: 0,
            connect_timeout: Duration::from_secs(10),
            trace_format: TraceFormat::Ctf1_8,
        }
    }
}

/// A stream of the session, as returned by [`RelaySession::add_stream`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StreamRef(usize);

#[derive(Debug)]
struct StreamState {
    handle: StreamId,
    metadata: bool,
    /// Data packets sent (the next net sequence number).
    sent: u64,
    /// CTF stream class id (from the last index sent), for beacons.
    class_id: u64,
    /// Packet sequence number of the last packet sent, if known.
    last_psn: Option<u64>,
    closed: bool,
}

impl StreamState {
    /// Net sequence number of the last packet sent (all ones before the first).
    fn last_seq(&self) -> u64 {
        self.sent.wrapping_sub(1)
    }
}

/// One relay session over a control and a data connection.
#[derive(Debug)]
pub struct RelaySession {
    control: ControlConn,
    data: DataConn,
    id: SessionId,
    minor: u32,
    output_path: String,
    clear_allowed: bool,
    streams: Vec<StreamState>,
    chunk_open: bool,
    /// Id of the current trace chunk.
    chunk_id: u64,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

async fn connect(
    addr: SocketAddr,
    what: &'static str,
    timeout: Duration,
) -> Result<TcpStream, SendError> {
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(source)) => Err(SendError::Connect { what, addr, source }),
        Err(_) => Err(SendError::Connect {
            what,
            addr,
            source: std::io::ErrorKind::TimedOut.into(),
        }),
    }
}

impl RelaySession {
    /// Connects both ports, negotiates the version, creates the session and its first trace
    /// chunk (id 0).
    pub async fn connect(
        control: SocketAddr,
        data: SocketAddr,
        cfg: &SessionConfig,
    ) -> Result<Self, SendError> {
        if cfg.name.is_empty()
            || cfg.name.len() > 254
            || cfg.hostname.is_empty()
            || cfg.hostname.len() > 255
        {
            return Err(SendError::Invalid(
                "session name must be 1..=254 bytes, hostname 1..=255".into(),
            ));
        }
        if cfg.sessiond_uuid == [0; 16] {
            return Err(SendError::Invalid(
                "the session UUID must not be all zeros".into(),
            ));
        }
        let sock = connect(control, "control", cfg.connect_timeout).await?;
        let mut c = ControlConn::new(sock, cfg.index_window);

        let version = Command::Version(Version {
            major: VERSION.0,
            minor: VERSION.1,
        });
        let (major, minor) = match c.call(&version).await? {
            Reply::Version(v) => (v.major, v.minor.min(VERSION.1)),
            other => return Err(unexpected(CommandKind::Version, &other)),
        };
        if major != VERSION.0 || minor < MIN_MINOR {
            return Err(SendError::Version { major, minor });
        }
        if cfg.trace_format == TraceFormat::Ctf2 && minor < CTF2_MINOR {
            return Err(SendError::Invalid(format!(
                "CTF 2 sessions need a relay of protocol 2.{CTF2_MINOR} or later; this one \
                 negotiated 2.{minor}"
            )));
        }
        let minor = ProtocolMinor(minor);
        c.set_minor(minor);

        let mut clear_allowed = false;
        if minor.has_configuration() {
            match c
                .call(&Command::GetConfiguration(GetConfiguration {
                    query_flags: 0,
                }))
                .await?
            {
                Reply::Configuration(r) => {
                    check_ok(CommandKind::GetConfiguration, r.ret_code)?;
                    clear_allowed = r.flags.0 & 1 == 1;
                }
                other => return Err(unexpected(CommandKind::GetConfiguration, &other)),
            }
        }

        let create = Command::CreateSession(CreateSession {
            session_name: cfg.name.clone(),
            hostname: cfg.hostname.clone(),
            base_path: Some(String::new()),
            live_timer_us: cfg.live_timer_us,
            snapshot: false,
            name_contains_creation_time: false,
            sessiond_uuid: cfg.sessiond_uuid,
            sessiond_session_id: cfg.sessiond_session_id,
            creation_time: cfg.creation_time,
            current_chunk_id: None,
            // Encoded from minor 15 on (checked above: CTF 2 needs 15).
            trace_format: cfg.trace_format,
        });
        let (id, output_path) = match c.call(&create).await? {
            Reply::CreateSession(r) => {
                check_ok(CommandKind::CreateSession, r.ret_code)?;
                (r.session_id, r.output_path.unwrap_or_default())
            }
            other => return Err(unexpected(CommandKind::CreateSession, &other)),
        };

        let data = DataConn::new(connect(data, "data", cfg.connect_timeout).await?);

        c.call_ok(&Command::CreateTraceChunk(CreateTraceChunk {
            chunk_id: 0,
            creation_timestamp: now_secs(),
            override_name: None,
        }))
        .await?;
        tracing::debug!(session = %id, %output_path, minor = minor.0, "relay session created");
        Ok(RelaySession {
            control: c,
            data,
            id,
            minor: minor.0,
            output_path,
            clear_allowed,
            streams: Vec::new(),
            chunk_open: true,
            chunk_id: 0,
        })
    }

    /// The relay session id.
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// The negotiated protocol minor.
    pub fn minor(&self) -> u32 {
        self.minor
    }

    /// The session directory, relative to the relay's output root.
    pub fn output_path(&self) -> &str {
        &self.output_path
    }

    /// Whether the relay allows `lttng clear`.
    pub fn clear_allowed(&self) -> bool {
        self.clear_allowed
    }

    /// The control connection (for round-trip statistics).
    pub fn control(&mut self) -> &mut ControlConn {
        &mut self.control
    }

    /// The relay's handle of a stream.
    pub fn handle(&self, s: StreamRef) -> StreamId {
        self.streams[s.0].handle
    }

    /// Data packets sent on a stream.
    pub fn packets_sent(&self, s: StreamRef) -> u64 {
        self.streams[s.0].sent
    }

    /// Announces a stream named `name` (`metadata` for a metadata stream) in trace directory
    /// `path` of the current chunk.
    pub async fn add_stream(&mut self, name: &str, path: &str) -> Result<StreamRef, SendError> {
        if name.is_empty() || name.len() > 263 || path.is_empty() || path.len() > 254 {
            return Err(SendError::Invalid(format!(
                "stream {path}/{name}: name or path too long or empty"
            )));
        }
        let cmd = Command::AddStream(AddStream {
            channel_name: name.to_owned(),
            pathname: path.to_owned(),
            tracefile_size: 0,
            tracefile_count: 0,
            trace_chunk_id: 0,
        });
        let handle = match self.control.call(&cmd).await? {
            Reply::AddStream(r) => {
                check_ok(CommandKind::AddStream, r.ret_code)?;
                r.handle
            }
            other => return Err(unexpected(CommandKind::AddStream, &other)),
        };
        self.streams.push(StreamState {
            handle,
            metadata: name == "metadata",
            sent: 0,
            class_id: 0,
            last_psn: None,
            closed: false,
        });
        Ok(StreamRef(self.streams.len() - 1))
    }

    /// STREAMS_SENT: makes the streams added so far visible to live viewers.
    pub async fn streams_sent(&mut self) -> Result<(), SendError> {
        self.control.call_ok(&Command::StreamsSent).await
    }

    /// SEND_METADATA: `bytes` then `padding` zeros appended to the metadata stream `s`.
    pub async fn send_metadata(
        &mut self,
        s: StreamRef,
        bytes: &[u8],
        padding: u32,
    ) -> Result<(), SendError> {
        let handle = self.streams[s.0].handle;
        self.control.send_metadata(handle, bytes, padding).await
    }

    /// Sends a packet on the data port: `content` then `padding` zeros; with `index`, also its
    /// SEND_INDEX (pipelined per the session's window).
    pub async fn send_packet(
        &mut self,
        s: StreamRef,
        content: &[u8],
        padding: u32,
        index: Option<&IndexEntry>,
    ) -> Result<(), SendError> {
        let st = &self.streams[s.0];
        let (handle, seq) = (st.handle.0, st.sent);
        self.data.send(handle, seq, content, padding).await?;
        self.packet_sent(s, index).await
    }

    /// Like [`Self::send_packet`], with the packet's `len` content bytes read from `file` at
    /// `offset` by the kernel.
    #[allow(clippy::too_many_arguments)]
    pub async fn send_packet_from_file(
        &mut self,
        s: StreamRef,
        file: &File,
        offset: u64,
        len: u64,
        padding: u32,
        index: Option<&IndexEntry>,
    ) -> Result<(), SendError> {
        let st = &self.streams[s.0];
        let (handle, seq) = (st.handle.0, st.sent);
        self.data
            .send_from_file(handle, seq, file, offset, len, padding)
            .await?;
        self.packet_sent(s, index).await
    }

    /// Sends only the SEND_INDEX of the next packet of `s`: its data never goes out, as when a
    /// sender loses a packet between its two halves (for loss-accounting tests).
    pub async fn send_index_only(
        &mut self,
        s: StreamRef,
        index: &IndexEntry,
    ) -> Result<(), SendError> {
        self.packet_sent(s, Some(index)).await
    }

    async fn packet_sent(
        &mut self,
        s: StreamRef,
        index: Option<&IndexEntry>,
    ) -> Result<(), SendError> {
        let st = &mut self.streams[s.0];
        let seq = st.sent;
        st.sent += 1;
        let Some(e) = index else {
            return Ok(());
        };
        st.class_id = e.stream_id;
        st.last_psn = (e.packet_seq_num != u64::MAX).then_some(e.packet_seq_num);
        let idx = send_index(st.handle, NetSeq(seq), e);
        self.control.pipelined_index(idx).await
    }

    /// A live beacon: nothing on stream `s` until clock value `ts_end`.
    pub async fn send_beacon(&mut self, s: StreamRef, ts_end: u64) -> Result<(), SendError> {
        let st = &self.streams[s.0];
        let e = IndexEntry {
            timestamp_end: ts_end,
            stream_id: st.class_id,
            stream_instance_id: 0,
            packet_seq_num: 0,
            ..IndexEntry::default()
        };
        let idx = send_index(st.handle, NetSeq(st.last_seq()), &e);
        self.control.pipelined_index(idx).await
    }

    /// Sets the CTF stream class id beacons of `s` carry before its first packet.
    pub fn set_class_id(&mut self, s: StreamRef, class_id: u64) {
        self.streams[s.0].class_id = class_id;
    }

    /// One data-pending round: BEGIN, DATA_PENDING per data stream (QUIESCENT_CONTROL for
    /// metadata), END. Returns whether the relay still waits for data or index of some stream.
    pub async fn data_pending(&mut self) -> Result<bool, SendError> {
        self.control
            .call_ok(&Command::BeginDataPending(self.id))
            .await?;
        for i in 0..self.streams.len() {
            let st = &self.streams[i];
            if st.closed {
                continue;
            }
            if st.metadata {
                self.control
                    .call_ok(&Command::QuiescentControl(st.handle))
                    .await?;
            } else {
                let cmd = Command::DataPending(DataPending {
                    stream_id: st.handle,
                    last_net_seq: NetSeq(st.last_seq()),
                });
                if pending(CommandKind::DataPending, self.control.call(&cmd).await?)? {
                    return Ok(true);
                }
            }
        }
        let end = self.control.call(&Command::EndDataPending(self.id)).await?;
        pending(CommandKind::EndDataPending, end)
    }

    /// Repeats [`Self::data_pending`] until nothing is pending or `timeout` passes.
    pub async fn wait_data_pending(&mut self, timeout: Duration) -> Result<(), SendError> {
        let start = Instant::now();
        while self.data_pending().await? {
            if start.elapsed() > timeout {
                return Err(SendError::Timeout("data pending"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Closes one stream (CLOSE_STREAM with its last net sequence number).
    pub async fn close_stream(&mut self, s: StreamRef) -> Result<(), SendError> {
        let st = &mut self.streams[s.0];
        if st.closed {
            return Ok(());
        }
        st.closed = true;
        let cmd = Command::CloseStream(CloseStream {
            stream_id: st.handle,
            last_net_seq: NetSeq(st.last_seq()),
        });
        self.control.call_ok(&cmd).await
    }

    /// Ends the session without the data-pending and rotation steps: CLOSE_STREAM for every
    /// stream, then EOF. For sessions whose relay cannot account for their packets (no
    /// SEND_INDEX at all), where data pending would never settle.
    pub async fn close_streams(mut self) -> Result<(), SendError> {
        self.control.drain_indexes().await?;
        for i in 0..self.streams.len() {
            self.close_stream(StreamRef(i)).await?;
        }
        let RelaySession { control, data, .. } = self;
        data.shutdown(Duration::from_secs(30)).await?;
        control.shutdown(Duration::from_secs(2)).await
    }

    /// Rotates like `lttng rotate`: CREATE_TRACE_CHUNK of the next chunk, ROTATE_STREAMS of data
    /// then metadata streams into it, and CLOSE_TRACE_CHUNK of the previous chunk with "move to
    /// completed". Returns the archive path the relay reported.
    pub async fn rotate(&mut self) -> Result<String, SendError> {
        let next = self.chunk_id.wrapping_add(1);
        self.control
            .call_ok(&Command::CreateTraceChunk(CreateTraceChunk {
                chunk_id: next,
                creation_timestamp: now_secs(),
                override_name: None,
            }))
            .await?;
        self.rotate_streams(Some(next)).await?;
        let previous = self.chunk_id;
        self.chunk_id = next;
        self.close_chunk(previous, Some(CloseCommand::MoveToCompleted))
            .await
    }

    /// ROTATE_STREAMS of the data streams (after their last packet sent) then of the metadata
    /// streams, to chunk `to` (`None`: to no chunk).
    async fn rotate_streams(&mut self, to: Option<u64>) -> Result<(), SendError> {
        for metadata in [false, true] {
            let positions: Vec<RotatePosition> = self
                .streams
                .iter()
                .filter(|s| s.metadata == metadata && !s.closed)
                .map(|s| RotatePosition {
                    stream_id: s.handle,
                    rotate_at_seq_num: if metadata {
                        0
                    } else {
                        s.last_psn.map_or(0, |p| p.wrapping_add(1))
                    },
                })
                .collect();
            if positions.is_empty() {
                continue;
            }
            let cmd = Command::RotateStreams(RotateStreams {
                new_chunk_id: to,
                positions,
            });
            self.control.call_ok(&cmd).await?;
        }
        Ok(())
    }

    /// CLOSE_TRACE_CHUNK of `chunk_id`; returns the path the relay reported.
    async fn close_chunk(
        &mut self,
        chunk_id: u64,
        close_command: Option<CloseCommand>,
    ) -> Result<String, SendError> {
        let cmd = Command::CloseTraceChunk(CloseTraceChunk {
            chunk_id,
            close_timestamp: now_secs(),
            close_command,
        });
        match self.control.call(&cmd).await? {
            Reply::CloseTraceChunk(CloseTraceChunkReply::Closed { path }) => Ok(path),
            Reply::CloseTraceChunk(CloseTraceChunkReply::Failed { ret_code, .. }) => {
                Err(SendError::Refused {
                    cmd: "CLOSE_TRACE_CHUNK",
                    code: ret_code.0,
                })
            }
            other => Err(unexpected(CommandKind::CloseTraceChunk, &other)),
        }
    }

    /// Ends the session like `lttng destroy`: data pending until done, ROTATE_STREAMS of data
    /// then metadata streams to no chunk, CLOSE_TRACE_CHUNK, TRACE_CHUNK_EXISTS until the chunk
    /// is gone, CLOSE_STREAM for every stream (metadata first), then EOF on both connections.
    /// Returns the session directory the relay reported at CLOSE_TRACE_CHUNK.
    pub async fn close(mut self, timeout: Duration) -> Result<String, SendError> {
        self.wait_data_pending(timeout).await?;
        let mut path = self.output_path.clone();
        if self.chunk_open {
            self.rotate_streams(None).await?;
            path = self.close_chunk(self.chunk_id, None).await?;
            self.chunk_open = false;
            let start = Instant::now();
            loop {
                let exists = match self
                    .control
                    .call(&Command::TraceChunkExists(self.chunk_id))
                    .await?
                {
                    Reply::TraceChunkExists(r) => {
                        check_ok(CommandKind::TraceChunkExists, r.ret_code)?;
                        r.exists
                    }
                    other => return Err(unexpected(CommandKind::TraceChunkExists, &other)),
                };
                if !exists {
                    break;
                }
                if start.elapsed() > timeout {
                    return Err(SendError::Timeout("trace chunk release"));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        let order: Vec<usize> = (0..self.streams.len())
            .filter(|&i| self.streams[i].metadata)
            .chain(
                (0..self.streams.len())
                    .rev()
                    .filter(|&i| !self.streams[i].metadata),
            )
            .collect();
        for i in order {
            self.close_stream(StreamRef(i)).await?;
        }
        let RelaySession { control, data, .. } = self;
        data.shutdown(Duration::from_secs(30)).await?;
        control.shutdown(Duration::from_secs(2)).await?;
        Ok(path)
    }
}

/// A SEND_INDEX for packet `seq` of stream `handle` with the fields of `e`.
fn send_index(handle: StreamId, seq: NetSeq, e: &IndexEntry) -> SendIndex {
    SendIndex {
        relay_stream_id: handle,
        net_seq: seq,
        packet_size: e.packet_size,
        content_size: e.content_size,
        timestamp_begin: e.timestamp_begin,
        timestamp_end: e.timestamp_end,
        events_discarded: e.events_discarded,
        stream_class_id: e.stream_id,
        stream_instance_id: e.stream_instance_id,
        packet_seq_num: e.packet_seq_num,
    }
}

/// Reads a DATA_PENDING / END_DATA_PENDING reply as a boolean.
fn pending(kind: CommandKind, reply: Reply) -> Result<bool, SendError> {
    match reply {
        Reply::Pending(p) if p.is_error() => Err(SendError::Refused {
            cmd: kind.name(),
            code: p.0,
        }),
        Reply::Pending(p) => Ok(p.is_pending()),
        other => Err(unexpected(kind, &other)),
    }
}
