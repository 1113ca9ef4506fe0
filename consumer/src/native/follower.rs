//! The follower's state and one connection's work: which traces and streams it knows, what the
//! relay has not acknowledged yet, and the rounds (metadata, packets in time order, commit) and
//! beacons sent over a connection.

use super::client::{NativeConn, NativeError};
use super::follow::NativeFollowReport;
use crate::trace::metadata::{read_tsdl, word_size};
use crate::trace::{walk, PacketSource, TraceError};
use crate::url::RelayUrl;
use std::os::unix::fs::FileExt;
use trelay_proto::ctf::index::IndexEntry;
use trelay_proto::trelay::message::{AckLevel, AddStream, Message, OpenTraced, Packets, MAX_BATCH};

/// Packets taken from one stream per round at most.
const PER_ROUND: usize = 1024;
/// Packets of one stream held unacknowledged at most: while the relay is away or slow, no more
/// are read, so memory stays bounded however long the local trace grows meanwhile.
const MAX_UNACKED: usize = 8 * PER_ROUND;
/// Metadata bytes sent in one message at most.
const METADATA_PIECE: u64 = 1 << 20;

/// A file's (device, inode).
fn file_id(path: &std::path::Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path)?;
    Ok((m.dev(), m.ino()))
}

pub(super) struct FStream {
    pub(super) n: u32,
    /// The data file's (device, inode): the same file found at another path (a rotation moved
    /// its chunk) is the same stream.
    pub(super) file_id: (u64, u64),
    pub(super) trace: usize,
    pub(super) name: String,
    pub(super) src: PacketSource,
    pub(super) data: std::fs::File,
    /// Sent (or to send) and not acknowledged: `(seq, entry)`.
    pub(super) unacked: Vec<(u64, IndexEntry)>,
    pub(super) next_seq: u64,
    pub(super) last_ts_end: Option<u64>,
    pub(super) class_id: u64,
    pub(super) active: bool,
}

pub(super) struct FTrace {
    pub(super) path: String,
    /// The metadata file, held open: it is read through a rename.
    pub(super) metadata: std::fs::File,
    pub(super) metadata_id: (u64, u64),
    pub(super) meta_n: u32,
    /// Metadata bytes the relay has.
    pub(super) meta_have: u64,
}

pub(super) struct Follower {
    pub(super) traces: Vec<FTrace>,
    pub(super) streams: Vec<FStream>,
    pub(super) next_n: u32,
    pub(super) report: NativeFollowReport,
    pub(super) counters: std::sync::Arc<super::follow::FollowProgress>,
}

fn native_err(e: TraceError) -> NativeError {
    NativeError::Protocol(format!("local trace: {e}"))
}

impl Follower {
    /// Picks up trace directories and stream files not known yet. Files are known by
    /// (device, inode): a trace directory a rotation moved (its chunk archived) is the trace
    /// already followed, read on through the descriptors held; files created since (the next
    /// chunk's) are new streams of a new trace.
    pub(super) fn sync(&mut self, found: Vec<walk::TraceDir>) -> Result<(), NativeError> {
        for d in found {
            let Ok(meta_id) = file_id(&d.metadata) else {
                continue;
            };
            let known_trace = self
                .traces
                .iter()
                .position(|t| t.metadata_id == meta_id || t.path == d.relay_path);
            let mut new_streams = Vec::new();
            for f in &d.streams {
                let Ok(id) = file_id(&f.data) else { continue };
                let known = self
                    .streams
                    .iter()
                    .any(|s| s.file_id == id || (Some(s.trace) == known_trace && s.name == f.name));
                if !known {
                    new_streams.push((f, id));
                }
            }
            let t = match known_trace {
                Some(t) => t,
                None if new_streams.is_empty() => continue,
                None => {
                    let metadata = std::fs::File::open(&d.metadata).map_err(NativeError::Io)?;
                    self.traces.push(FTrace {
                        path: d.relay_path.clone(),
                        metadata,
                        metadata_id: meta_id,
                        meta_n: self.next_n,
                        meta_have: 0,
                    });
                    self.next_n += 1;
                    self.traces.len() - 1
                }
            };
            if new_streams.is_empty() {
                continue;
            }
            let word = word_size(&read_tsdl(&d.metadata).unwrap_or_default());
            for (f, id) in new_streams {
                let src = PacketSource::open(f, word, true).map_err(native_err)?;
                let data = std::fs::File::open(&f.data).map_err(NativeError::Io)?;
                self.streams.push(FStream {
                    n: self.next_n,
                    file_id: id,
                    trace: t,
                    name: f.name.clone(),
                    src,
                    data,
                    unacked: Vec::new(),
                    next_seq: 0,
                    last_ts_end: None,
                    class_id: 0,
                    active: false,
                });
                self.next_n += 1;
            }
        }
        Ok(())
    }

    /// Takes the packets complete on disk, as many as the unacknowledged bound lets it;
    /// returns how many, and whether every complete packet on disk is now taken.
    pub(super) fn take(&mut self) -> Result<(usize, bool), NativeError> {
        let mut n = 0;
        let mut drained = true;
        for s in &mut self.streams {
            let room = MAX_UNACKED.saturating_sub(s.unacked.len()).min(PER_ROUND);
            let mut exhausted = false;
            for _ in 0..room {
                match s.src.next_packet().map_err(native_err)? {
                    Some(e) => {
                        self.counters.add_taken(e.packet_size / 8);
                        s.unacked.push((s.next_seq, e));
                        s.next_seq += 1;
                        n += 1;
                    }
                    None => {
                        exhausted = true;
                        break;
                    }
                }
            }
            drained &= exhausted;
        }
        Ok((n, drained))
    }
}

/// A connection with the session open and every known stream added.
pub(super) struct Link {
    pub(super) conn: NativeConn,
    /// Streams announced on this connection.
    pub(super) announced: usize,
    pub(super) traces_announced: usize,
}

pub(super) async fn connect(
    url: &RelayUrl,
    tls: Option<&super::client::ClientTls>,
    open: &OpenTraced,
    f: &mut Follower,
) -> Result<Link, NativeError> {
    let addr = tokio::net::lookup_host((url.host.as_str(), url.control_port))
        .await?
        .next()
        .ok_or_else(|| NativeError::Io(std::io::ErrorKind::NotFound.into()))?;
    let mut conn = NativeConn::connect_with(addr, tls, &url.host).await?;
    f.report.relay_path = conn.open(&open.open, open.trace_format).await?.path;
    let mut link = Link {
        conn,
        announced: 0,
        traces_announced: 0,
    };
    announce(&mut link, f).await?;
    Ok(link)
}

/// AddStream for streams and traces not announced on this link; applies the relay's resume
/// positions (what it has is forgotten here).
async fn announce(link: &mut Link, f: &mut Follower) -> Result<(), NativeError> {
    let mut any = false;
    while link.traces_announced < f.traces.len() {
        let t = &mut f.traces[link.traces_announced];
        let a = AddStream {
            stream: t.meta_n,
            channel: "metadata".into(),
            path: t.path.clone(),
            tracefile_size: 0,
            tracefile_count: 0,
        };
        if let Message::StreamAdded { resume, .. } =
            link.conn.request(&Message::AddStream(a)).await?
        {
            t.meta_have = resume.metadata;
        }
        link.traces_announced += 1;
        any = true;
    }
    while link.announced < f.streams.len() {
        let s = &mut f.streams[link.announced];
        let a = AddStream {
            stream: s.n,
            channel: s.name.clone(),
            path: f.traces[s.trace].path.clone(),
            tracefile_size: 0,
            tracefile_count: 0,
        };
        if let Message::StreamAdded { resume, .. } =
            link.conn.request(&Message::AddStream(a)).await?
        {
            s.unacked.retain(|(seq, _)| *seq >= resume.next_seq);
        }
        link.announced += 1;
        any = true;
    }
    if any {
        link.conn.send(&Message::StreamsSent).await?;
    }
    Ok(())
}

/// Sends what the relay lacks (metadata, then packets in time order), commits and waits for
/// the acknowledgement; then forgets what was acknowledged. Returns the packets acknowledged.
pub(super) async fn round(link: &mut Link, f: &mut Follower) -> Result<u64, NativeError> {
    announce(link, f).await?;
    for t in &mut f.traces {
        let len = t.metadata.metadata().map_err(NativeError::Io)?.len();
        while t.meta_have < len {
            let n = (len - t.meta_have).min(METADATA_PIECE);
            let mut new = vec![0u8; n as usize];
            t.metadata
                .read_exact_at(&mut new, t.meta_have)
                .map_err(NativeError::Io)?;
            link.conn
                .send_with(
                    &Message::Metadata {
                        stream: t.meta_n,
                        offset: t.meta_have,
                        len: n as u32,
                    },
                    &[&new],
                )
                .await?;
            t.meta_have += n;
        }
    }
    let mut order: Vec<(u64, usize, usize)> = Vec::new();
    for (si, s) in f.streams.iter().enumerate() {
        for (k, (_, e)) in s.unacked.iter().enumerate() {
            order.push((e.timestamp_begin, si, k));
        }
    }
    order.sort_unstable();
    let mut i = 0;
    let mut buf = Vec::new();
    while i < order.len() {
        let si = order[i].1;
        let mut metas = Vec::new();
        buf.clear();
        while i < order.len() && order[i].1 == si && metas.len() < MAX_BATCH && buf.len() < 1 << 20
        {
            let s = &f.streams[si];
            let (seq, e) = &s.unacked[order[i].2];
            super::push_packet(&mut buf, &mut metas, &s.data, *seq, e)?;
            i += 1;
        }
        let m = Message::Packets(Packets {
            stream: f.streams[si].n,
            packets: metas,
        });
        link.conn.send_with(&m, &[&buf]).await?;
        let s = &mut f.streams[si];
        s.active = true;
    }
    if order.is_empty() {
        return Ok(0);
    }
    link.conn.send(&Message::Commit).await?;
    link.conn
        .wait_acked(AckLevel::Committed, link.conn.sent)
        .await?;
    let mut acked = 0;
    for s in &mut f.streams {
        for (_, e) in &s.unacked {
            f.report.bytes += e.packet_size / 8;
            f.counters.add_acked(e.packet_size / 8);
            s.last_ts_end = Some(e.timestamp_end);
            s.class_id = e.stream_id;
        }
        acked += s.unacked.len() as u64;
        s.unacked.clear();
    }
    f.report.packets += acked;
    Ok(acked)
}

pub(super) async fn beacons(link: &mut Link, f: &mut Follower) -> Result<(), NativeError> {
    if !f.streams.iter().any(|s| s.active) {
        return Ok(());
    }
    for s in &mut f.streams {
        if !s.active {
            if let Some(ts) = s.last_ts_end {
                link.conn
                    .send(&Message::Beacon {
                        stream: s.n,
                        timestamp_end: ts,
                        stream_id: s.class_id,
                    })
                    .await?;
                f.report.beacons += 1;
            }
        }
        s.active = false;
    }
    Ok(())
}
