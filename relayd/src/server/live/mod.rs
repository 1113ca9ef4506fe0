//! The live (viewer) port: one task per viewer connection, driving a [`Viewer`] state machine
//! over the registry.
//!
//! The loop reads one request (16-byte header, then the command's fixed payload; the header's
//! `data_size` must match it), lets the state machine decide, and writes the reply: the fixed
//! part, then file bytes with sendfile (`io`). No registry or stream lock is held while the
//! socket is read or written. A viewer connection ends on EOF, on a protocol error (logged), on
//! the idle timeout, or at shutdown; its attachments go with it.
//!
//! The same loop serves the TLS live port (`[tls] live_addr`) over a [`io::LiveSocket`] that
//! copies file bytes instead of sendfile; there the verified client certificate's name joins
//! the address in the live ACL ([`crate::identity::Gate::viewer_scope`]).

mod io;

pub use io::LiveSocket;

use crate::live::{LiveSettings, Step, Viewer};
use crate::session::Registry;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use trelay_proto::lttng::live::request::decode_payload;
use trelay_proto::lttng::live::{CommandHeader, HEADER_LEN};
use trelay_proto::{Decoded, ViewerSessionId};

/// What the live connections share.
#[derive(Debug)]
pub struct Hub {
    registry: Arc<Registry>,
    settings: LiveSettings,
    next_viewer: AtomicU64,
    connections: AtomicU64,
}

impl Hub {
    /// The live side of `registry`.
    pub fn new(registry: Arc<Registry>) -> Self {
        Hub {
            settings: registry.settings.live.clone(),
            registry,
            next_viewer: AtomicU64::new(1),
            connections: AtomicU64::new(0),
        }
    }

    /// Viewer connections open right now.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }
}

/// Why a viewer connection ended early.
#[derive(Debug, thiserror::Error)]
enum LiveError {
    #[error("connection lost: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Protocol(String),
}

/// Serves one live connection of the plain live port.
pub async fn handle(
    conn: TcpStream,
    hub: Arc<Hub>,
    shutdown: CancellationToken,
    identity: crate::identity::Peer,
) {
    let peer = conn
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into());
    handle_on(conn, peer, hub, shutdown, identity, None).await
}

/// Serves one live connection over any transport; `certificate` is the verified client
/// certificate name (TLS live port).
pub async fn handle_on(
    mut conn: impl LiveSocket,
    peer: String,
    hub: Arc<Hub>,
    shutdown: CancellationToken,
    identity: crate::identity::Peer,
    certificate: Option<String>,
) {
    let id = ViewerSessionId(hub.next_viewer.fetch_add(1, Ordering::Relaxed));
    hub.connections.fetch_add(1, Ordering::Relaxed);
    let scope = hub
        .registry
        .gate
        .viewer_scope(identity.ip, certificate.as_deref());
    let mut viewer: Viewer<Registry> =
        Viewer::new(id, peer.clone(), hub.settings.clone(), Instant::now()).with_scope(scope);
    let result = serve(&mut conn, &hub.registry, &mut viewer, &shutdown).await;
    hub.connections.fetch_sub(1, Ordering::Relaxed);
    let attached = viewer.attached_sessions();
    match result {
        Ok(()) => tracing::debug!(%peer, viewer = %id, ?attached, "viewer connection closed"),
        Err(LiveError::Io(e)) => {
            tracing::info!(%peer, viewer = %id, ?attached, "viewer connection lost: {e}")
        }
        Err(LiveError::Protocol(why)) => {
            tracing::warn!(%peer, viewer = %id, ?attached, "viewer connection closed: {why}")
        }
    }
}

/// Reads exactly `buf.len()` bytes; `Ok(false)` on a clean EOF before the first byte.
async fn read_full(conn: &mut impl LiveSocket, buf: &mut [u8]) -> std::io::Result<bool> {
    let mut got = 0;
    while let Some(rest) = buf.get_mut(got..).filter(|r| !r.is_empty()) {
        let n = conn.read(rest).await?;
        if n == 0 {
            if got == 0 {
                return Ok(false);
            }
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        got += n;
    }
    Ok(true)
}

async fn serve(
    conn: &mut impl LiveSocket,
    registry: &Registry,
    viewer: &mut Viewer<Registry>,
    shutdown: &CancellationToken,
) -> Result<(), LiveError> {
    let mut head = [0u8; HEADER_LEN];
    let mut payload = [0u8; 32];
    let mut out = Vec::with_capacity(4096);
    let mut copy_buf = Vec::new();
    // The first command must come within the handshake deadline.
    let mut handshake = Some(Instant::now() + registry.gate.limits.handshake_timeout());
    loop {
        let first = handshake.take();
        let idle = match (viewer.idle_deadline(), first) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let read = async {
            let n = read_full(conn, &mut head).await?;
            if !n {
                return Ok(None);
            }
            let Decoded::Done { msg: header, .. } = CommandHeader::decode(&head) else {
                return Ok(None);
            };
            let body = match header.command() {
                Ok(cmd) => {
                    let p = payload
                        .get_mut(..cmd.payload_len())
                        .ok_or_else(|| std::io::Error::other("payload too large"))?;
                    if !p.is_empty() && !read_full(conn, p).await? {
                        return Err(std::io::ErrorKind::UnexpectedEof.into());
                    }
                    decode_payload(cmd, p)
                }
                Err(e) => Err(e),
            };
            Ok::<_, std::io::Error>(Some((header, body)))
        };
        let sleep = async {
            match idle {
                Some(t) => tokio::time::sleep_until(t.into()).await,
                None => std::future::pending().await,
            }
        };
        let got = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = sleep => {
                if first.is_some() {
                    // Nothing within the handshake deadline: a refusal, logged under a budget.
                    let r = &registry.gate.refusals;
                    r.count("live", "handshake_timeout");
                    if let Some(skipped) = r.admit_line("live_handshake_timeout") {
                        tracing::warn!(skipped, "viewer connection closed: nothing received within the handshake deadline (handshake_timeout_ms)");
                    }
                    return Ok(());
                }
                return Err(LiveError::Protocol("idle timeout".into()));
            }
            r = read => r?,
        };
        let Some((header, body)) = got else {
            return Ok(());
        };
        let req = match body {
            Ok(req) => req,
            Err(e) => {
                let step = viewer.handle_undecodable(header.cmd, &e, Instant::now(), &mut out);
                finish(conn, &registry.telemetry, step, &mut out, &mut copy_buf).await?;
                continue;
            }
        };
        let mut may_hold = true;
        loop {
            let step = viewer.handle(registry, req, Instant::now(), may_hold, &mut out);
            if let Step::Hold {
                stream,
                generation,
                until,
            } = step
            {
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    _ = stream.frontier.changed_since(generation, until.into()) => {}
                }
                may_hold = false;
                continue;
            }
            finish(conn, &registry.telemetry, step, &mut out, &mut copy_buf).await?;
            break;
        }
    }
}

/// Writes a step's reply; closes on [`Step::Close`].
async fn finish(
    conn: &mut impl LiveSocket,
    telemetry: &crate::telemetry::Telemetry,
    step: Step<Registry>,
    out: &mut [u8],
    copy_buf: &mut Vec<u8>,
) -> Result<(), LiveError> {
    match step {
        Step::Reply(slice) => {
            conn.send_all(out, slice.is_some()).await?;
            if let Some(s) = slice {
                conn.send_file(&s.file, s.offset, s.len, copy_buf).await?;
                telemetry.live_sent_bytes.increment(s.len);
            }
            Ok(())
        }
        Step::Close(why) => {
            if !out.is_empty() {
                let _ = conn.send_all(out, false).await;
            }
            Err(LiveError::Protocol(why))
        }
        Step::Hold { .. } => Ok(()),
    }
}
