//! A relay session driven like LTTng 2.13's session and consumer daemons drive one.
//!
//! [`RelaySession::connect`] performs the session daemon's part (VERSION, GET_CONFIGURATION,
//! CREATE_SESSION, data connection) and `lttng start`'s CREATE_TRACE_CHUNK(0). Then the consumer
//! part: streams ([`RelaySession::add_stream`], [`RelaySession::streams_sent`]), metadata,
//! packets with their index, beacons, and at the end data pending and the destroy sequence
//! ([`RelaySession::close`]).

use std::fs::File;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::net::TcpStream;
use trelay_proto::ctf::index::IndexEntry;
use trelay_proto::{SessionId, StreamId};

use super::control::{check_ok, ControlConn};
use super::data::DataConn;
use super::wire::{self, Cmd};
use super::SendError;

/// Oldest relay protocol minor this sender speaks (2.11: trace chunks, 2.11 layouts).
pub const MIN_MINOR: u32 = 11;
/// Protocol version announced.
pub const VERSION: (u32, u32) = (2, 13);

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
    /// Most SEND_INDEX replies in flight (1 = strictly like a consumer daemon).
    pub index_window: usize,
    /// How long to wait for the connections to open.
    pub connect_timeout: Duration,
}

impl SessionConfig {
    /// A configuration with a fresh UUID, the current time and a window of 1.
    pub fn new(name: &str, hostname: &str) -> Self {
        SessionConfig {
            name: name.to_owned(),
            hostname: hostname.to_owned(),
            live_timer_us: 0,
            sessiond_uuid: crate::random_uuid(),
            sessiond_session_id: u64::from(std::process::id()),
            creation_time: now_secs(),
            index_window: 1,
            connect_timeout: Duration::from_secs(10),
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

        wire::control_header(&mut c.out, Cmd::Version, 8);
        c.out.extend_from_slice(&VERSION.0.to_be_bytes());
        c.out.extend_from_slice(&VERSION.1.to_be_bytes());
        let mut r = [0u8; 8];
        c.call(Cmd::Version, &mut r).await?;
        let major = u32::from_be_bytes([r[0], r[1], r[2], r[3]]);
        let minor = u32::from_be_bytes([r[4], r[5], r[6], r[7]]).min(VERSION.1);
        if major != VERSION.0 || minor < MIN_MINOR {
            return Err(SendError::Version { major, minor });
        }

        let mut clear_allowed = false;
        if minor >= 12 {
            wire::u64s(&mut c.out, Cmd::GetConfiguration, &[0]);
            let mut r = [0u8; 12];
            c.call(Cmd::GetConfiguration, &mut r).await?;
            check_ok(
                Cmd::GetConfiguration,
                u32::from_be_bytes([r[0], r[1], r[2], r[3]]),
            )?;
            clear_allowed = r[11] & 1 == 1;
        }

        wire::create_session(
            &mut c.out,
            &wire::CreateSession {
                name: &cfg.name,
                hostname: &cfg.hostname,
                base_path: "",
                live_timer: cfg.live_timer_us,
                uuid: cfg.sessiond_uuid,
                session_id: cfg.sessiond_session_id,
                creation_time: cfg.creation_time,
            },
        );
        let mut r = [0u8; 16];
        c.call(Cmd::CreateSession, &mut r).await?;
        let id = u64::from_be_bytes(r[..8].try_into().unwrap_or_default());
        let code = u32::from_be_bytes(r[8..12].try_into().unwrap_or_default());
        let path_len = u32::from_be_bytes(r[12..16].try_into().unwrap_or_default());
        let output_path = c.read_path(Cmd::CreateSession, path_len).await?;
        check_ok(Cmd::CreateSession, code)?;

        let data = DataConn::new(connect(data, "data", cfg.connect_timeout).await?);

        wire::create_trace_chunk(&mut c.out, 0, now_secs());
        c.call_ok(Cmd::CreateTraceChunk).await?;
        tracing::debug!(session = id, %output_path, minor, "relay session created");
        Ok(RelaySession {
            control: c,
            data,
            id: SessionId(id),
            minor,
            output_path,
            clear_allowed,
            streams: Vec::new(),
            chunk_open: true,
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
        wire::add_stream(&mut self.control.out, name, path, 0);
        let mut r = [0u8; 12];
        self.control.call(Cmd::AddStream, &mut r).await?;
        check_ok(
            Cmd::AddStream,
            u32::from_be_bytes(r[8..12].try_into().unwrap_or_default()),
        )?;
        let handle = StreamId(u64::from_be_bytes(r[..8].try_into().unwrap_or_default()));
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
        wire::control_header(&mut self.control.out, Cmd::StreamsSent, 0);
        self.control.call_ok(Cmd::StreamsSent).await
    }

    /// SEND_METADATA: `bytes` then `padding` zeros appended to the metadata stream `s`.
    pub async fn send_metadata(
        &mut self,
        s: StreamRef,
        bytes: &[u8],
        padding: u32,
    ) -> Result<(), SendError> {
        let handle = self.streams[s.0].handle.0;
        wire::send_metadata_head(&mut self.control.out, handle, bytes.len(), padding);
        self.control.flush_with(Cmd::SendMetadata, bytes).await
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
        wire::send_index(&mut self.control.out, st.handle.0, seq, e);
        self.control.pipelined_index().await
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
        wire::send_index(&mut self.control.out, st.handle.0, st.last_seq(), &e);
        self.control.pipelined_index().await
    }

    /// Sets the CTF stream class id beacons of `s` carry before its first packet.
    pub fn set_class_id(&mut self, s: StreamRef, class_id: u64) {
        self.streams[s.0].class_id = class_id;
    }

    /// One data-pending round: BEGIN, DATA_PENDING per data stream (QUIESCENT_CONTROL for
    /// metadata), END. Returns whether the relay still waits for data or index of some stream.
    pub async fn data_pending(&mut self) -> Result<bool, SendError> {
        wire::u64s(&mut self.control.out, Cmd::BeginDataPending, &[self.id.0]);
        self.control.call_ok(Cmd::BeginDataPending).await?;
        for i in 0..self.streams.len() {
            let st = &self.streams[i];
            if st.closed {
                continue;
            }
            let mut r = [0u8; 4];
            if st.metadata {
                wire::u64s(&mut self.control.out, Cmd::QuiescentControl, &[st.handle.0]);
                self.control.call_ok(Cmd::QuiescentControl).await?;
            } else {
                wire::u64s(
                    &mut self.control.out,
                    Cmd::DataPending,
                    &[st.handle.0, st.last_seq()],
                );
                self.control.call(Cmd::DataPending, &mut r).await?;
                match u32::from_be_bytes(r) {
                    0 => {}
                    1 => return Ok(true),
                    code => {
                        return Err(SendError::Refused {
                            cmd: Cmd::DataPending.name(),
                            code,
                        })
                    }
                }
            }
        }
        wire::u64s(&mut self.control.out, Cmd::EndDataPending, &[self.id.0]);
        let mut r = [0u8; 4];
        self.control.call(Cmd::EndDataPending, &mut r).await?;
        match u32::from_be_bytes(r) {
            0 => Ok(false),
            1 => Ok(true),
            code => Err(SendError::Refused {
                cmd: Cmd::EndDataPending.name(),
                code,
            }),
        }
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
        let (handle, last) = (st.handle.0, st.last_seq());
        wire::u64s(&mut self.control.out, Cmd::CloseStream, &[handle, last]);
        self.control.call_ok(Cmd::CloseStream).await
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

    /// Ends the session like `lttng destroy`: data pending until done, ROTATE_STREAMS of data
    /// then metadata streams to no chunk, CLOSE_TRACE_CHUNK, TRACE_CHUNK_EXISTS until the chunk
    /// is gone, CLOSE_STREAM for every stream (metadata first), then EOF on both connections.
    /// Returns the session directory the relay reported at CLOSE_TRACE_CHUNK.
    pub async fn close(mut self, timeout: Duration) -> Result<String, SendError> {
        self.wait_data_pending(timeout).await?;
        let mut path = self.output_path.clone();
        if self.chunk_open {
            for metadata in [false, true] {
                let positions: Vec<(u64, u64)> = self
                    .streams
                    .iter()
                    .filter(|s| s.metadata == metadata && !s.closed)
                    .map(|s| {
                        (
                            s.handle.0,
                            if metadata {
                                0
                            } else {
                                s.last_psn.map_or(0, |p| p.wrapping_add(1))
                            },
                        )
                    })
                    .collect();
                if positions.is_empty() {
                    continue;
                }
                wire::rotate_streams_to_none(&mut self.control.out, &positions);
                self.control.call_ok(Cmd::RotateStreams).await?;
            }
            wire::close_trace_chunk(&mut self.control.out, 0, now_secs());
            let mut r = [0u8; 8];
            self.control.call(Cmd::CloseTraceChunk, &mut r).await?;
            let code = u32::from_be_bytes(r[..4].try_into().unwrap_or_default());
            check_ok(Cmd::CloseTraceChunk, code)?;
            let len = u32::from_be_bytes(r[4..].try_into().unwrap_or_default());
            path = self.control.read_path(Cmd::CloseTraceChunk, len).await?;
            self.chunk_open = false;
            let start = Instant::now();
            loop {
                wire::u64s(&mut self.control.out, Cmd::TraceChunkExists, &[0]);
                let mut r = [0u8; 5];
                self.control.call(Cmd::TraceChunkExists, &mut r).await?;
                check_ok(
                    Cmd::TraceChunkExists,
                    u32::from_be_bytes(r[..4].try_into().unwrap_or_default()),
                )?;
                if r[4] == 0 {
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
