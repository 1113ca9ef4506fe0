//! `tail`: follow a trace a relay is writing on this machine, packet by packet, as packets are
//! committed.
//!
//! The reader side of the OFD lock protocol ([`crate::lock`]): an index entry is read only when
//! its byte range in the index file is free of the relay's write lock, and printed only when the
//! packet it points to is free too. Nothing past the committed frontier is ever read. New trace
//! directories and stream files are discovered at every poll; an index file replaced under the
//! same name (tracefile rotation) is followed from its start.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use trelay_proto::ctf::index::{IndexEntry, IndexHeader, HEADER_LEN};
use trelay_proto::Decoded;

use crate::lock::{is_committed, probe, RangeState};
use crate::report::PacketLine;
use crate::trace::{discover, stream_selected, StreamFiles};
use crate::tsdl::{Clock, Metadata};

/// How to follow.
#[derive(Debug, Clone)]
pub struct TailOptions {
    /// Only streams whose file name or path matches this glob.
    pub stream_glob: Option<String>,
    /// Stop after this long without a new packet.
    pub until_idle: Option<Duration>,
    /// Time between polls.
    pub poll: Duration,
    /// Skip the packets already committed when a stream is first seen at startup.
    pub new_only: bool,
}

impl Default for TailOptions {
    fn default() -> Self {
        TailOptions {
            stream_glob: None,
            until_idle: None,
            poll: Duration::from_millis(100),
            new_only: false,
        }
    }
}

/// What a `tail` run saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TailStats {
    /// Packets printed.
    pub packets: u64,
    /// Streams followed.
    pub streams: u64,
    /// Polls that found an entry written but not yet committed.
    pub waited_on_lock: u64,
}

struct Followed {
    label: String,
    trace_dir: PathBuf,
    index_path: PathBuf,
    data_path: PathBuf,
    index: Option<(File, u64)>,
    data: Option<File>,
    header: Option<IndexHeader>,
    next: u64,
    prev_discarded: Option<u64>,
    skip_existing: bool,
    broken: bool,
}

impl Followed {
    fn new(s: &StreamFiles, trace_dir: &Path, skip_existing: bool) -> Followed {
        Followed {
            label: s.label.clone(),
            trace_dir: trace_dir.to_owned(),
            index_path: s.index.clone(),
            data_path: s.data.clone(),
            index: None,
            data: None,
            header: None,
            next: 0,
            prev_discarded: None,
            skip_existing,
            broken: false,
        }
    }

    fn reset(&mut self) {
        self.index = None;
        self.data = None;
        self.header = None;
        self.next = 0;
        self.prev_discarded = None;
    }

    /// Reopens the files if they were replaced (tracefile rotation).
    fn refresh(&mut self) {
        let current = std::fs::metadata(&self.index_path).map(|m| m.ino()).ok();
        if let Some((_, ino)) = &self.index {
            if current != Some(*ino) {
                self.reset();
            }
        }
        if self.index.is_none() {
            if let (Ok(f), Some(ino)) = (File::open(&self.index_path), current) {
                self.index = Some((f, ino));
            }
        }
        if self.data.is_none() {
            self.data = File::open(&self.data_path).ok();
        }
    }

    /// Reads the next committed entry, if there is one.
    fn next_entry(&mut self, stats: &mut TailStats) -> std::io::Result<Option<IndexEntry>> {
        let Some((idx, _)) = &self.index else {
            return Ok(None);
        };
        let header = match self.header {
            Some(h) => h,
            None => {
                if !committed_and_present(idx, 0, HEADER_LEN as u64)? {
                    return Ok(None);
                }
                let mut b = [0u8; HEADER_LEN];
                idx.read_exact_at(&mut b, 0)?;
                match IndexHeader::decode(&b) {
                    Ok(Decoded::Done { msg, .. }) => {
                        self.header = Some(msg);
                        if self.skip_existing {
                            self.skip_existing = false;
                            let len = idx.metadata()?.len();
                            let mut n =
                                len.saturating_sub(HEADER_LEN as u64) / u64::from(msg.entry_len);
                            // Only entries that are committed count as existing.
                            while n > 0
                                && !is_committed(idx, 0, msg.entry_position(n).unwrap_or(0))?
                            {
                                n -= 1;
                            }
                            self.next = n;
                        }
                        msg
                    }
                    _ => {
                        self.broken = true;
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            format!("{}: not an index file", self.index_path.display()),
                        ));
                    }
                }
            }
        };
        let Some(pos) = header.entry_position(self.next) else {
            return Ok(None);
        };
        let len = u64::from(header.entry_len);
        let present = idx.metadata()?.len() >= pos.saturating_add(len);
        if !present {
            return Ok(None);
        }
        if !is_committed(idx, pos, len)? {
            stats.waited_on_lock += 1;
            return Ok(None);
        }
        let mut buf = vec![0u8; header.entry_len as usize];
        idx.read_exact_at(&mut buf, pos)?;
        let Decoded::Done { msg: entry, .. } = IndexEntry::decode(&header, &buf) else {
            return Ok(None);
        };
        if entry.offset != u64::MAX {
            // The packet itself must be committed too (it always is before its entry).
            let Some(data) = &self.data else {
                return Ok(None);
            };
            if !is_committed(data, entry.offset, (entry.packet_size / 8).max(1))? {
                stats.waited_on_lock += 1;
                return Ok(None);
            }
        }
        self.next += 1;
        Ok(Some(entry))
    }
}

fn committed_and_present(f: &File, start: u64, len: u64) -> std::io::Result<bool> {
    Ok(f.metadata()?.len() >= start.saturating_add(len) && is_committed(f, start, len)?)
}

/// Follows the traces under `root` until `stop` is set or the idle limit passes, calling `out`
/// for every committed packet in commit order per stream. `out` returning an error stops.
pub fn tail(
    root: &Path,
    opts: &TailOptions,
    stop: &AtomicBool,
    mut out: impl FnMut(&PacketLine) -> std::io::Result<()>,
) -> std::io::Result<TailStats> {
    let mut stats = TailStats::default();
    let mut streams: BTreeMap<PathBuf, Followed> = BTreeMap::new();
    let mut clocks: BTreeMap<PathBuf, Clock> = BTreeMap::new();
    let mut first_poll = true;
    let mut last_progress = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if let Ok(traces) = discover(root) {
            for t in traces {
                for s in t
                    .streams
                    .iter()
                    .filter(|s| stream_selected(s, opts.stream_glob.as_deref()))
                {
                    streams.entry(s.index.clone()).or_insert_with(|| {
                        stats.streams += 1;
                        Followed::new(s, &t.dir, opts.new_only && first_poll)
                    });
                }
            }
        }
        first_poll = false;
        let mut progressed = false;
        for f in streams.values_mut().filter(|f| !f.broken) {
            f.refresh();
            loop {
                let entry = match f.next_entry(&mut stats) {
                    Ok(Some(e)) => e,
                    Ok(None) => break,
                    Err(e) => {
                        eprintln!("trelay-viewer tail: {}: {e}", f.label);
                        break;
                    }
                };
                if !clocks.contains_key(&f.trace_dir) {
                    if let Some(c) = read_clock(&f.trace_dir) {
                        clocks.insert(f.trace_dir.clone(), c);
                    }
                }
                let line = PacketLine::from_entry(
                    &f.label,
                    &entry,
                    clocks.get(&f.trace_dir),
                    f.prev_discarded,
                );
                if entry.offset != u64::MAX {
                    f.prev_discarded = Some(entry.events_discarded);
                }
                out(&line)?;
                stats.packets += 1;
                progressed = true;
            }
        }
        if progressed {
            last_progress = Instant::now();
        } else if opts
            .until_idle
            .is_some_and(|idle| last_progress.elapsed() >= idle)
        {
            break;
        }
        if !progressed {
            std::thread::sleep(opts.poll);
        }
    }
    Ok(stats)
}

fn read_clock(dir: &Path) -> Option<Clock> {
    let f = File::open(dir.join("metadata")).ok()?;
    let len = f.metadata().ok()?.len();
    // Read only the committed part of the metadata.
    let end = match probe(&f, 0, 0).ok()? {
        RangeState::Free => len,
        RangeState::Locked { start, .. } => start.min(len),
    };
    let mut buf = vec![0u8; usize::try_from(end).ok()?];
    f.read_exact_at(&mut buf, 0).ok()?;
    Metadata::from_file_bytes(&buf).ok()?.clock().cloned()
}
