//! `live`: attach to a live session and mirror it into a CTF trace on disk (the protocol loop is
//! [`super::client`]; this is its sink that writes files).
//!
//! With seek BEGINNING (the default) the mirror holds everything the relay still serves. The
//! sink outlives a connection: after a reconnect (multi-relay `live`, [`super::multi`]) the
//! relay serves the session again from its beginning, and packets whose sequence number the
//! mirror already holds, and metadata bytes it already wrote, are skipped — every packet is in
//! the mirror once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use trelay_proto::lttng::live::Seek;

use super::client::{find_sessions, Client, ClientSettings, Packet, Sink};
use super::files::{MetadataOut, StreamOut};
use super::select::SessionMatch;
use super::tls::ViewerTls;
use super::{LiveError, ViewerConn};
use crate::report::PacketLine;
use crate::url::LiveUrl;

/// How to mirror.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// The session URL (or, with `select`, the relay URL).
    pub url: LiveUrl,
    /// Output folder.
    pub output: PathBuf,
    /// Where attached streams start.
    pub seek: Seek,
    /// How long to wait for the session to be listed.
    pub wait: Duration,
    /// Pause when nothing new arrived.
    pub poll: Duration,
    /// Largest GET_PACKET request, bytes.
    pub chunk: u32,
    /// TLS settings, for a `tls+net://` URL.
    pub tls: Option<ViewerTls>,
    /// Which sessions to attach, when not the one the URL names.
    pub select: Option<SessionMatch>,
}

impl LiveOptions {
    /// Defaults for `url` into `output`: seek beginning, wait 30 s, poll 100 ms, 256 KiB chunks.
    pub fn new(url: LiveUrl, output: PathBuf) -> LiveOptions {
        LiveOptions {
            url,
            output,
            seek: Seek::Beginning,
            wait: Duration::from_secs(30),
            poll: Duration::from_millis(100),
            chunk: 256 * 1024,
            tls: None,
            select: None,
        }
    }

    /// The client settings of these options.
    pub fn client_settings(&self) -> ClientSettings {
        ClientSettings {
            seek: self.seek,
            wait: self.wait,
            poll: self.poll,
            chunk: self.chunk,
        }
    }

    /// The sessions to attach: `select`, else the URL's session.
    pub fn session_match(&self) -> Result<SessionMatch, LiveError> {
        if let Some(m) = &self.select {
            return Ok(m.clone());
        }
        let (host, name) = self.url.session.clone().ok_or(LiveError::NoSessionInUrl)?;
        Ok(SessionMatch::Exact { host, name })
    }
}

/// What a mirror run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveStats {
    /// Relay sessions attached.
    pub sessions: u64,
    /// Data streams seen.
    pub streams: u64,
    /// Packets received.
    pub packets: u64,
    /// Packet bytes received.
    pub bytes: u64,
    /// Metadata bytes received.
    pub metadata_bytes: u64,
    /// Whether the run ended by a stop request (and detached) rather than by the relay's HUP.
    pub detached: bool,
}

struct StreamFile {
    out: StreamOut,
    last_seq: Option<u64>,
}

/// The sink that writes a mirror under `root`, calling `out` with each packet written.
pub struct MirrorSink<F> {
    root: PathBuf,
    metadata: BTreeMap<PathBuf, MetadataOut>,
    streams: BTreeMap<String, StreamFile>,
    out: F,
}

impl<F> MirrorSink<F>
where
    F: FnMut(&PacketLine) -> std::io::Result<()>,
{
    /// A mirror under `root`.
    pub fn new(root: PathBuf, out: F) -> Self {
        MirrorSink {
            root,
            metadata: BTreeMap::new(),
            streams: BTreeMap::new(),
            out,
        }
    }
}

impl<F> Sink for MirrorSink<F>
where
    F: FnMut(&PacketLine) -> std::io::Result<()>,
{
    fn metadata(&mut self, dir: &Path, offset: u64, data: &[u8]) -> Result<(), LiveError> {
        if !self.metadata.contains_key(dir) {
            let m = MetadataOut::create(&self.root.join(dir))?;
            self.metadata.insert(dir.to_owned(), m);
        }
        let Some(m) = self.metadata.get_mut(dir) else {
            return Ok(());
        };
        // Bytes below what the file holds were written before a reconnect.
        let skip = usize::try_from(m.len.saturating_sub(offset)).unwrap_or(usize::MAX);
        match data.get(skip..) {
            Some(rest) if !rest.is_empty() => m.append(rest),
            _ => Ok(()),
        }
    }

    fn packet(&mut self, p: &Packet<'_>) -> Result<bool, LiveError> {
        if !self.streams.contains_key(p.label) {
            let out = StreamOut::create(&self.root.join(p.dir), p.channel)?;
            let f = StreamFile {
                out,
                last_seq: None,
            };
            self.streams.insert(p.label.to_owned(), f);
        }
        let Some(s) = self.streams.get_mut(p.label) else {
            return Ok(false);
        };
        let seq = p.entry.packet_seq_num;
        if seq != u64::MAX && s.last_seq.is_some_and(|last| seq <= last) {
            return Ok(false); // served again after a reconnect
        }
        let written = s.out.append(p.bytes, p.entry)?;
        if seq != u64::MAX {
            s.last_seq = Some(seq);
        }
        let line = PacketLine::from_entry(p.label, &written, p.clock, p.prev_discarded);
        (self.out)(&line).map_err(LiveError::Io)?;
        Ok(true)
    }
}

/// Connects, finds the sessions of `opts` and attaches them; the client is ready to run.
pub fn open<'a, S: Sink>(
    opts: &LiveOptions,
    stop: &'a AtomicBool,
    sink: S,
) -> Result<Client<'a, S>, LiveError> {
    let m = opts.session_match()?;
    let mut conn = ViewerConn::connect_url(&opts.url, opts.tls.as_ref())?;
    conn.create_viewer_session()?;
    let settings = opts.client_settings();
    let ids = find_sessions(&mut conn, &m, &settings, stop)?;
    let mut c = Client::new(conn, settings, stop, sink);
    for id in ids {
        c.attach(id)?;
    }
    Ok(c)
}

/// Mirrors the session named by `opts.url` into `opts.output` until it ends or `stop` is set;
/// calls `out` with each packet written.
pub fn mirror<F>(opts: &LiveOptions, stop: &AtomicBool, out: F) -> Result<LiveStats, LiveError>
where
    F: FnMut(&PacketLine) -> std::io::Result<()>,
{
    let mut c = open(opts, stop, MirrorSink::new(opts.output.clone(), out))?;
    c.run()?;
    Ok(c.stats)
}
