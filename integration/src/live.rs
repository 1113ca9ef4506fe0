//! A raw live-port client for the live tests: encodes viewer requests and decodes replies with
//! trelay-proto's live codecs, and can also send arbitrary bytes (hostile requests, early
//! disconnects). Blocking, with read timeouts, so a relay that never answers fails the test.

use anyhow::{bail, Context, Result};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use trelay_proto::lttng::live::{
    decode_reply_at, AttachStatus, ConnectRequest, ConnectionType, GetMetadataStatus,
    GetPacketStatus, IndexReply, NewStreamsStatus, Seek, SessionRecord, StreamRecord, ViewerFlags,
    ViewerReply, ViewerRequest,
};
use trelay_proto::{Decoded, SessionId, StreamId, ViewerSessionId};

/// A decoded reply that owns its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Any reply but GET_PACKET and GET_METADATA.
    Other(ViewerReply<'static>),
    /// GET_PACKET reply.
    Packet {
        /// Status.
        status: GetPacketStatus,
        /// Flags.
        flags: ViewerFlags,
        /// Bytes.
        data: Vec<u8>,
    },
    /// GET_METADATA reply.
    Metadata {
        /// Status.
        status: GetMetadataStatus,
        /// Bytes.
        data: Vec<u8>,
    },
}

fn owned(r: ViewerReply<'_>) -> Reply {
    match r {
        ViewerReply::Packet {
            status,
            flags,
            data,
        } => Reply::Packet {
            status,
            flags,
            data: data.to_vec(),
        },
        ViewerReply::Metadata { status, data } => Reply::Metadata {
            status,
            data: data.to_vec(),
        },
        ViewerReply::Connect(c) => Reply::Other(ViewerReply::Connect(c)),
        ViewerReply::ListSessions(s) => Reply::Other(ViewerReply::ListSessions(s)),
        ViewerReply::AttachSession { status, streams } => {
            Reply::Other(ViewerReply::AttachSession { status, streams })
        }
        ViewerReply::NextIndex(i) => Reply::Other(ViewerReply::NextIndex(i)),
        ViewerReply::NewStreams { status, streams } => {
            Reply::Other(ViewerReply::NewStreams { status, streams })
        }
        ViewerReply::CreateSession(s) => Reply::Other(ViewerReply::CreateSession(s)),
        ViewerReply::DetachSession(s) => Reply::Other(ViewerReply::DetachSession(s)),
        ViewerReply::UnknownCommand { code } => Reply::Other(ViewerReply::UnknownCommand { code }),
    }
}

/// One live connection.
#[derive(Debug)]
pub struct LiveClient {
    /// The socket.
    pub sock: TcpStream,
    buf: Vec<u8>,
    /// The live minor replies are decoded with (set by the CONNECT of [`LiveClient::viewer_at`]).
    pub minor: u32,
}

impl LiveClient {
    /// Connects to the live port on 127.0.0.1 (20 s read timeout).
    pub fn connect(port: u16) -> Result<LiveClient> {
        let sock = TcpStream::connect(("127.0.0.1", port))
            .with_context(|| format!("connecting to the live port {port}"))?;
        sock.set_read_timeout(Some(Duration::from_secs(20)))?;
        sock.set_nodelay(true)?;
        Ok(LiveClient {
            sock,
            buf: Vec::new(),
            minor: 4,
        })
    }

    /// Connects, then CONNECT (2.4, as babeltrace2 2.0 does) and CREATE_SESSION, both checked.
    pub fn viewer(port: u16) -> Result<LiveClient> {
        Self::greet(LiveClient::connect(port)?, 4)
    }

    /// Like [`LiveClient::viewer`], connecting from the loopback address `src`.
    pub fn viewer_from(src: &str, port: u16) -> Result<LiveClient> {
        let sock = crate::peers::connect_from(src, port)?;
        Self::greet(
            LiveClient {
                sock,
                buf: Vec::new(),
                minor: 4,
            },
            4,
        )
    }

    /// Connects, then CONNECT announcing live minor `minor` (15: as babeltrace2 2.1 would) and
    /// CREATE_SESSION; replies are then decoded at `min(minor, 15)`.
    pub fn viewer_at(port: u16, minor: u32) -> Result<LiveClient> {
        Self::greet(LiveClient::connect(port)?, minor)
    }

    fn greet(mut c: LiveClient, minor: u32) -> Result<LiveClient> {
        match c.call(&connect_request(minor))? {
            Reply::Other(ViewerReply::Connect(r))
                if r.major == 2 && r.minor == trelay_proto::lttng::live::PROTOCOL_MINOR =>
            {
                c.minor = minor.min(r.minor);
            }
            other => bail!("CONNECT reply {other:?}"),
        }
        match c.call(&ViewerRequest::CreateSession)? {
            Reply::Other(ViewerReply::CreateSession(
                trelay_proto::lttng::live::CreateSessionStatus::Ok,
            )) => {}
            other => bail!("CREATE_SESSION reply {other:?}"),
        }
        Ok(c)
    }

    /// Sends raw bytes.
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.sock.write_all(bytes)?;
        Ok(())
    }

    /// Sends a request.
    pub fn send(&mut self, req: &ViewerRequest) -> Result<()> {
        let mut b = Vec::new();
        req.encode(&mut b);
        self.send_raw(&b)
    }

    /// Reads the reply to command number `cmd`.
    pub fn recv(&mut self, cmd: u32) -> Result<Reply> {
        loop {
            match decode_reply_at(cmd, self.minor, &self.buf)
                .context("decoding the relay's reply")?
            {
                Decoded::Done { msg, used } => {
                    let r = owned(msg);
                    self.buf.drain(..used);
                    return Ok(r);
                }
                Decoded::Incomplete { needed } => {
                    let want = needed.saturating_sub(self.buf.len()).max(1);
                    let start = self.buf.len();
                    self.buf.resize(start + want.min(1 << 20), 0);
                    let n = self.sock.read(&mut self.buf[start..]);
                    let n = match n {
                        Ok(n) => n,
                        Err(e) => {
                            self.buf.truncate(start);
                            return Err(e).context("reading the relay's reply");
                        }
                    };
                    self.buf.truncate(start + n);
                    if n == 0 {
                        bail!("the relay closed the connection (reply to command {cmd})");
                    }
                }
            }
        }
    }

    /// Sends a request and reads its reply.
    pub fn call(&mut self, req: &ViewerRequest) -> Result<Reply> {
        self.send(req)?;
        self.recv(req.command().to_u32())
    }

    /// Whether the relay closed the connection: EOF (or reset) within `wait`, with no byte before.
    /// Returns an error if bytes arrive instead.
    pub fn closed_by_relay(&mut self, wait: Duration) -> Result<bool> {
        self.sock.set_read_timeout(Some(wait))?;
        let mut b = [0u8; 64];
        let r = self.sock.read(&mut b);
        self.sock
            .set_read_timeout(Some(Duration::from_secs(20)))
            .ok();
        match r {
            Ok(0) => Ok(true),
            Ok(n) => bail!("unexpected bytes from the relay: {:?}", &b[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Ok(false)
            }
            Err(_) => Ok(true),
        }
    }

    /// LIST_SESSIONS.
    pub fn list(&mut self) -> Result<Vec<SessionRecord>> {
        match self.call(&ViewerRequest::ListSessions)? {
            Reply::Other(ViewerReply::ListSessions(s)) => Ok(s),
            other => bail!("LIST_SESSIONS reply {other:?}"),
        }
    }

    /// The listed session named `name`, if any.
    pub fn find(&mut self, name: &str) -> Result<Option<SessionRecord>> {
        Ok(self.list()?.into_iter().find(|s| s.session_name == name))
    }

    /// ATTACH_SESSION.
    pub fn attach(
        &mut self,
        id: SessionId,
        seek: Seek,
    ) -> Result<(AttachStatus, Vec<StreamRecord>)> {
        match self.call(&ViewerRequest::AttachSession {
            session_id: id,
            offset: 0,
            seek,
        })? {
            Reply::Other(ViewerReply::AttachSession { status, streams }) => Ok((status, streams)),
            other => bail!("ATTACH_SESSION reply {other:?}"),
        }
    }

    /// GET_NEW_STREAMS.
    pub fn new_streams(&mut self, id: SessionId) -> Result<(NewStreamsStatus, Vec<StreamRecord>)> {
        match self.call(&ViewerRequest::GetNewStreams { session_id: id })? {
            Reply::Other(ViewerReply::NewStreams { status, streams }) => Ok((status, streams)),
            other => bail!("GET_NEW_STREAMS reply {other:?}"),
        }
    }

    /// GET_NEXT_INDEX.
    pub fn next_index(&mut self, stream: StreamId) -> Result<IndexReply> {
        match self.call(&ViewerRequest::GetNextIndex { stream_id: stream })? {
            Reply::Other(ViewerReply::NextIndex(i)) => Ok(i),
            other => bail!("GET_NEXT_INDEX reply {other:?}"),
        }
    }

    /// GET_PACKET.
    pub fn packet(
        &mut self,
        stream: StreamId,
        offset: u64,
        len: u32,
    ) -> Result<(GetPacketStatus, ViewerFlags, Vec<u8>)> {
        match self.call(&ViewerRequest::GetPacket {
            stream_id: stream,
            offset,
            len,
        })? {
            Reply::Packet {
                status,
                flags,
                data,
            } => Ok((status, flags, data)),
            other => bail!("GET_PACKET reply {other:?}"),
        }
    }

    /// GET_METADATA.
    pub fn metadata(&mut self, stream: StreamId) -> Result<(GetMetadataStatus, Vec<u8>)> {
        match self.call(&ViewerRequest::GetMetadata { stream_id: stream })? {
            Reply::Metadata { status, data } => Ok((status, data)),
            other => bail!("GET_METADATA reply {other:?}"),
        }
    }

    /// DETACH_SESSION; returns the raw reply.
    pub fn detach(&mut self, id: SessionId) -> Result<Reply> {
        self.call(&ViewerRequest::DetachSession { session_id: id })
    }
}

/// A CONNECT request for protocol 2.`minor`, command connection.
pub fn connect_request(minor: u32) -> ViewerRequest {
    ViewerRequest::Connect(ConnectRequest {
        viewer_session_id: ViewerSessionId(u64::MAX),
        major: 2,
        minor,
        conn_type: ConnectionType::Command,
    })
}

/// Polls LIST_SESSIONS on a fresh connection until a session named `name` is listed.
pub fn wait_listed(port: u16, name: &str, timeout: Duration) -> Result<SessionRecord> {
    let mut c = LiveClient::viewer(port)?;
    let mut found = None;
    crate::wait_for(
        timeout,
        &format!("session {name} listed on the live port"),
        || {
            found = c.find(name).ok().flatten();
            found.is_some()
        },
    )?;
    found.context("unreachable")
}
