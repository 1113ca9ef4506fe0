//! A blocking connection to a relay's live port: one request, one reply, in order, on a plain
//! socket or inside TLS ([`super::tls`]).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use trelay_proto::lttng::live::{
    decode_reply_at, ConnectRequest, ConnectionType, CreateSessionStatus, ViewerReply,
    ViewerRequest, PROTOCOL_MAJOR,
};
use trelay_proto::{DecodeError, Decoded, ViewerSessionId};

use super::tls::ViewerTls;
use super::LiveError;
use crate::url::LiveUrl;

/// The socket under a [`ViewerConn`].
#[derive(Debug)]
enum Transport {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Transport::Plain(s) => s.read(buf),
            Transport::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Transport::Plain(s) => s.write(buf),
            Transport::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Transport::Plain(s) => s.flush(),
            Transport::Tls(s) => s.flush(),
        }
    }
}

/// Protocol minor the viewer announces (LTTng 2.15's: the session list says each session's
/// trace format, and CTF 2 sessions are listed). The minor in use is the smaller of this and
/// the relay's.
pub const VIEWER_MINOR: u32 = 15;

/// How long a reply may take before the connection is considered dead.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// A live-port connection.
#[derive(Debug)]
pub struct ViewerConn {
    stream: Transport,
    out: Vec<u8>,
    buf: Vec<u8>,
    /// The viewer session id the relay assigned at CONNECT.
    pub viewer_session_id: ViewerSessionId,
    /// The relay's protocol minor (from its CONNECT reply).
    pub relay_minor: u32,
    /// The minor both speak: the smaller of [`VIEWER_MINOR`] and the relay's (reply layouts
    /// depend on it).
    pub minor: u32,
}

impl ViewerConn {
    /// Connects to `addr` and performs CONNECT (type COMMAND).
    pub fn connect(addr: &str) -> Result<ViewerConn, LiveError> {
        Self::connect_with(addr, None)
    }

    /// Connects to the relay of `url`: inside TLS for `tls+net://` (which needs `tls`), plain
    /// otherwise.
    pub fn connect_url(url: &LiveUrl, tls: Option<&ViewerTls>) -> Result<ViewerConn, LiveError> {
        match (url.tls, tls) {
            (false, _) => Self::connect_with(&url.addr(), None),
            (true, Some(t)) => Self::connect_with(&url.addr(), Some((t, &url.host))),
            (true, None) => Err(LiveError::Connect(
                url.addr(),
                std::io::Error::other("a tls+net:// URL needs --ca"),
            )),
        }
    }

    /// Connects to `addr` (inside TLS with `tls`: the settings and the relay's name) and
    /// performs CONNECT (type COMMAND).
    pub fn connect_with(
        addr: &str,
        tls: Option<(&ViewerTls, &str)>,
    ) -> Result<ViewerConn, LiveError> {
        let io = |e| LiveError::Connect(addr.to_owned(), e);
        let addrs: Vec<_> = addr.to_socket_addrs().map_err(io)?.collect();
        let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address");
        let mut stream = None;
        for a in addrs {
            match TcpStream::connect_timeout(&a, Duration::from_secs(10)) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = e,
            }
        }
        let stream = stream.ok_or_else(|| io(last))?;
        stream.set_read_timeout(Some(REPLY_TIMEOUT)).map_err(io)?;
        stream.set_nodelay(true).map_err(io)?;
        let stream = match tls {
            None => Transport::Plain(stream),
            Some((t, host)) => {
                let session = t.session(host).map_err(|e| io(std::io::Error::other(e)))?;
                let mut s = rustls::StreamOwned::new(session, stream);
                // Complete the handshake here so a refused certificate reads as a refusal.
                while s.conn.is_handshaking() {
                    s.conn.complete_io(&mut s.sock).map_err(|e| {
                        LiveError::Refused(format!("TLS handshake with {addr}: {e}"))
                    })?;
                }
                Transport::Tls(Box::new(s))
            }
        };
        let mut conn = ViewerConn {
            stream,
            out: Vec::new(),
            buf: Vec::new(),
            viewer_session_id: ViewerSessionId::UNSET,
            relay_minor: 0,
            minor: VIEWER_MINOR,
        };
        let reply = conn.call(&ViewerRequest::Connect(ConnectRequest {
            viewer_session_id: ViewerSessionId::UNSET,
            major: PROTOCOL_MAJOR,
            minor: VIEWER_MINOR,
            conn_type: ConnectionType::Command,
        }))?;
        let ViewerReply::Connect(c) = reply else {
            return Err(LiveError::Protocol(
                "CONNECT answered with something else".into(),
            ));
        };
        if c.major != PROTOCOL_MAJOR {
            return Err(LiveError::Protocol(format!(
                "relay speaks live protocol {}.{}, this viewer {PROTOCOL_MAJOR}.{VIEWER_MINOR}",
                c.major, c.minor
            )));
        }
        conn.viewer_session_id = c.viewer_session_id;
        conn.relay_minor = c.minor;
        conn.minor = c.minor.min(VIEWER_MINOR);
        Ok(conn)
    }

    /// CREATE_SESSION (the viewer session that holds attachments).
    pub fn create_viewer_session(&mut self) -> Result<(), LiveError> {
        match self.call(&ViewerRequest::CreateSession)? {
            ViewerReply::CreateSession(CreateSessionStatus::Ok) => Ok(()),
            other => Err(LiveError::Refused(format!("CREATE_SESSION: {other:?}"))),
        }
    }

    /// Sends `req` and reads its whole reply, which borrows the connection's buffer.
    pub fn call(&mut self, req: &ViewerRequest) -> Result<ViewerReply<'_>, LiveError> {
        self.out.clear();
        req.encode(&mut self.out);
        self.stream.write_all(&self.out).map_err(LiveError::Io)?;
        self.stream.flush().map_err(LiveError::Io)?;
        self.buf.clear();
        let cmd = req.command();
        loop {
            let needed = match decode_reply_at(cmd, self.minor, &self.buf)
                .map_err(|e| decode_err(cmd, e))?
            {
                Decoded::Done { .. } => break,
                Decoded::Incomplete { needed } => needed,
            };
            let start = self.buf.len();
            if needed <= start {
                return Err(LiveError::Protocol(format!(
                    "{cmd:?}: decoder made no progress"
                )));
            }
            self.buf.resize(needed, 0);
            let dst = self.buf.get_mut(start..).unwrap_or(&mut []);
            read_exact(&mut self.stream, dst)?;
        }
        match decode_reply_at(cmd, self.minor, &self.buf).map_err(|e| decode_err(cmd, e))? {
            Decoded::Done { msg, .. } => Ok(msg),
            Decoded::Incomplete { .. } => {
                Err(LiveError::Protocol(format!("{cmd:?}: reply incomplete")))
            }
        }
    }
}

fn decode_err(cmd: trelay_proto::lttng::live::Command, e: DecodeError) -> LiveError {
    LiveError::Protocol(format!("{cmd:?} reply: {e}"))
}

fn read_exact(s: &mut impl Read, dst: &mut [u8]) -> Result<(), LiveError> {
    s.read_exact(dst).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => LiveError::Closed,
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            LiveError::Protocol(format!("no reply within {REPLY_TIMEOUT:?}"))
        }
        _ => LiveError::Io(e),
    })
}
