//! The data port: a stream of `[32-byte header][payload]` messages, nothing sent back.
//!
//! The connection task moves each payload straight into the stream's data file (no hop to another
//! task). Small packets are received in bulk: one read takes as many as the peer already sent
//! into the connection's `Inbox`, and each is written from there with one positional vectored
//! write (payload and padding zeros together). After a packet of 16 KiB or more the connection
//! reads only the next header, and the payload goes from the socket to the file through a
//! per-connection pipe with splice(2), never entering user space. The data half of the packet's
//! index entry is recorded once its bytes are in the file. The first packet binds the connection
//! to its session; the connection's end (EOF or error) closes that session's streams once their
//! data is complete. An unknown stream, a duplicate packet or an oversized packet ends this
//! connection and aborts its session only.
//!
//! Disk full: a write that finds no space keeps the packet's bytes where they are (in the inbox
//! or the pipe), marks the session disk-full (logged once), and retries with backoff without
//! reading the socket any further, so TCP pushes back on the sender; the first write that
//! succeeds ends the episode. After `disk_full_timeout_s` the session is failed.

use super::inbox::Inbox;
use super::room::{GaveUp, Room};
use super::splice::{CopyError, Splicer};
use crate::session::{IngestError, Registry, Session, Stream};
use crate::storage::{StorageError, StorageFile};
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use trelay_proto::lttng::relayd::DataHeader;
use trelay_proto::{NetSeq, StreamId};

/// Size of the data header.
pub const HEADER_LEN: usize = trelay_proto::lttng::relayd::DATA_HEADER_LEN;
/// Size of the receive buffer.
const BUF_LEN: usize = 256 * 1024;
/// Payloads from this size on are spliced (smaller ones cost less to copy than two splices).
const SPLICE_MIN: u64 = 16 * 1024;

/// Why a data connection ended badly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// A packet for a stream the relay does not know.
    #[error("packet for unknown stream {0}")]
    UnknownStream(StreamId),
    /// A packet larger than `max_packet_size`.
    #[error("stream {0}: packet of {1} bytes exceeds the cap of {2}")]
    TooLarge(StreamId, u64, u64),
    /// A packet of another session than the connection's.
    #[error("stream {0} belongs to session {1}, this connection to session {2}")]
    OtherSession(StreamId, u64, u64),
    /// The stream's session was sent by another peer.
    #[error("stream {0} belongs to a session of peer {1}, this connection is {2}'s")]
    OtherPeer(StreamId, String, String),
    /// Another data connection writes the stream's session (or it is a trelay:// session).
    #[error("stream {0}: session {1} is written by another data connection")]
    Taken(StreamId, u64),
    /// The session failed earlier.
    #[error("session {0} failed: {1}")]
    Failed(u64, String),
    /// The stream refused the packet.
    #[error(transparent)]
    Ingest(#[from] crate::session::IngestError),
    /// The socket failed.
    #[error("connection: {0}")]
    Net(std::io::Error),
    /// A payload write failed.
    #[error("stream {0}: write failed: {1}")]
    Write(StreamId, #[source] StorageError),
    /// Waiting for disk space ended without space (see `GaveUp`).
    #[error("stream {0}: {1}")]
    DiskFull(StreamId, #[source] GaveUp),
}

/// Serves one data connection.
pub async fn handle(
    mut conn: TcpStream,
    registry: Arc<Registry>,
    shutdown: CancellationToken,
    identity: crate::identity::Peer,
) {
    let peer = conn
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into());
    let mut bound: Option<Arc<Session>> = None;
    let mut inbox = Inbox::new(BUF_LEN);
    let mut splicer = match Splicer::new(registry.telemetry.spliced_bytes.clone()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::info!("no pipe for splice ({e}): copying data packets");
            None
        }
    };
    let me = Owner {
        id: NEXT_CONNECTION.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        peer: identity.key(),
    };
    let result = serve(
        &mut conn,
        &registry,
        &shutdown,
        (&me, &mut bound),
        &mut inbox,
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

/// Where a packet's bytes come from and go.
/// Numbers data connections (the owner of a session's data side).
static NEXT_CONNECTION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Who a data connection is.
struct Owner {
    /// Its number.
    id: u64,
    /// Its peer's key (configured name, else address), as sessions record their sender.
    peer: String,
}

/// Binds the connection `me` to the session of `stream`, its first packet's: the session must
/// be its own peer's, and no other data connection may have started writing it. lttng-consumerd
/// opens a control and data connection pair per session and consumer (per-UID buffers of many
/// users share it, a snapshot gets a new pair and relay session), so one data connection per
/// relay session is what a real sender does.
fn bind(me: &Owner, stream: &Stream) -> Result<Arc<Session>, DataError> {
    let session = &stream.session;
    if session.params.peer != me.peer {
        return Err(DataError::OtherPeer(
            stream.id,
            session.params.peer.clone(),
            me.peer.clone(),
        ));
    }
    let mut st = session.lock();
    match st.data_connection {
        Some(other) if other != me.id => Err(DataError::Taken(stream.id, session.id.0)),
        _ => {
            st.data_connection = Some(me.id);
            Ok(session.clone())
        }
    }
}

struct Io<'a> {
    conn: &'a mut TcpStream,
    shutdown: &'a CancellationToken,
    inbox: &'a mut Inbox,
    splicer: &'a mut Option<Splicer>,
    /// How many bytes a read may buffer: one header after a large packet (so the next payload
    /// can be spliced), the whole inbox otherwise.
    read_limit: usize,
}

impl Io<'_> {
    /// Whether payloads can be spliced (a pipe exists and the file system took splices so far).
    fn can_splice(&self) -> bool {
        self.splicer.as_ref().is_some_and(|s| !s.disabled)
    }
}

async fn serve(
    conn: &mut TcpStream,
    registry: &Registry,
    shutdown: &CancellationToken,
    (me, bound): (&Owner, &mut Option<Arc<Session>>),
    inbox: &mut Inbox,
    splicer: &mut Option<Splicer>,
) -> Result<(), DataError> {
    let mut drain = None;
    let mut io = Io {
        conn,
        shutdown,
        inbox,
        splicer,
        read_limit: BUF_LEN,
    };
    // Shutdown: when the drain would end, the data of an index the control connection
    // acknowledged may still be on its way (the two connections drain independently): the
    // drain is extended, and ends at the first message boundary where nothing is awaited.
    let mut extended: Option<std::time::Instant> = None;
    loop {
        if let Some(started) = extended {
            if io.inbox.is_empty() {
                let awaited = bound.as_ref().is_some_and(|s| awaits_data(registry, s));
                if !awaited || started.elapsed() >= DATA_DRAIN_MAX {
                    return Ok(());
                }
                // Each read still ends after a quiet DRAIN_IDLE; the bound is DATA_DRAIN_MAX.
                drain = Some(std::time::Instant::now());
            }
        }
        let asked = std::time::Instant::now();
        let more = io
            .inbox
            .wait_first(io.conn, io.read_limit, shutdown, &mut drain)
            .await
            .map_err(DataError::Net)?;
        if !more {
            // Within the extension an end sooner than the quiet limit is the peer's EOF.
            let eof = extended.is_some() && asked.elapsed() < super::DRAIN_IDLE;
            if eof {
                return Ok(());
            }
            let started =
                *extended.get_or_insert_with(|| drain.unwrap_or_else(std::time::Instant::now));
            if shutdown.is_cancelled()
                && started.elapsed() < DATA_DRAIN_MAX
                && bound.as_ref().is_some_and(|s| awaits_data(registry, s))
            {
                continue;
            }
            return Ok(());
        }
        io.inbox
            .fill(io.conn, HEADER_LEN, io.read_limit)
            .await
            .map_err(DataError::Net)?;
        let mut header = [0u8; HEADER_LEN];
        header.copy_from_slice(
            io.inbox
                .data()
                .get(..HEADER_LEN)
                .unwrap_or(&[0; HEADER_LEN]),
        );
        io.inbox.consume(HEADER_LEN);
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
            None => *bound = Some(bind(me, &stream)?),
        }
        if let Some(why) = stream.session.lock().failed.clone() {
            return Err(DataError::Failed(stream.session.id.0, why));
        }
        let cap = registry.settings.max_packet_size;
        if total > cap {
            return Err(DataError::TooLarge(stream_id, total, cap));
        }
        let data_size = u64::from(data_size);
        write_packet(&mut io, registry, &stream, seq, data_size, total).await?;
        io.read_limit = if data_size >= SPLICE_MIN && io.can_splice() {
            HEADER_LEN
        } else {
            BUF_LEN
        };
    }
}

/// How long a data connection may keep reading once shutdown began, while its session's
/// control connection still runs or an index it received still waits for its data (twice the
/// control connection's own limit, so the data of the last index it acknowledged is read).
const DATA_DRAIN_MAX: std::time::Duration = std::time::Duration::from_secs(6);

/// Whether `session`'s data may still come: its control connection still runs (SEND_INDEX
/// may follow, for data sent before it), or an index half received waits for its data.
fn awaits_data(registry: &Registry, session: &Arc<Session>) -> bool {
    let st = session.lock();
    if !st.control_done && !st.connection_closed {
        return true;
    }
    drop(st);
    registry
        .session_streams(session)
        .iter()
        .any(|s| registry.merge.index_pending(s.id) > 0)
}

async fn write_packet(
    io: &mut Io<'_>,
    registry: &Registry,
    stream: &Arc<Stream>,
    seq: NetSeq,
    data_size: u64,
    total: u64,
) -> Result<(), DataError> {
    let room = Room {
        registry,
        session: &stream.session,
        shutdown: io.shutdown,
    };
    let id = stream.id;
    let gave_up = |e| DataError::DiskFull(id, e);
    room.hold().await.map_err(gave_up)?;
    let mut attempt = 0;
    let slot = loop {
        match stream.begin_packet(seq, data_size, total) {
            Ok(slot) => break slot,
            Err(IngestError::Storage(_, full)) if full.is_no_space() => {
                room.wait(full, attempt).await.map_err(gave_up)?;
                attempt += 1;
            }
            Err(e) => return Err(e.into()),
        }
    };
    let copied = copy_payload(io, &room, id, &slot.file, slot.offset, data_size, total).await;
    if let Err(e) = copied {
        stream.abort_packet(&slot);
        return Err(e);
    }
    let fx = stream.end_packet(seq, slot, total)?;
    let session = &stream.session;
    session.counters.packet(total);
    stream.packet_received();
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

/// Moves the `data_size` payload bytes into `file` at `off`, followed by the padding zeros up to
/// `total`.
async fn copy_payload(
    io: &mut Io<'_>,
    room: &Room<'_>,
    id: StreamId,
    file: &StorageFile,
    mut off: u64,
    data_size: u64,
    total: u64,
) -> Result<(), DataError> {
    let padding = total - data_size;
    let buffered = (io.inbox.len() as u64).min(data_size);
    let mut left = data_size - buffered;
    let whole = usize::try_from(data_size)
        .ok()
        .filter(|n| *n <= io.inbox.capacity());
    let splice = io.can_splice() && left >= SPLICE_MIN;
    if let (Some(n), false) = (whole, splice) {
        // The whole payload fits the inbox: gather it there, one write with its padding.
        io.inbox
            .fill(io.conn, n, BUF_LEN)
            .await
            .map_err(DataError::Net)?;
        let payload = io.inbox.data().get(..n).unwrap_or_default();
        put(room, id, || file.write_padded(off, payload, padding)).await?;
        io.inbox.consume(n);
        return Ok(());
    }
    // Large: what is buffered first, then the rest spliced or streamed through the inbox.
    if buffered > 0 {
        let head = io.inbox.data().get(..buffered as usize).unwrap_or_default();
        put(room, id, || file.write_all_at(head, off)).await?;
    }
    io.inbox.consume(buffered as usize);
    off += buffered;
    if let Some(sp) = io.splicer.as_mut().filter(|_| splice) {
        let mut attempt = 0;
        loop {
            match sp.copy(io.conn, file, &mut off, &mut left).await {
                Ok(()) => break,
                Err(CopyError::Net(e)) => return Err(DataError::Net(e)),
                Err(CopyError::Storage(e)) if e.is_no_space() => {
                    room.wait(e, attempt)
                        .await
                        .map_err(|e| DataError::DiskFull(id, e))?;
                    attempt += 1;
                }
                Err(CopyError::Storage(e)) => return Err(DataError::Write(id, e)),
            }
        }
        room.cleared();
    }
    while left > 0 {
        let n = usize::try_from(left.min(BUF_LEN as u64)).unwrap_or(BUF_LEN);
        io.inbox.fill(io.conn, n, n).await.map_err(DataError::Net)?;
        let chunk = io.inbox.data().get(..n).unwrap_or_default();
        put(room, id, || file.write_all_at(chunk, off)).await?;
        io.inbox.consume(n);
        off += n as u64;
        left -= n as u64;
    }
    put(room, id, || file.write_zeros(off, padding)).await
}

/// Runs one payload write until it succeeds, waiting while the disk is full.
async fn put(
    room: &Room<'_>,
    id: StreamId,
    op: impl FnMut() -> Result<(), StorageError>,
) -> Result<(), DataError> {
    room.write(op, |e| if e.is_no_space() { Ok(e) } else { Err(e) })
        .await
        .map_err(|e| DataError::DiskFull(id, e))?
        .map_err(|e| DataError::Write(id, e))
}
