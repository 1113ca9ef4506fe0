//! `follow --url trelay://…`: ship a growing local trace over trelay://, surviving cuts and
//! relay restarts.
//!
//! Every poll round takes the packets complete on disk (as `follow` over the LTTng protocol
//! does), sends the metadata that appeared, then the packets in timestamp order batched per
//! stream, then asks for a commit and waits for it: what the relay acknowledged is forgotten,
//! what it did not stays in memory (index entries only; the bytes are re-read from the files)
//! until it is. After a cut the follower reconnects with backoff, opens the same session
//! identity, and resends from where each stream's data ends on the relay. Idle streams get a
//! beacon every live interval, dated with their last packet's end.

use super::client::{NativeConn, NativeError};
use crate::ship::local_session;
use crate::ship::send::names_for;
use crate::trace::metadata::{read_tsdl, word_size};
use crate::trace::packets::content_len;
use crate::trace::{walk, PacketSource, TraceError};
use crate::url::RelayUrl;
use std::future::Future;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use trelay_proto::ctf::index::IndexEntry;
use trelay_proto::trelay::message::{
    AckLevel, AddStream, IndexFields, Message, Open, PacketMeta, Packets, MAX_BATCH,
};

/// Packets taken from one stream per round at most.
const PER_ROUND: usize = 1024;
/// How often the tree and the local session list are re-read.
const RESCAN: Duration = Duration::from_secs(1);

/// Options of [`follow`].
#[derive(Debug, Clone)]
pub struct NativeFollowOptions {
    /// The directory the local session writes.
    pub dir: PathBuf,
    /// The relay (`trelay://`).
    pub url: RelayUrl,
    /// Session name (default: the trace's).
    pub session: Option<String>,
    /// Hostname (default: the trace's).
    pub hostname: Option<String>,
    /// Live timer in µs (beacon period).
    pub live_timer_us: u32,
    /// How often files are checked for growth.
    pub poll: Duration,
    /// End after this long without growth.
    pub idle_timeout: Option<Duration>,
    /// Watch `lttng list` for the end of the local session.
    pub watch_session: bool,
    /// How long to keep reconnecting after a cut.
    pub retry_for: Duration,
    /// Print a line at each reconnect.
    pub progress: bool,
}

impl NativeFollowOptions {
    /// Defaults: 1 s live timer, 100 ms polling, 300 s of retries.
    pub fn new(dir: PathBuf, url: RelayUrl) -> Self {
        NativeFollowOptions {
            dir,
            url,
            session: None,
            hostname: None,
            live_timer_us: 1_000_000,
            poll: Duration::from_millis(100),
            idle_timeout: None,
            watch_session: true,
            retry_for: Duration::from_secs(300),
            progress: true,
        }
    }
}

/// What [`follow`] did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct NativeFollowReport {
    /// Session directory on the relay.
    pub relay_path: String,
    /// Streams followed.
    pub streams: usize,
    /// Packets acknowledged as committed.
    pub packets: u64,
    /// Packet bytes acknowledged.
    pub bytes: u64,
    /// Beacons sent.
    pub beacons: u64,
    /// Connections lost and made again.
    pub reconnects: u32,
    /// Wall-clock seconds.
    pub seconds: f64,
}

struct FStream {
    n: u32,
    trace: usize,
    name: String,
    src: PacketSource,
    data: std::fs::File,
    /// Sent (or to send) and not acknowledged: `(seq, entry)`.
    unacked: Vec<(u64, IndexEntry)>,
    next_seq: u64,
    last_ts_end: Option<u64>,
    class_id: u64,
    active: bool,
}

struct FTrace {
    path: String,
    metadata: PathBuf,
    meta_n: u32,
    /// Metadata bytes the relay has.
    meta_have: u64,
}

struct Follower {
    traces: Vec<FTrace>,
    streams: Vec<FStream>,
    next_n: u32,
    report: NativeFollowReport,
}

fn native_err(e: TraceError) -> NativeError {
    NativeError::Protocol(format!("local trace: {e}"))
}

impl Follower {
    /// Picks up trace directories and stream files not known yet.
    fn sync(&mut self, found: Vec<walk::TraceDir>) -> Result<(), NativeError> {
        for d in found {
            let t = match self.traces.iter().position(|t| t.path == d.relay_path) {
                Some(t) => t,
                None => {
                    self.traces.push(FTrace {
                        path: d.relay_path.clone(),
                        metadata: d.metadata.clone(),
                        meta_n: self.next_n,
                        meta_have: 0,
                    });
                    self.next_n += 1;
                    self.traces.len() - 1
                }
            };
            let word = word_size(&read_tsdl(&d.metadata).unwrap_or_default());
            for f in &d.streams {
                if self
                    .streams
                    .iter()
                    .any(|s| s.trace == t && s.name == f.name)
                {
                    continue;
                }
                let src = PacketSource::open(f, word, true).map_err(native_err)?;
                let data = std::fs::File::open(&f.data).map_err(NativeError::Io)?;
                self.streams.push(FStream {
                    n: self.next_n,
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

    /// Takes the packets complete on disk; returns how many.
    fn take(&mut self) -> Result<usize, NativeError> {
        let mut n = 0;
        for s in &mut self.streams {
            for _ in 0..PER_ROUND {
                match s.src.next_packet().map_err(native_err)? {
                    Some(e) => {
                        s.unacked.push((s.next_seq, e));
                        s.next_seq += 1;
                        n += 1;
                    }
                    None => break,
                }
            }
        }
        Ok(n)
    }
}

fn fields(e: &IndexEntry) -> IndexFields {
    IndexFields {
        packet_size_bits: e.packet_size,
        content_size_bits: e.content_size,
        timestamp_begin: e.timestamp_begin,
        timestamp_end: e.timestamp_end,
        events_discarded: e.events_discarded,
        stream_id: e.stream_id,
        stream_instance_id: e.stream_instance_id,
        packet_seq_num: e.packet_seq_num,
    }
}

/// A connection with the session open and every known stream added.
struct Link {
    conn: NativeConn,
    /// Streams announced on this connection.
    announced: usize,
    traces_announced: usize,
}

async fn connect(url: &RelayUrl, open: &Open, f: &mut Follower) -> Result<Link, NativeError> {
    let addr = tokio::net::lookup_host((url.host.as_str(), url.control_port))
        .await?
        .next()
        .ok_or_else(|| NativeError::Io(std::io::ErrorKind::NotFound.into()))?;
    let mut conn = NativeConn::connect(addr).await?;
    match conn.request(&Message::Open(open.clone())).await? {
        Message::Opened(o) => f.report.relay_path = o.path,
        other => return Err(NativeError::Protocol(format!("Open answered {other:?}"))),
    }
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
async fn round(link: &mut Link, f: &mut Follower) -> Result<u64, NativeError> {
    announce(link, f).await?;
    for t in &mut f.traces {
        let bytes = std::fs::read(&t.metadata).map_err(NativeError::Io)?;
        let from = usize::try_from(t.meta_have).unwrap_or(usize::MAX);
        if let Some(new) = bytes.get(from..).filter(|b| !b.is_empty()) {
            link.conn
                .send_with(
                    &Message::Metadata {
                        stream: t.meta_n,
                        offset: t.meta_have,
                        len: new.len() as u32,
                    },
                    &[new],
                )
                .await?;
            t.meta_have = bytes.len() as u64;
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
            let content = content_len(e);
            let at = buf.len();
            buf.resize(at + content as usize, 0);
            s.data
                .read_exact_at(&mut buf[at..], e.offset)
                .map_err(NativeError::Io)?;
            metas.push(PacketMeta {
                seq: *seq,
                content: content as u32,
                padding: (e.packet_size / 8 - content) as u32,
                index: Some(fields(e)),
            });
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
            s.last_ts_end = Some(e.timestamp_end);
            s.class_id = e.stream_id;
        }
        acked += s.unacked.len() as u64;
        s.unacked.clear();
    }
    f.report.packets += acked;
    Ok(acked)
}

async fn beacons(link: &mut Link, f: &mut Follower) -> Result<(), NativeError> {
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

/// Follows the trace under `opts.dir` until it ends, over trelay://.
pub async fn follow(
    opts: &NativeFollowOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<NativeFollowReport, NativeError> {
    tokio::pin!(shutdown);
    let start = Instant::now();
    let found = loop {
        let t = walk::walk(&opts.dir).unwrap_or_default();
        if !t.is_empty() {
            break t;
        }
        tokio::select! {
            _ = &mut shutdown => return Err(NativeError::Protocol("no trace appeared".into())),
            _ = tokio::time::sleep(RESCAN) => {}
        }
        if opts.idle_timeout.is_some_and(|d| start.elapsed() > d) {
            return Err(NativeError::Protocol("no trace appeared".into()));
        }
    };
    let (name, hostname) = names_for(
        &found,
        &opts.dir,
        opts.session.as_deref(),
        opts.hostname.as_deref(),
    );
    let mut id = [0u8; 16];
    if let Ok(r) = std::fs::File::open("/dev/urandom") {
        let _ = r.read_exact_at(&mut id, 0);
    }
    let open = Open {
        session: id,
        name,
        hostname,
        live_timer_us: opts.live_timer_us.max(1),
        creation_time: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        ack: AckLevel::Committed,
    };
    let mut f = Follower {
        traces: Vec::new(),
        streams: Vec::new(),
        next_n: 0,
        report: NativeFollowReport::default(),
    };
    f.sync(found)?;
    let watching = opts.watch_session;
    let live = Duration::from_micros(u64::from(opts.live_timer_us.max(1)));
    let mut link: Option<Link> = None;
    let mut backoff = Duration::from_millis(100);
    let mut cut_since: Option<Instant> = None;
    let mut next_beacon = Instant::now() + live;
    let mut next_rescan = Instant::now() + RESCAN;
    let mut last_growth = Instant::now();
    let mut ending = false;
    loop {
        if f.take()? > 0 {
            last_growth = Instant::now();
        }
        if link.is_none() {
            match connect(&opts.url, &open, &mut f).await {
                Ok(l) => {
                    link = Some(l);
                    backoff = Duration::from_millis(100);
                    cut_since = None;
                }
                Err(e) if e.is_transient() => {
                    let since = *cut_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > opts.retry_for {
                        return Err(e);
                    }
                    if opts.progress {
                        eprintln!(
                            "trelay-consumer: {e}; reconnecting in {:.1} s",
                            backoff.as_secs_f64()
                        );
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        if let Some(l) = link.as_mut() {
            let mut step = round(l, &mut f).await;
            if step.is_ok() && Instant::now() >= next_beacon {
                step = beacons(l, &mut f).await.map(|()| 0);
                next_beacon = Instant::now() + live;
            }
            match step {
                Ok(_) => {}
                Err(e) if e.is_transient() => {
                    f.report.reconnects += 1;
                    link = None;
                    // The next connection re-announces every stream and trace.
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        if ending {
            break;
        }
        if Instant::now() >= next_rescan {
            f.sync(walk::walk(&opts.dir).unwrap_or_default())?;
            next_rescan = Instant::now() + RESCAN;
            if watching {
                let listed = match local_session::listed_paths().await {
                    Some(p) => local_session::writes_to(&p, &opts.dir),
                    None => true,
                };
                ending |= !listed;
            }
        }
        ending |= opts.idle_timeout.is_some_and(|d| last_growth.elapsed() > d);
        if !ending {
            tokio::select! {
                _ = &mut shutdown => ending = true,
                _ = tokio::time::sleep(opts.poll) => {}
            }
        }
    }
    // Close (retrying over cuts like the rest).
    let close_deadline = Instant::now() + opts.retry_for;
    loop {
        let l = match link.as_mut() {
            Some(l) => l,
            None => {
                match connect(&opts.url, &open, &mut f).await {
                    Ok(l) => link = Some(l),
                    Err(e) if e.is_transient() && Instant::now() < close_deadline => {
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                    Err(e) => return Err(e),
                }
                continue;
            }
        };
        let closed = async {
            round(l, &mut f).await?;
            for s in &f.streams {
                l.conn
                    .send(&Message::CloseStream {
                        stream: s.n,
                        last_seq: s.next_seq.checked_sub(1),
                    })
                    .await?;
            }
            l.conn.send(&Message::Close).await?;
            l.conn.wait_acked(AckLevel::Committed, l.conn.sent).await
        }
        .await;
        match closed {
            Ok(()) => break,
            Err(e) if e.is_transient() => {
                f.report.reconnects += 1;
                link = None;
                tokio::time::sleep(backoff).await;
            }
            Err(e) => return Err(e),
        }
    }
    f.report.streams = f.streams.len();
    f.report.seconds = start.elapsed().as_secs_f64();
    Ok(f.report)
}
