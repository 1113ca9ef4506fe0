//! One trelay:// connection from the sender's side: the hello exchange, header messages with
//! their data frames, and a reader task that takes the relay's replies and acknowledgements as
//! they come (so neither side ever blocks writing while the other does).

use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

type Writer = Box<dyn AsyncWrite + Unpin + Send>;
type Reader = Box<dyn AsyncRead + Unpin + Send>;

/// TLS towards the relay: the roots that sign its certificate, and optionally this sender's
/// client certificate (`--ca`, `--cert`, `--key`).
#[derive(Clone)]
pub struct ClientTls {
    config: std::sync::Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls").finish_non_exhaustive()
    }
}

impl ClientTls {
    /// Trusts the CA certificates in `ca`; presents `cert` + `key` when both are given.
    pub fn new(
        ca: &std::path::Path,
        cert: Option<&std::path::Path>,
        key: Option<&std::path::Path>,
    ) -> Result<ClientTls, String> {
        Ok(ClientTls {
            config: crate::tls::client_config(ca, cert, key)?,
        })
    }
}
use tokio::sync::{mpsc, watch};
use trelay_proto::ctf::format::TraceFormat;
use trelay_proto::trelay::assembler::{Assembler, Event};
use trelay_proto::trelay::frame::{self, Kind, DATA_FOLLOWS, END, HEADER_LEN};
use trelay_proto::trelay::hello::{self, Hello};
use trelay_proto::trelay::message::{AckLevel, Message, Open, OpenTraced, Opened};
use trelay_proto::trelay::MAGIC;
use trelay_proto::Decoded;

/// Largest frame payload this sender accepts.
pub const MAX_FRAME: u32 = 1 << 20;

/// How long a reply may take.
const REPLY_TIMEOUT: Duration = Duration::from_secs(120);

/// Why a trelay:// exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum NativeError {
    /// The connection failed or was cut.
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    /// The relay said no.
    #[error("relay error {code}: {message}")]
    Relay {
        /// Its code.
        code: u32,
        /// Its reason.
        message: String,
    },
    /// The relay broke the protocol.
    #[error("protocol: {0}")]
    Protocol(String),
    /// No answer in time.
    #[error("no reply from the relay within {0:?}")]
    Timeout(Duration),
    /// The relay cannot take what was asked (e.g. a CTF 2 session, for an older relay).
    #[error("{0}")]
    Unsupported(String),
}

impl NativeError {
    /// Whether reconnecting may help (a cut, a stall), as opposed to a refusal.
    pub fn is_transient(&self) -> bool {
        matches!(self, NativeError::Io(_) | NativeError::Timeout(_))
    }
}

/// Acknowledged message counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Acked {
    /// Messages the relay received.
    pub received: u64,
    /// Messages whose data the relay committed.
    pub committed: u64,
}

/// A trelay:// connection.
pub struct NativeConn {
    w: Writer,
    replies: mpsc::Receiver<Result<Message, NativeError>>,
    acks: watch::Receiver<Acked>,
    reader: tokio::task::JoinHandle<()>,
    max_frame: u32,
    /// The relay's hello feature bits.
    features: u64,
    /// Messages sent and completed on this connection.
    pub sent: u64,
    out: Vec<u8>,
}

impl std::fmt::Debug for NativeConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeConn")
            .field("max_frame", &self.max_frame)
            .field("sent", &self.sent)
            .finish_non_exhaustive()
    }
}

impl Drop for NativeConn {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl NativeConn {
    /// Connects and exchanges hellos.
    pub async fn connect(addr: SocketAddr) -> Result<NativeConn, NativeError> {
        Self::connect_with(addr, None, "").await
    }

    /// Connects (over TLS with `tls`, checking the relay's certificate for `host`) and
    /// exchanges hellos. The magic goes inside TLS.
    pub async fn connect_with(
        addr: SocketAddr,
        tls: Option<&ClientTls>,
        host: &str,
    ) -> Result<NativeConn, NativeError> {
        let sock = TcpStream::connect(addr).await?;
        sock.set_nodelay(true)?;
        match tls {
            None => {
                let (r, w) = sock.into_split();
                Self::greet(Box::new(r), Box::new(w)).await
            }
            Some(t) => {
                let name = rustls::pki_types::ServerName::try_from(host.to_owned())
                    .map_err(|e| NativeError::Protocol(format!("server name {host}: {e}")))?;
                let s = tokio_rustls::TlsConnector::from(t.config.clone())
                    .connect(name, sock)
                    .await?;
                let (r, w) = tokio::io::split(s);
                Self::greet(Box::new(r), Box::new(w)).await
            }
        }
    }

    async fn greet(mut sock_r: Reader, mut sock_w: Writer) -> Result<NativeConn, NativeError> {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(&MAGIC);
        let ours = Hello {
            version: hello::VERSION,
            max_frame: MAX_FRAME,
            features: 0,
        };
        ours.encode(&mut out);
        sock_w.write_all(&out).await?;
        sock_w.flush().await?;
        let mut head = [0u8; HEADER_LEN + hello::LEN];
        tokio::time::timeout(REPLY_TIMEOUT, sock_r.read_exact(&mut head))
            .await
            .map_err(|_| NativeError::Timeout(REPLY_TIMEOUT))??;
        let theirs = match frame::decode(&head, frame::HELLO_MAX) {
            Ok(Decoded::Done { msg, .. }) if msg.kind == Kind::Hello => {
                Hello::decode(msg.payload).map_err(|e| NativeError::Protocol(e.to_string()))?
            }
            Ok(Decoded::Done { msg, .. }) if msg.kind == Kind::Error => {
                return Err(NativeError::Protocol("refused at hello".into()))
            }
            _ => return Err(NativeError::Protocol("no hello from the relay".into())),
        };
        let max_frame = ours.agree(&theirs);
        let (r, w) = (sock_r, sock_w);
        let (tx, replies) = mpsc::channel(16);
        let (ack_tx, acks) = watch::channel(Acked::default());
        let reader = tokio::spawn(read_loop(r, max_frame, tx, ack_tx));
        Ok(NativeConn {
            w,
            replies,
            acks,
            reader,
            max_frame,
            features: theirs.features,
            sent: 0,
            out: Vec::with_capacity(64 << 10),
        })
    }

    /// Opens (or resumes) the session, of trace format `format`: `OpenTraced` to a relay that
    /// announced the trace-format feature, else the plain `Open` (CTF 1.8 only: an older relay
    /// cannot be told a session is CTF 2, so that is an error before anything is sent).
    pub async fn open(&mut self, open: &Open, format: TraceFormat) -> Result<Opened, NativeError> {
        let m = if self.features & hello::FEATURE_TRACE_FORMAT != 0 {
            Message::OpenTraced(OpenTraced {
                open: open.clone(),
                trace_format: format,
            })
        } else if format == TraceFormat::Ctf1_8 {
            Message::Open(open.clone())
        } else {
            return Err(NativeError::Unsupported(format!(
                "the relay does not take {} sessions over trelay:// (its hello lacks the \
                 trace-format feature)",
                format.name()
            )));
        };
        match self.request(&m).await? {
            Message::Opened(o) => Ok(o),
            other => Err(NativeError::Protocol(format!("Open answered {other:?}"))),
        }
    }

    /// The agreed maximum frame payload.
    pub fn max_frame(&self) -> u32 {
        self.max_frame
    }

    /// What the relay acknowledged so far.
    pub fn acked(&self) -> Acked {
        *self.acks.borrow()
    }

    /// Sends a header message with no data.
    pub async fn send(&mut self, m: &Message) -> Result<(), NativeError> {
        self.send_with(m, &[]).await
    }

    /// Sends a header message followed by `data` (concatenated) in data frames.
    pub async fn send_with(&mut self, m: &Message, data: &[&[u8]]) -> Result<(), NativeError> {
        let bytes = m
            .to_bytes()
            .map_err(|e| NativeError::Protocol(e.to_string()))?;
        self.out.clear();
        let has_data = data.iter().any(|d| !d.is_empty());
        let chunks: Vec<&[u8]> = bytes.chunks(self.max_frame as usize).collect();
        for (i, c) in chunks.iter().enumerate() {
            let last = i + 1 == chunks.len();
            let flags = match (last, has_data) {
                (true, true) => DATA_FOLLOWS,
                (true, false) => END,
                _ => 0,
            };
            frame::encode(Kind::Header, flags, c, &mut self.out);
        }
        if has_data {
            // Frame headers go through the small buffer; large payloads are written from where
            // they are, not copied.
            let parts: Vec<&[u8]> = data.iter().copied().filter(|d| !d.is_empty()).collect();
            for (i, part) in parts.iter().enumerate() {
                let last_part = i + 1 == parts.len();
                let mut chunks = part.chunks(self.max_frame as usize).peekable();
                while let Some(c) = chunks.next() {
                    let end = last_part && chunks.peek().is_none();
                    frame::encode_header(
                        Kind::Data,
                        if end { END } else { 0 },
                        c.len() as u32,
                        &mut self.out,
                    );
                    if c.len() >= 16 << 10 {
                        self.w.write_all(&self.out).await?;
                        self.out.clear();
                        self.w.write_all(c).await?;
                    } else {
                        self.out.extend_from_slice(c);
                    }
                }
            }
        }
        self.w.write_all(&self.out).await?;
        self.w.flush().await?;
        self.out.clear();
        self.sent += 1;
        Ok(())
    }

    /// The relay's next header message (a reply).
    pub async fn reply(&mut self) -> Result<Message, NativeError> {
        match tokio::time::timeout(REPLY_TIMEOUT, self.replies.recv()).await {
            Err(_) => Err(NativeError::Timeout(REPLY_TIMEOUT)),
            Ok(None) => Err(NativeError::Io(std::io::ErrorKind::UnexpectedEof.into())),
            Ok(Some(r)) => r,
        }
    }

    /// Sends `m` and waits for the relay's reply.
    pub async fn request(&mut self, m: &Message) -> Result<Message, NativeError> {
        self.send(m).await?;
        self.reply().await
    }

    /// Waits until messages up to `upto` are acknowledged at `level` (or the reader ends).
    pub async fn wait_acked(&mut self, level: AckLevel, upto: u64) -> Result<(), NativeError> {
        let reached = |a: &Acked| match level {
            AckLevel::Received => a.received.max(a.committed) >= upto,
            AckLevel::Committed => a.committed >= upto,
        };
        let wait = self.acks.wait_for(reached);
        match tokio::time::timeout(REPLY_TIMEOUT, wait).await {
            Err(_) => Err(NativeError::Timeout(REPLY_TIMEOUT)),
            Ok(Ok(_)) => Ok(()),
            // The reader ended: its error (if any) waits in the reply channel.
            Ok(Err(_)) => match self.replies.try_recv() {
                Ok(Err(e)) => Err(e),
                _ => Err(NativeError::Io(std::io::ErrorKind::UnexpectedEof.into())),
            },
        }
    }
}

async fn read_loop(
    mut r: Reader,
    max_frame: u32,
    replies: mpsc::Sender<Result<Message, NativeError>>,
    acks: watch::Sender<Acked>,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(64 << 10);
    let mut asm = Assembler::new();
    // The relay's hello was consumed by `connect`: the assembler starts past it.
    let hello = {
        let mut h = Vec::new();
        Hello {
            version: hello::VERSION,
            max_frame,
            features: 0,
        }
        .encode(&mut h);
        h
    };
    if let Ok(Decoded::Done { msg, .. }) = frame::decode(&hello, frame::HELLO_MAX) {
        let _ = asm.feed(msg);
    }
    let mut tmp = vec![0u8; 64 << 10];
    loop {
        let mut used_total = 0;
        loop {
            let rest = buf.get(used_total..).unwrap_or_default();
            match frame::decode(rest, max_frame) {
                Ok(Decoded::Done { msg, used }) => {
                    used_total += used;
                    match asm.feed(msg) {
                        Ok(Some(Event::Header { msg, .. })) => {
                            if replies.send(Ok(msg)).await.is_err() {
                                return;
                            }
                        }
                        Ok(Some(Event::Ack(a))) => acks.send_modify(|x| match a.level {
                            AckLevel::Received => x.received = x.received.max(a.upto),
                            AckLevel::Committed => x.committed = x.committed.max(a.upto),
                        }),
                        Ok(Some(Event::Error(e))) => {
                            let _ = replies
                                .send(Err(NativeError::Relay {
                                    code: e.code,
                                    message: e.message,
                                }))
                                .await;
                            return;
                        }
                        Ok(_) => {}
                        Err(e) => {
                            let _ = replies
                                .send(Err(NativeError::Protocol(e.to_string())))
                                .await;
                            return;
                        }
                    }
                }
                Ok(Decoded::Incomplete { .. }) => break,
                Err(e) => {
                    let _ = replies
                        .send(Err(NativeError::Protocol(e.to_string())))
                        .await;
                    return;
                }
            }
        }
        buf.drain(..used_total);
        match r.read(&mut tmp).await {
            Ok(0) => {
                let _ = replies
                    .send(Err(NativeError::Io(
                        std::io::ErrorKind::UnexpectedEof.into(),
                    )))
                    .await;
                return;
            }
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
            Err(e) => {
                let _ = replies.send(Err(NativeError::Io(e))).await;
                return;
            }
        }
    }
}
