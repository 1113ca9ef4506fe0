//! `send --url trelay://…`: ship a finished local trace over trelay://, resuming after cuts.
//!
//! The plan holds per stream where its packets are (its index file, or its packet headers) and
//! per trace its metadata; packets are read again lazily at every pass, so memory does not grow
//! with the trace. Each pass connects, opens the session under
//! the same identity, learns from the relay where each stream's data ends, and sends the rest:
//! metadata first, then packets in `timestamp_begin` order, batched per stream. A pass that
//! loses its connection is retried with exponential backoff until `retry_for` runs out; the
//! relay drops what it already has, so nothing is written twice. The command succeeds once the
//! relay acknowledged the session's close at the committed level.

use super::client::{NativeConn, NativeError};
use crate::ship::send::names_for;
use crate::trace::metadata::{read_tsdl, trace_format_of, word_size};
use crate::trace::{walk, PacketSource, TraceError};
use crate::url::RelayUrl;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use trelay_proto::ctf::index::IndexEntry;
use trelay_proto::trelay::message::{
    AckLevel, AddStream, Message, Open, OpenTraced, PacketMeta, Packets, MAX_BATCH,
};

/// Options of [`send`].
#[derive(Debug, Clone)]
pub struct NativeSendOptions {
    /// The local trace.
    pub dir: PathBuf,
    /// The relay (a `trelay://` URL).
    pub url: RelayUrl,
    /// Session name (default: the trace's).
    pub session: Option<String>,
    /// Hostname (default: the trace's).
    pub hostname: Option<String>,
    /// Live timer in µs (0: not live).
    pub live_timer_us: u32,
    /// The guarantee to wait for.
    pub ack: AckLevel,
    /// How long to keep reconnecting after a cut (or before the relay first answers).
    pub retry_for: Duration,
    /// Packet bytes per batch.
    pub batch_bytes: usize,
    /// Print a line on standard error at each reconnect.
    pub progress: bool,
    /// TLS towards the relay (its `[tls]` port), when set.
    pub tls: Option<super::client::ClientTls>,
}

impl NativeSendOptions {
    /// Defaults for everything but the trace and the relay.
    pub fn new(dir: PathBuf, url: RelayUrl) -> Self {
        NativeSendOptions {
            dir,
            url,
            session: None,
            hostname: None,
            live_timer_us: 0,
            ack: AckLevel::Committed,
            retry_for: Duration::from_secs(300),
            batch_bytes: 1 << 20,
            progress: true,
            tls: None,
        }
    }
}

/// Why [`send`] failed.
#[derive(Debug, thiserror::Error)]
pub enum NativeSendError {
    /// Reading the local trace failed.
    #[error(transparent)]
    Trace(#[from] TraceError),
    /// The directory holds no trace.
    #[error("{0}: no trace found")]
    NoTrace(PathBuf),
    /// The relay refused, or stayed unreachable past `retry_for`.
    #[error(transparent)]
    Relay(#[from] NativeError),
    /// The relay address does not resolve.
    #[error("cannot resolve {0}")]
    Resolve(String),
}

/// What one stream shipped.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StreamReport {
    /// Trace directory.
    pub path: String,
    /// Stream name.
    pub name: String,
    /// Packets in the local stream.
    pub packets: u64,
    /// Packets the relay acknowledged (at the chosen level).
    pub acknowledged: u64,
}

/// What [`send`] did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NativeReport {
    /// Session directory on the relay.
    pub relay_path: String,
    /// Acknowledgement level.
    pub ack: String,
    /// Per stream.
    pub streams: Vec<StreamReport>,
    /// Packets sent over all passes (resends included).
    pub packets_sent: u64,
    /// Packet bytes sent over all passes.
    pub bytes_sent: u64,
    /// Connections lost and made again.
    pub reconnects: u32,
    /// Wall-clock seconds.
    pub seconds: f64,
}

struct PlanStream {
    trace: usize,
    name: String,
    file: walk::StreamFile,
    word: trelay_proto::ctf::packet::WordSize,
    data: std::fs::File,
    /// Packets in the local stream.
    packets: u64,
}

struct PlanTrace {
    path: String,
    metadata: Vec<u8>,
}

/// What to send: per stream where its packets are (read again, lazily, at every pass), per
/// trace its metadata. Memory does not grow with the trace's length.
struct Plan {
    traces: Vec<PlanTrace>,
    streams: Vec<PlanStream>,
}

fn plan(dir: &std::path::Path) -> Result<(Plan, Vec<walk::TraceDir>), NativeSendError> {
    let dirs = walk::walk(dir)?;
    if dirs.is_empty() {
        return Err(NativeSendError::NoTrace(dir.to_path_buf()));
    }
    let mut traces = Vec::new();
    let mut streams = Vec::new();
    for (t, d) in dirs.iter().enumerate() {
        let tsdl = read_tsdl(&d.metadata).unwrap_or_default();
        let word = word_size(&tsdl);
        let metadata = std::fs::read(&d.metadata).map_err(|e| TraceError::io(&d.metadata, e))?;
        traces.push(PlanTrace {
            path: d.relay_path.clone(),
            metadata,
        });
        for f in &d.streams {
            let mut src = PacketSource::open(f, word, false)?;
            let mut packets = 0u64;
            while src.next_packet()?.is_some() {
                packets += 1;
            }
            let data = std::fs::File::open(&f.data).map_err(|e| TraceError::io(&f.data, e))?;
            streams.push(PlanStream {
                trace: t,
                name: f.name.clone(),
                file: f.clone(),
                word,
                data,
                packets,
            });
        }
    }
    Ok((Plan { traces, streams }, dirs))
}

fn local(e: TraceError) -> NativeError {
    NativeError::Protocol(format!("local trace: {e}"))
}

fn identity() -> [u8; 16] {
    let mut id = [0u8; 16];
    if let Ok(f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact_at(&mut id, 0);
    }
    if id == [0; 16] {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        id[..16].copy_from_slice(&(now ^ u128::from(std::process::id())).to_be_bytes());
    }
    id
}

/// Ships the trace under `opts.dir` to a trelay:// relay, resuming after cuts.
pub async fn send(opts: &NativeSendOptions) -> Result<NativeReport, NativeSendError> {
    let start = Instant::now();
    let (plan, dirs) = plan(&opts.dir)?;
    let (name, hostname) = names_for(
        &dirs,
        &opts.dir,
        opts.session.as_deref(),
        opts.hostname.as_deref(),
    );
    let creation_time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // The format of the session's traces: the first metadata file's first byte tells.
    let trace_format = dirs
        .iter()
        .find_map(|d| trace_format_of(&d.metadata))
        .unwrap_or_default();
    let open = OpenTraced {
        open: Open {
            session: identity(),
            name,
            hostname,
            live_timer_us: opts.live_timer_us,
            creation_time,
            ack: opts.ack,
        },
        trace_format,
    };
    let mut totals = Totals::default();
    let mut backoff = Duration::from_millis(100);
    let deadline = start + opts.retry_for;
    loop {
        match pass(opts, &plan, &open, &mut totals).await {
            Ok(relay_path) => {
                let streams = plan
                    .streams
                    .iter()
                    .map(|s| StreamReport {
                        path: plan.traces[s.trace].path.clone(),
                        name: s.name.clone(),
                        packets: s.packets,
                        acknowledged: s.packets,
                    })
                    .collect();
                return Ok(NativeReport {
                    relay_path,
                    ack: format!("{:?}", opts.ack).to_lowercase(),
                    streams,
                    packets_sent: totals.packets,
                    bytes_sent: totals.bytes,
                    reconnects: totals.reconnects,
                    seconds: start.elapsed().as_secs_f64(),
                });
            }
            Err(e) if e.is_transient() && Instant::now() + backoff < deadline => {
                totals.reconnects += 1;
                if opts.progress {
                    eprintln!(
                        "trelay-consumer: {e}; reconnecting in {:.1} s ({} packets sent so far)",
                        backoff.as_secs_f64(),
                        totals.packets
                    );
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

#[derive(Debug, Default)]
struct Totals {
    packets: u64,
    bytes: u64,
    reconnects: u32,
}

/// How many received-level acks may be outstanding.
const WINDOW: u64 = 64;
/// Committed-level: a commit every this many packet bytes.
const COMMIT_EVERY: u64 = 16 << 20;

/// One connection's worth of sending; returns the relay path once the close is acknowledged.
async fn pass(
    opts: &NativeSendOptions,
    plan: &Plan,
    open: &OpenTraced,
    totals: &mut Totals,
) -> Result<String, NativeError> {
    let addr = tokio::net::lookup_host((opts.url.host.as_str(), opts.url.control_port))
        .await?
        .next()
        .ok_or_else(|| NativeError::Io(std::io::ErrorKind::NotFound.into()))?;
    let mut c = NativeConn::connect_with(addr, opts.tls.as_ref(), &opts.url.host).await?;
    let path = c.open(&open.open, open.trace_format).await?.path;
    // Streams are numbered: data streams first, then one metadata stream per trace.
    let mut next_seq = vec![0u64; plan.streams.len()];
    for (n, s) in plan.streams.iter().enumerate() {
        let a = AddStream {
            stream: n as u32,
            channel: s.name.clone(),
            path: plan.traces[s.trace].path.clone(),
            tracefile_size: 0,
            tracefile_count: 0,
        };
        next_seq[n] = resume(&mut c, a).await?.next_seq;
    }
    let meta_base = plan.streams.len();
    let mut meta_have = vec![0u64; plan.traces.len()];
    for (t, tr) in plan.traces.iter().enumerate() {
        let a = AddStream {
            stream: (meta_base + t) as u32,
            channel: "metadata".into(),
            path: tr.path.clone(),
            tracefile_size: 0,
            tracefile_count: 0,
        };
        meta_have[t] = resume(&mut c, a).await?.metadata;
    }
    c.send(&Message::StreamsSent).await?;
    for (t, tr) in plan.traces.iter().enumerate() {
        let from = usize::try_from(meta_have[t]).unwrap_or(usize::MAX);
        for (i, piece) in tr
            .metadata
            .get(from..)
            .unwrap_or_default()
            .chunks(1 << 20)
            .enumerate()
        {
            let offset = from + i * (1 << 20);
            c.send_with(
                &Message::Metadata {
                    stream: (meta_base + t) as u32,
                    offset: offset as u64,
                    len: piece.len() as u32,
                },
                &[piece],
            )
            .await?;
        }
    }
    // Packets the relay lacks, in timestamp order (a k-way merge over the streams' index
    // entries, read lazily), batched per stream.
    let mut srcs = Vec::with_capacity(plan.streams.len());
    let mut heads: Vec<Option<IndexEntry>> = Vec::with_capacity(plan.streams.len());
    let mut heap = BinaryHeap::new();
    for (i, st) in plan.streams.iter().enumerate() {
        let mut src = PacketSource::open(&st.file, st.word, false).map_err(local)?;
        for _ in 0..next_seq[i] {
            if src.next_packet().map_err(local)?.is_none() {
                break;
            }
        }
        let head = src.next_packet().map_err(local)?;
        if let Some(e) = &head {
            heap.push(Reverse((e.timestamp_begin, i)));
        }
        heads.push(head);
        srcs.push(src);
    }
    let mut buf = Vec::with_capacity(opts.batch_bytes + (1 << 16));
    let mut metas: Vec<PacketMeta> = Vec::new();
    let mut batch_stream = usize::MAX;
    let mut since_commit = 0u64;
    let mut pending_commit: Option<u64> = None;
    while let Some(Reverse((_, s))) = heap.pop() {
        let Some(e) = heads[s].take() else {
            continue;
        };
        if batch_stream != s || buf.len() >= opts.batch_bytes || metas.len() >= MAX_BATCH {
            flush(&mut c, batch_stream, &mut metas, &mut buf, totals).await?;
            batch_stream = s;
            if opts.ack == AckLevel::Received && c.sent > WINDOW {
                c.wait_acked(AckLevel::Received, c.sent - WINDOW).await?;
            }
            if opts.ack == AckLevel::Committed && since_commit >= COMMIT_EVERY {
                // One commit in flight at a time: wait for the previous, request the next.
                if let Some(upto) = pending_commit.take() {
                    c.wait_acked(AckLevel::Committed, upto).await?;
                }
                c.send(&Message::Commit).await?;
                pending_commit = Some(c.sent);
                since_commit = 0;
            }
        }
        let st = &plan.streams[s];
        let total = e.packet_size / 8;
        super::push_packet(&mut buf, &mut metas, &st.data, next_seq[s], &e)?;
        next_seq[s] += 1;
        since_commit += total;
        let next = srcs[s].next_packet().map_err(local)?;
        if let Some(n) = &next {
            heap.push(Reverse((n.timestamp_begin, s)));
        }
        heads[s] = next;
    }
    flush(&mut c, batch_stream, &mut metas, &mut buf, totals).await?;
    for (n, s) in plan.streams.iter().enumerate() {
        let last_seq = s.packets.checked_sub(1);
        c.send(&Message::CloseStream {
            stream: n as u32,
            last_seq,
        })
        .await?;
    }
    c.send(&Message::Close).await?;
    c.wait_acked(AckLevel::Committed, c.sent).await?;
    Ok(path)
}

async fn resume(
    c: &mut NativeConn,
    a: AddStream,
) -> Result<trelay_proto::trelay::message::Resume, NativeError> {
    match c.request(&Message::AddStream(a)).await? {
        Message::StreamAdded { resume, .. } => Ok(resume),
        other => Err(NativeError::Protocol(format!(
            "AddStream answered {other:?}"
        ))),
    }
}

async fn flush(
    c: &mut NativeConn,
    stream: usize,
    metas: &mut Vec<PacketMeta>,
    buf: &mut Vec<u8>,
    totals: &mut Totals,
) -> Result<(), NativeError> {
    if metas.is_empty() {
        return Ok(());
    }
    let m = Message::Packets(Packets {
        stream: stream as u32,
        packets: std::mem::take(metas),
    });
    c.send_with(&m, &[buf]).await?;
    if let Message::Packets(p) = &m {
        totals.packets += p.packets.len() as u64;
    }
    totals.bytes += buf.len() as u64;
    buf.clear();
    Ok(())
}
