//! trelay:// on the control port: a connection that starts with [`trelay_proto::trelay::MAGIC`]
//! is served here instead of by the LTTng control handler.
//!
//! The loop reads frames into one fixed buffer, feeds them to the assembler and hands each event
//! to the connection state (`conn`); packet data is written from that buffer to the stream
//! files (`batch`) without another copy. A dropped connection leaves its session open for
//! `resume_timeout_s`: the sender reconnects, opens the same session identity again, learns
//! where each stream's data ends, and resends from there.

mod batch;
mod conn;
mod open;

use super::inbox::Inbox;
use crate::session::Registry;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use trelay_proto::trelay::assembler::Assembler;
use trelay_proto::trelay::frame::{self, HEADER_LEN, HELLO_MAX};
use trelay_proto::trelay::hello::{self, Hello};
use trelay_proto::trelay::message::ErrorFrame;
use trelay_proto::trelay::MAGIC;
use trelay_proto::Decoded;

/// A connection trelay:// runs over: plain TCP (whose payloads can be spliced) or TLS.
pub trait Link: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {
    /// The TCP socket itself, when the bytes on it are the protocol's (no TLS).
    fn tcp(&mut self) -> Option<&mut TcpStream>;
}

impl Link for TcpStream {
    fn tcp(&mut self) -> Option<&mut TcpStream> {
        Some(self)
    }
}

impl Link for tokio_rustls::server::TlsStream<TcpStream> {
    fn tcp(&mut self) -> Option<&mut TcpStream> {
        None
    }
}

/// Largest frame payload the relay accepts.
pub const MAX_FRAME: u32 = 1 << 20;

/// How long the peer may stall in the middle of a frame.
const FRAME_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a trelay:// connection ended early.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NativeError {
    /// The socket failed.
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    /// The peer broke the protocol.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The request was refused (names, limits, unknown stream).
    #[error("refused: {0}")]
    Refused(String),
    /// The data could not be stored (the session failed, or the disk stayed full).
    #[error("storage: {0}")]
    Storage(String),
    /// A newer connection took the session over.
    #[error("superseded by a newer connection of the same session")]
    Superseded,
}

impl NativeError {
    fn code(&self) -> Option<u32> {
        match self {
            NativeError::Protocol(_) => Some(ErrorFrame::PROTOCOL),
            NativeError::Refused(_) => Some(ErrorFrame::REFUSED),
            NativeError::Storage(_) => Some(ErrorFrame::STORAGE),
            NativeError::Io(_) | NativeError::Superseded => None,
        }
    }
}

/// Serves a trelay:// connection whose first bytes (`first`, the magic included) were already
/// read by the control handler.
pub async fn serve<S: Link>(
    sock: &mut S,
    peer: String,
    first: &[u8],
    registry: &Arc<Registry>,
    shutdown: &CancellationToken,
    identity: &crate::identity::Peer,
) {
    let mut conn = conn::Conn::new(registry, shutdown, identity, peer.clone());
    let result = run(sock, first, &mut conn).await;
    let end = conn.disconnected().await;
    match result {
        Ok(()) => tracing::debug!(%peer, "trelay:// connection ended"),
        Err(NativeError::Io(e)) => {
            tracing::info!(%peer, session = ?end, "trelay:// connection lost: {e}")
        }
        Err(e) => {
            tracing::warn!(%peer, session = ?end, "trelay:// connection closed: {e}");
            if let Some(code) = e.code() {
                let mut out = Vec::new();
                let mut payload = Vec::new();
                ErrorFrame {
                    code,
                    message: e.to_string(),
                }
                .encode(&mut payload);
                frame::encode(frame::Kind::Error, frame::END, &payload, &mut out);
                let _ = sock.write_all(&out).await;
            }
        }
    }
}

/// Data frames this large that are not already buffered are spliced from the socket.
const SPLICE_MIN: u64 = 64 << 10;
/// The most one read takes from a plain TCP socket while batches carry packets of at least
/// [`SPLICE_MIN`] bytes: enough for the frames around the payloads, which stay in the socket.
const SPLICE_READ: usize = 4 << 10;

/// When the next frame is a large data frame of a packet batch whose payload has not arrived
/// yet, takes it without copying it: what is buffered goes through the assembler, the rest is
/// spliced from the socket into the stream files. Returns whether it did.
async fn spliced<S: Link>(
    sock: &mut S,
    inbox: &mut Inbox,
    asm: &mut Assembler,
    conn: &mut conn::Conn<'_>,
    splicer: &mut super::splice::Splicer,
    max: u32,
) -> Result<bool, NativeError> {
    if !conn.takes_packets() || inbox.len() < HEADER_LEN || sock.tcp().is_none() {
        return Ok(false);
    }
    let data = inbox.data();
    let (kind, flags) = (data.first().copied(), data.get(1).copied().unwrap_or(0));
    let needed = match frame::decode(data, max) {
        Ok(Decoded::Incomplete { needed }) => needed,
        _ => return Ok(false),
    };
    let len = needed.saturating_sub(HEADER_LEN) as u64;
    if kind != Some(frame::Kind::Data.to_u8()) || len < SPLICE_MIN {
        return Ok(false);
    }
    inbox.consume(HEADER_LEN);
    // The buffered head of the payload, through the assembler like any data.
    let have = inbox.len().min(len as usize);
    let head = frame::Frame {
        kind: frame::Kind::Data,
        flags: flags & !frame::END,
        payload: inbox.data().get(..have).unwrap_or_default(),
    };
    let event = asm
        .feed(head)
        .map_err(|e| NativeError::Protocol(e.to_string()))?;
    if let Some(event) = event {
        conn.handle(event, sock).await?;
    }
    inbox.consume(have);
    let Some(tcp) = sock.tcp() else {
        return Err(NativeError::Protocol("splice without a socket".into()));
    };
    conn.splice(tcp, splicer, len - have as u64).await?;
    // The frame's end, with its flags.
    let tail = frame::Frame {
        kind: frame::Kind::Data,
        flags,
        payload: &[],
    };
    let event = asm
        .feed(tail)
        .map_err(|e| NativeError::Protocol(e.to_string()))?;
    if let Some(event) = event {
        conn.handle(event, sock).await?;
    }
    Ok(true)
}

async fn run<S: Link>(
    sock: &mut S,
    first: &[u8],
    conn: &mut conn::Conn<'_>,
) -> Result<(), NativeError> {
    let cap = (MAX_FRAME as usize)
        .saturating_add(HEADER_LEN)
        .saturating_mul(2);
    let mut inbox = Inbox::new(cap);
    inbox.preload(first);
    inbox.fill(sock, MAGIC.len(), cap).await?;
    inbox.consume(MAGIC.len());
    let mut asm = Assembler::new();
    let mut max = HELLO_MAX;
    let mut drain = None;
    let ours = Hello {
        version: hello::VERSION,
        max_frame: MAX_FRAME,
        features: hello::FEATURE_COMMITTED_ACKS | hello::FEATURE_TRACE_FORMAT,
    };
    let mut splicer =
        super::splice::Splicer::new(conn.registry.telemetry.spliced_bytes.clone()).ok();
    'frames: loop {
        let splicing = splicer.as_ref().is_some_and(|s| !s.disabled) && sock.tcp().is_some();
        let limit = if splicing && conn.large_packets() {
            SPLICE_READ
        } else {
            cap
        };
        if !inbox
            .wait_first(sock, limit, conn.shutdown, &mut drain)
            .await?
        {
            return conn.eof();
        }
        if let Some(sp) = splicer.as_mut().filter(|s| !s.disabled) {
            if spliced(sock, &mut inbox, &mut asm, conn, sp, max).await? {
                continue;
            }
        }
        let used = loop {
            match frame::decode(inbox.data(), max) {
                Ok(Decoded::Done { used, .. }) => break used,
                Ok(Decoded::Incomplete { needed }) => {
                    // Only a frame header's worth at first, so a large data frame can still be
                    // spliced once its header is known.
                    let header_only = splicing && inbox.len() < HEADER_LEN;
                    let min = if header_only { HEADER_LEN } else { needed };
                    tokio::time::timeout(FRAME_TIMEOUT, inbox.fill(sock, min, limit))
                        .await
                        .map_err(|_| NativeError::Protocol("peer stalled in a frame".into()))??;
                    if header_only {
                        continue 'frames;
                    }
                }
                Err(e) => return Err(NativeError::Protocol(e.to_string())),
            }
        };
        let Ok(Decoded::Done { msg: f, .. }) = frame::decode(inbox.data(), max) else {
            return Err(NativeError::Protocol("frame vanished".into()));
        };
        let event = asm
            .feed(f)
            .map_err(|e| NativeError::Protocol(e.to_string()))?;
        if let Some(event) = event {
            if let trelay_proto::trelay::assembler::Event::Hello(h) = &event {
                if h.version != hello::VERSION {
                    return Err(NativeError::Protocol(format!(
                        "protocol version {} (this relay speaks {})",
                        h.version,
                        hello::VERSION
                    )));
                }
                max = ours.agree(h);
                conn.set_max_frame(max);
                let mut out = Vec::new();
                Hello {
                    max_frame: max,
                    ..ours
                }
                .encode(&mut out);
                sock.write_all(&out).await?;
            } else if conn.handle(event, sock).await? {
                return Ok(());
            }
        }
        inbox.consume(used);
    }
}
