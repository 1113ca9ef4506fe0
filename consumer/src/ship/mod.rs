//! Shipping local LTTng traces to a relay the way a 2.13 consumer daemon does: [`send()`] for a
//! finished trace, [`follow()`] for one still being written. Both use a [`Shipper`], which owns
//! the relay session and, per trace directory, its metadata stream and data streams.
//!
//! Per trace directory, in order: ADD_STREAM for every data stream, ADD_STREAM `metadata`,
//! STREAMS_SENT, then the metadata (each packet as one SEND_METADATA, header and text as data,
//! the rest as padding). Data packets are sent as a UST consumer does: `data_size` = content
//! bytes, `padding_size` = packet size − content, followed by SEND_INDEX with the entry from
//! the index file (or the packet header). The relay's files are thus byte-identical to the
//! originals up to the padding bytes, which it writes as zeros.

pub mod clock;
pub mod follow;
pub mod local_session;
pub mod send;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use trelay_proto::ctf::index::IndexEntry;

use crate::sender::{RelaySession, SendError, SessionConfig, StreamRef};
use crate::trace::metadata::{read_tsdl, word_size};
use crate::trace::packets::content_len;
use crate::trace::{MetadataSource, PacketSource, StreamFile, TraceDir, TraceError};
use crate::url::RelayUrl;

pub use follow::{follow, FollowOptions};
pub use send::{send, SendOptions};

/// Why shipping a trace failed.
#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    /// Reading the local trace failed.
    #[error(transparent)]
    Trace(#[from] TraceError),
    /// Talking to the relay failed.
    #[error(transparent)]
    Send(#[from] SendError),
    /// The directory holds no trace.
    #[error("{0}: no trace found (no directory with a metadata file)")]
    NoTrace(PathBuf),
    /// The relay address could not be resolved.
    #[error("cannot resolve {0}: {1}")]
    Resolve(String, std::io::Error),
}

/// What was shipped.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ShipReport {
    /// Session directory on the relay (relative to its output root).
    pub relay_path: String,
    /// Trace directories shipped.
    pub traces: usize,
    /// Data streams shipped.
    pub streams: usize,
    /// Data packets sent.
    pub packets: u64,
    /// Bytes of data packets, padding included.
    pub packet_bytes: u64,
    /// Bytes of metadata, padding included.
    pub metadata_bytes: u64,
    /// Live beacons sent.
    pub beacons: u64,
    /// Streams read from packet headers for lack of an index file.
    pub streams_without_index: usize,
    /// Bytes at the end of stream files that do not form a whole packet (not sent).
    pub trailing_bytes: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// One data stream being shipped.
#[derive(Debug)]
pub struct ShipStream {
    /// Relay stream.
    pub sref: StreamRef,
    /// Local packets.
    pub src: PacketSource,
    /// End timestamp of the last packet sent.
    pub last_ts_end: Option<u64>,
    /// Whether a packet was sent since the last beacon round.
    pub active: bool,
}

/// One trace directory being shipped.
#[derive(Debug)]
pub struct ShipTrace {
    /// The local directory.
    pub dir: TraceDir,
    /// Its metadata file.
    pub meta: MetadataSource,
    /// Relay metadata stream.
    pub meta_ref: StreamRef,
    /// Data streams.
    pub streams: Vec<ShipStream>,
    /// The trace clock, for live beacons.
    pub clock: Option<clock::TraceClock>,
}

impl ShipTrace {
    /// Latest packet end sent on any of the trace's streams.
    pub fn max_ts_end(&self) -> Option<u64> {
        self.streams.iter().filter_map(|s| s.last_ts_end).max()
    }
}

/// A relay session plus the traces shipped through it.
#[derive(Debug)]
pub struct Shipper {
    /// The relay session.
    pub session: RelaySession,
    /// Traces announced so far.
    pub traces: Vec<ShipTrace>,
    /// Running totals.
    pub report: ShipReport,
    /// Progress display (hidden when not on a terminal).
    pub progress: ProgressBar,
    meta_buf: Vec<u8>,
    wait_for_index: bool,
}

impl Shipper {
    /// Wraps a connected session. `wait_for_index`: streams being written may get their index
    /// file later (follow mode).
    pub fn new(session: RelaySession, progress: ProgressBar, wait_for_index: bool) -> Self {
        Shipper {
            report: ShipReport {
                relay_path: session.output_path().to_owned(),
                ..ShipReport::default()
            },
            session,
            traces: Vec::new(),
            progress,
            meta_buf: Vec::new(),
            wait_for_index,
        }
    }

    /// Resolves `url`, opens the relay session `cfg` describes and wraps it (see [`Self::new`]),
    /// with a progress bar of `total` bytes (a spinner when unknown) if `show_progress`.
    pub async fn connect(
        url: &RelayUrl,
        cfg: &SessionConfig,
        show_progress: bool,
        total: Option<u64>,
        wait_for_index: bool,
    ) -> Result<Self, ShipError> {
        let (ctrl, data) = url
            .resolve()
            .await
            .map_err(|e| ShipError::Resolve(url.to_string(), e))?;
        let session = RelaySession::connect(ctrl, data, cfg).await?;
        let bar = if show_progress {
            progress_bar(total)
        } else {
            ProgressBar::hidden()
        };
        Ok(Shipper::new(session, bar, wait_for_index))
    }

    /// Counts the trailing bytes, clears the progress display and closes the relay session
    /// (waiting at most `close_timeout`); returns the final report, timed from `start`.
    pub async fn finish(
        mut self,
        close_timeout: Duration,
        start: Instant,
    ) -> Result<ShipReport, ShipError> {
        self.count_trailing()?;
        self.progress.finish_and_clear();
        let mut report = self.report.clone();
        report.relay_path = self.session.close(close_timeout).await?;
        report.seconds = start.elapsed().as_secs_f64();
        Ok(report)
    }

    /// Announces a trace directory: its data streams, its metadata stream, STREAMS_SENT, then
    /// the metadata available now. Returns the trace's position in [`Self::traces`].
    pub async fn add_trace(&mut self, dir: TraceDir) -> Result<usize, ShipError> {
        let tsdl = read_tsdl(&dir.metadata).unwrap_or_default();
        let word = word_size(&tsdl);
        let clock = clock::TraceClock::from_tsdl(&tsdl);
        let meta = MetadataSource::open(&dir.metadata)?;
        let mut streams = Vec::new();
        for f in &dir.streams {
            streams.push(self.open_stream(&dir, f, word).await?);
        }
        let meta_ref = self.session.add_stream("metadata", &dir.relay_path).await?;
        self.session.streams_sent().await?;
        self.report.traces += 1;
        tracing::info!(path = %dir.relay_path, streams = streams.len(), "trace announced");
        self.traces.push(ShipTrace {
            dir,
            meta,
            meta_ref,
            streams,
            clock,
        });
        let t = self.traces.len() - 1;
        self.pump_metadata(t).await?;
        Ok(t)
    }

    /// Announces data streams that appeared in a known trace directory, then STREAMS_SENT.
    pub async fn add_streams(&mut self, t: usize, files: Vec<StreamFile>) -> Result<(), ShipError> {
        if files.is_empty() {
            return Ok(());
        }
        let tsdl = read_tsdl(&self.traces[t].dir.metadata).unwrap_or_default();
        let word = word_size(&tsdl);
        for f in files {
            let dir = self.traces[t].dir.clone();
            let s = self.open_stream(&dir, &f, word).await?;
            self.traces[t].streams.push(s);
            self.traces[t].dir.streams.push(f);
        }
        self.session.streams_sent().await?;
        Ok(())
    }

    async fn open_stream(
        &mut self,
        dir: &TraceDir,
        f: &StreamFile,
        word: trelay_proto::ctf::packet::WordSize,
    ) -> Result<ShipStream, ShipError> {
        let src = PacketSource::open(f, word, self.wait_for_index)?;
        if !self.wait_for_index && !src.uses_index() {
            self.report.streams_without_index += 1;
        }
        let sref = self.session.add_stream(&f.name, &dir.relay_path).await?;
        self.report.streams += 1;
        Ok(ShipStream {
            sref,
            src,
            last_ts_end: None,
            active: false,
        })
    }

    /// Sends every complete metadata packet of trace `t` not sent yet; returns the bytes sent.
    pub async fn pump_metadata(&mut self, t: usize) -> Result<u64, ShipError> {
        let mut sent = 0;
        let tr = &mut self.traces[t];
        while let Some(chunk) = tr.meta.next_chunk(&mut self.meta_buf)? {
            self.session
                .send_metadata(tr.meta_ref, &self.meta_buf[..chunk.len], chunk.padding)
                .await?;
            sent += chunk.len as u64 + u64::from(chunk.padding);
        }
        self.report.metadata_bytes += sent;
        self.progress.inc(sent);
        Ok(sent)
    }

    /// Sends one packet of stream `s` of trace `t` (data then SEND_INDEX).
    pub async fn send_packet(
        &mut self,
        t: usize,
        s: usize,
        e: &IndexEntry,
    ) -> Result<(), ShipError> {
        let st = &mut self.traces[t].streams[s];
        let content = content_len(e);
        let total = e.packet_size / 8;
        let padding = u32::try_from(total - content).map_err(|_| SendError::TooLarge(total))?;
        self.session
            .send_packet_from_file(
                st.sref,
                st.src.data_file(),
                e.offset,
                content,
                padding,
                Some(e),
            )
            .await?;
        st.last_ts_end = Some(e.timestamp_end);
        st.active = true;
        self.report.packets += 1;
        self.report.packet_bytes += total;
        self.progress.inc(total);
        Ok(())
    }

    /// Sends a beacon on stream `s` of trace `t`.
    pub async fn send_beacon(&mut self, t: usize, s: usize, ts: u64) -> Result<(), ShipError> {
        let sref = self.traces[t].streams[s].sref;
        self.session.send_beacon(sref, ts).await?;
        self.report.beacons += 1;
        Ok(())
    }

    /// Adds up the bytes left after the last whole packet of every stream.
    pub fn count_trailing(&mut self) -> Result<(), ShipError> {
        let mut total = 0;
        for t in &mut self.traces {
            for s in &mut t.streams {
                let n = s.src.trailing_bytes()?;
                if n > 0 {
                    tracing::warn!(file = %s.src.data_path().display(), bytes = n,
                        "trailing bytes do not form a whole packet; not sent");
                }
                total += n;
            }
        }
        self.report.trailing_bytes = total;
        Ok(())
    }
}

/// A progress bar on standard error with bytes per second, drawn only when standard error is a
/// terminal.
pub fn progress_bar(total: Option<u64>) -> ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let style = |t: &str| {
        indicatif::ProgressStyle::with_template(t)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
    };
    match total {
        Some(n) => ProgressBar::new(n).with_style(style(
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
        )),
        None => ProgressBar::new_spinner().with_style(style("{spinner} [{elapsed_precise}] {bytes} {binary_bytes_per_sec} {msg}")),
    }
}
