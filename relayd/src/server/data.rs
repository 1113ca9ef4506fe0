//! The data port: a stream of `[32-byte header][payload]` messages, nothing sent back.
//!
//! The connection task moves each payload straight into the stream's data file (no hop to another
//! task): splice(2) through a per-connection pipe for payloads of 16 KiB and more, positional
//! writes from one reused buffer otherwise; it appends the padding zeros, then records the data
//! half of the packet's index entry. The first packet binds the connection to its
//! session; the connection's end (EOF or error) closes that session's streams once their data is
//! complete. An unknown stream, a duplicate packet or an oversized packet ends this connection and
//! aborts its session only.

use super::splice::Splicer;
use crate::session::{Registry, Session, Stream};
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use trelay_proto::lttng::relayd::DataHeader;
use trelay_proto::{NetSeq, StreamId};

/// Size of the data header.
pub const HEADER_LEN: usize = trelay_proto::lttng::relayd::DATA_HEADER_LEN;
/// Size of the reused payload buffer.
const BUF_LEN: usize = 256 * 1024;
/// Payloads from this size on are spliced (smaller ones cost less to copy than two splices).
const SPLICE_MIN: u64 = 16 * 1024;

/// Why a data connection ended badly.
#[derive(Debug, thiserror::Error)]
enum DataError {
    #[error("packet for unknown stream {0}")]
    UnknownStream(StreamId),
    #[error("stream {0}: packet of {1} bytes exceeds the cap of {2}")]
    TooLarge(StreamId, u64, u64),
    #[error("stream {0} belongs to session {1}, this connection to session {2}")]
    OtherSession(StreamId, u64, u64),
    #[error("session {0} failed: {1}")]
    Failed(u64, String),
    #[error(transparent)]
    Ingest(#[from] crate::session::IngestError),
    #[error("connection: {0}")]
    Net(std::io::Error),
    #[error("stream {0}: write failed: {1}")]
    Write(StreamId, std::io::Error),
}

/// Serves one data connection.
pub async fn handle(mut conn: TcpStream, registry: Arc<Registry>, shutdown: CancellationToken) {
    let peer = conn
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into());
    let mut bound: Option<Arc<Session>> = None;
    let mut buf = vec![0u8; BUF_LEN];
    let mut splicer = match Splicer::new() {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::info!("no pipe for splice ({e}): copying data packets");
            None
        }
    };
    let result = serve(
        &mut conn,
        &registry,
        &shutdown,
        &mut bound,
        &mut buf,
        &mut splicer,
    )
    .await;
    let aborted = match &result {
        Ok(()) => false,
        Err(e) => {
            tracing::error!(%peer, "data connection closed: {e}");
            true
        }
    };
    if let Some(session) = bound {
        if !shutdown.is_cancelled() {
            registry.close_session(&session, aborted, true);
        }
    }
}

async fn serve(
    conn: &mut TcpStream,
    registry: &Registry,
    shutdown: &CancellationToken,
    bound: &mut Option<Arc<Session>>,
    buf: &mut [u8],
    splicer: &mut Option<Splicer>,
) -> Result<(), DataError> {
    let mut header = [0u8; HEADER_LEN];
    let mut drain = None;
    loop {
        let first = super::read_next(conn, &mut header, shutdown, &mut drain)
            .await
            .map_err(DataError::Net)?;
        if first == 0 {
            return Ok(());
        }
        if first < HEADER_LEN {
            let rest = header.get_mut(first..).unwrap_or(&mut []);
            conn.read_exact(rest).await.map_err(DataError::Net)?;
        }
        let hdr = DataHeader::from_bytes(&header);
        let (stream_id, seq, data_size) = (hdr.stream_id, hdr.net_seq, hdr.data_size);
        let total = hdr.total_len();
        let Some(stream) = registry.stream(stream_id) else {
            return Err(DataError::UnknownStream(stream_id));
        };
        match bound {
            Some(s) if !Arc::ptr_eq(s, &stream.session) => {
                return Err(DataError::OtherSession(
                    stream_id,
                    stream.session.id.0,
                    s.id.0,
                ));
            }
            Some(_) => {}
            None => *bound = Some(stream.session.clone()),
        }
        if let Some(why) = stream.session.lock().failed.clone() {
            return Err(DataError::Failed(stream.session.id.0, why));
        }
        let cap = registry.settings.max_packet_size;
        if total > cap {
            return Err(DataError::TooLarge(stream_id, total, cap));
        }
        write_packet(
            conn,
            registry,
            &stream,
            seq,
            u64::from(data_size),
            total,
            buf,
            splicer,
        )
        .await?;
    }
}

#[allow(clippy::too_many_arguments)]
async fn write_packet(
    conn: &mut TcpStream,
    registry: &Registry,
    stream: &Arc<Stream>,
    seq: NetSeq,
    data_size: u64,
    total: u64,
    buf: &mut [u8],
    splicer: &mut Option<Splicer>,
) -> Result<(), DataError> {
    let slot = stream.begin_packet(seq, data_size, total)?;
    let mut off = slot.offset;
    let mut left = data_size;
    let copied: Result<(), DataError> = async {
        if let Some(sp) = splicer.as_mut().filter(|_| left >= SPLICE_MIN) {
            sp.copy(conn, &slot.file, off, left, buf)
                .await
                .map_err(DataError::Net)?;
            off += left;
            left = 0;
        }
        while left > 0 {
            let n = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
            let chunk = buf.get_mut(..n).unwrap_or_default();
            conn.read_exact(chunk).await.map_err(DataError::Net)?;
            slot.file
                .write_all_at(chunk, off)
                .map_err(|e| DataError::Write(stream.id, e))?;
            off += n as u64;
            left -= n as u64;
        }
        crate::session::files::write_zeros(&slot.file, off, total - data_size)
            .map_err(|e| DataError::Write(stream.id, e))
    }
    .await;
    if let Err(e) = copied {
        stream.abort_packet(&slot);
        return Err(e);
    }
    let fx = stream.end_packet(seq, slot, total)?;
    let session = &stream.session;
    if fx.first_packet {
        session.lock().new_streams = true;
    }
    if fx.rotated || (fx.completed && session.params.live_timer > 0) {
        registry.request_commit(session, [stream.clone()]);
    }
    if fx.close_ready {
        let aborted = session.lock().aborted;
        registry.try_close_stream(stream, aborted);
    }
    Ok(())
}
