//! Loss sidecar files: how readers learn which packets a stream lost.
//!
//! The merge table ([`crate::merge`]) hands back every half whose partner never came
//! ([`Expired`]): an index half without data is a **lost packet** (the trace has no bytes for it),
//! a data half without index an **unindexed packet** (its bytes are in the data file, no index
//! entry describes them). The stream's writer records each one in its [`LossLog`] and, at the
//! commit that follows, replaces `<trace dir>/index/<stream name>.loss.json` ([`write()`]):
//!
//! ```json
//! {
//!   "format": "trelay-loss/1",
//!   "stream": "channel0_0",
//!   "lost_packets": 2, "unindexed_packets": 1, "early_expired": 0,
//!   "lost": [ { "net_seq": [7, 8], "packet_seq": [7, 8] } ],
//!   "unindexed": [ { "net_seq": [12, 12], "data_file": "channel0_0", "file_index": 0,
//!                    "offset": 49152, "size": 4096 } ],
//!   "truncated": false
//! }
//! ```
//!
//! Ranges are inclusive; consecutive packets coalesce (net_seq_num and packet_seq_num both
//! consecutive for lost packets; net_seq_num consecutive and bytes contiguous in one data file for
//! unindexed ones). At most [`MAX_RANGES`] ranges of each kind are kept; past that the counts stay
//! exact and `truncated` is true, so no input grows the log without bound. The file covers the
//! stream's whole life and is replaced atomically (hidden temporary, then rename; fsynced with
//! `--durability=beacon`), so a reader never sees half a file; recovery removes leftover
//! temporaries. Index files are left exactly as lttng-relayd writes them (complete entries only),
//! so babeltrace2 and lttng-relayd-compatible readers read them unchanged; the counts are also
//! what a live or metrics reader reports.

use crate::merge::{Expired, Half, LossCounters};
use dashmap::DashMap;
use serde::Serialize;
use std::path::Path;
use trelay_proto::StreamId;

/// Suffix of sidecar files.
pub const SUFFIX: &str = ".loss.json";

/// Value of the `format` key.
pub const FORMAT: &str = "trelay-loss/1";

/// Ranges of each kind kept per stream.
pub const MAX_RANGES: usize = 256;

/// Consecutive lost packets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LostRange {
    /// First and last net_seq_num.
    pub net_seq: [u64; 2],
    /// First and last CTF packet_seq_num (from the index halves).
    pub packet_seq: [u64; 2],
}

/// Consecutive unindexed packets, contiguous in one data file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnindexedRange {
    /// First and last net_seq_num.
    pub net_seq: [u64; 2],
    /// The data file's tracefile counter (see [`crate::merge::DataHalf::file_index`]).
    pub file_index: u64,
    /// Offset of the first packet in the data file.
    pub offset: u64,
    /// Bytes they take (padding included).
    pub size: u64,
}

/// The loss log of one stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LossLog {
    /// The counters.
    pub counts: LossCounters,
    /// Lost packet ranges, in recording order.
    pub lost: Vec<LostRange>,
    /// Unindexed packet ranges, in recording order.
    pub unindexed: Vec<UnindexedRange>,
    /// Some ranges were not kept (more than [`MAX_RANGES`] of one kind).
    pub truncated: bool,
    /// Bumped at every change (the writer compares it with what it last wrote).
    pub version: u64,
}

impl LossLog {
    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.counts.is_zero()
    }

    /// Records a half that left the merge table without its partner.
    pub fn record(&mut self, e: &Expired) {
        self.counts.record(e);
        self.version = self.version.wrapping_add(1);
        let seq = e.seq.0;
        match e.half {
            Half::Index(i) => self.lost(seq, i.packet_seq_num),
            Half::Data(d) => self.unindexed(seq, d.file_index, d.offset, d.size),
        }
    }

    fn lost(&mut self, seq: u64, psn: u64) {
        if let Some(r) = self.lost.last_mut() {
            if r.net_seq[1].checked_add(1) == Some(seq)
                && r.packet_seq[1].checked_add(1) == Some(psn)
            {
                r.net_seq[1] = seq;
                r.packet_seq[1] = psn;
                return;
            }
        }
        if self.lost.len() < MAX_RANGES {
            self.lost.push(LostRange {
                net_seq: [seq, seq],
                packet_seq: [psn, psn],
            });
        } else {
            self.truncated = true;
        }
    }

    fn unindexed(&mut self, seq: u64, file_index: u64, offset: u64, size: u64) {
        if let Some(r) = self.unindexed.last_mut() {
            if r.net_seq[1].checked_add(1) == Some(seq)
                && r.file_index == file_index
                && r.offset.checked_add(r.size) == Some(offset)
            {
                r.net_seq[1] = seq;
                r.size = r.size.saturating_add(size);
                return;
            }
        }
        if self.unindexed.len() < MAX_RANGES {
            self.unindexed.push(UnindexedRange {
                net_seq: [seq, seq],
                file_index,
                offset,
                size,
            });
        } else {
            self.truncated = true;
        }
    }
}

/// The loss logs of every stream of a relay, for the code that sees expired halves (the
/// housekeeping tick, stream close) and the commit that writes the sidecars. Usage:
/// `book.record(&expired)` for each [`Expired`] the merge table hands back; at commit,
/// `book.changed(stream)` gives the log to [`write()`] when it changed since it was last
/// `written`; halves dropped by a close are recorded before its final commit is requested;
/// `book.remove(stream)` after that commit. Each session's
/// commit queue holds one (`Session::commit.losses`) and writes the sidecars of the streams it
/// commits.
#[derive(Debug, Default)]
pub struct LossBook {
    logs: DashMap<StreamId, (LossLog, Option<u64>)>,
}

impl LossBook {
    /// Records an expired half in its stream's log.
    pub fn record(&self, e: &Expired) {
        self.logs.entry(e.stream).or_default().0.record(e);
    }

    /// A copy of the stream's log if it changed since it was last written.
    pub fn changed(&self, stream: StreamId) -> Option<LossLog> {
        let entry = self.logs.get(&stream)?;
        let (log, written) = &*entry;
        (Some(log.version) != *written && !log.is_empty()).then(|| log.clone())
    }

    /// Records that version `version` of the stream's log is on disk.
    pub fn written(&self, stream: StreamId, version: u64) {
        if let Some(mut e) = self.logs.get_mut(&stream) {
            e.1 = Some(version);
        }
    }

    /// The stream's counters (zero when nothing was recorded).
    pub fn counts(&self, stream: StreamId) -> LossCounters {
        self.logs
            .get(&stream)
            .map(|e| e.0.counts)
            .unwrap_or_default()
    }

    /// Forgets a stream (after its final commit).
    pub fn remove(&self, stream: StreamId) -> Option<LossLog> {
        self.logs.remove(&stream).map(|(_, (l, _))| l)
    }
}

#[derive(Serialize)]
struct Unindexed<'a> {
    data_file: String,
    #[serde(flatten)]
    range: &'a UnindexedRange,
}

#[derive(Serialize)]
struct Sidecar<'a> {
    format: &'static str,
    stream: &'a str,
    #[serde(flatten)]
    counts: &'a LossCounters,
    lost: &'a [LostRange],
    unindexed: Vec<Unindexed<'a>>,
    truncated: bool,
}

/// The sidecar file name of stream `stream`.
pub fn file_name(stream: &str) -> String {
    format!("{stream}{SUFFIX}")
}

/// The directory of a stream's index files, relative to its chunk (`<path>/index`).
pub fn index_dir(path: &str) -> String {
    if path.is_empty() {
        "index".to_owned()
    } else {
        format!("{path}/index")
    }
}

/// Replaces `dir/<stream>.loss.json` with `log` (fsynced when `sync`); `data_file` names the data
/// file of a tracefile counter (`channel0_0`, `channel0_0_3`).
pub fn write(
    fs: &super::Fs,
    dir: &Path,
    stream: &str,
    log: &LossLog,
    sync: bool,
    data_file: impl Fn(u64) -> String,
) -> super::error::Result<()> {
    use super::{Op, StorageError, StorageFile};
    let name = file_name(stream);
    let tmp = dir.join(format!(".{name}.tmp"));
    let sidecar = Sidecar {
        format: FORMAT,
        stream,
        counts: &log.counts,
        lost: &log.lost,
        unindexed: log
            .unindexed
            .iter()
            .map(|r| Unindexed {
                data_file: data_file(r.file_index),
                range: r,
            })
            .collect(),
        truncated: log.truncated,
    };
    let mut text = serde_json::to_vec_pretty(&sidecar)
        .map_err(|e| StorageError::new(Op::Write, &tmp, std::io::Error::other(e)))?;
    text.push(b'\n');
    let f = StorageFile::create(fs, tmp.clone())?;
    f.write_all_at(&text, 0)?;
    if sync {
        f.sync_data()?;
    }
    drop(f);
    fs.rename(&tmp, &dir.join(&name))
        .map_err(|e| StorageError::new(Op::Rename, &tmp, e))?;
    if sync {
        fs.sync_dir(dir)
            .map_err(|e| StorageError::new(Op::SyncDir, dir, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merge::{DataHalf, ExpiryReason, IndexHalf};
    use std::time::Duration;
    use trelay_proto::{NetSeq, StreamId};

    fn expired(seq: u64, half: Half, reason: ExpiryReason) -> Expired {
        Expired {
            stream: StreamId(1),
            seq: NetSeq(seq),
            half,
            reason,
            waited: Duration::ZERO,
        }
    }

    fn lost(seq: u64, psn: u64) -> Expired {
        let i = IndexHalf {
            packet_seq_num: psn,
            ..IndexHalf::default()
        };
        expired(seq, Half::Index(i), ExpiryReason::Deadline)
    }

    fn unindexed(seq: u64, file_index: u64, offset: u64) -> Expired {
        let d = DataHalf {
            file_index,
            offset,
            size: 10,
        };
        expired(seq, Half::Data(d), ExpiryReason::StreamCap)
    }

    #[test]
    fn consecutive_packets_coalesce_and_ranges_are_capped() {
        let mut l = LossLog::default();
        for s in 5..9 {
            l.record(&lost(s, s + 100));
        }
        l.record(&lost(10, 110));
        assert_eq!(l.lost.len(), 2);
        assert_eq!(l.lost[0].net_seq, [5, 8]);
        assert_eq!(l.lost[0].packet_seq, [105, 108]);
        l.record(&unindexed(1, 0, 0));
        l.record(&unindexed(2, 0, 10));
        l.record(&unindexed(3, 1, 0));
        assert_eq!(l.unindexed.len(), 2);
        assert_eq!(l.unindexed[0].size, 20);
        assert_eq!(l.counts.lost_packets, 5);
        assert_eq!(l.counts.unindexed_packets, 3);
        assert_eq!(l.counts.early_expired, 3);
        let mut m = LossLog::default();
        for s in 0..(MAX_RANGES as u64 * 3) {
            m.record(&lost(s * 2, s * 2));
        }
        assert_eq!(m.lost.len(), MAX_RANGES);
        assert!(m.truncated);
        assert_eq!(m.counts.lost_packets, MAX_RANGES as u64 * 3);
    }

    #[test]
    fn the_book_reports_changes_once_per_version() {
        let book = LossBook::default();
        assert!(book.changed(StreamId(1)).is_none());
        book.record(&lost(3, 3));
        let log = book.changed(StreamId(1)).unwrap();
        assert_eq!(log.counts.lost_packets, 1);
        book.written(StreamId(1), log.version);
        assert!(book.changed(StreamId(1)).is_none());
        book.record(&unindexed(4, 0, 0));
        assert!(book.changed(StreamId(1)).is_some());
        assert_eq!(book.counts(StreamId(1)).unindexed_packets, 1);
        assert_eq!(book.counts(StreamId(2)), LossCounters::default());
        assert!(book.remove(StreamId(1)).is_some());
        assert!(book.changed(StreamId(1)).is_none());
    }

    #[test]
    fn the_sidecar_holds_counts_and_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = LossLog::default();
        log.record(&lost(7, 70));
        log.record(&lost(8, 71));
        log.record(&unindexed(12, 3, 4096));
        write(
            &crate::storage::RealFs::shared(),
            dir.path(),
            "c_0",
            &log,
            true,
            |n| format!("c_0_{n}"),
        )
        .unwrap();
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("c_0.loss.json")).unwrap())
                .unwrap();
        assert_eq!(v["format"], FORMAT);
        assert_eq!(v["stream"], "c_0");
        assert_eq!(v["lost_packets"], 2);
        assert_eq!(v["unindexed_packets"], 1);
        assert_eq!(v["early_expired"], 1);
        assert_eq!(v["lost"][0]["net_seq"], serde_json::json!([7, 8]));
        assert_eq!(v["lost"][0]["packet_seq"], serde_json::json!([70, 71]));
        assert_eq!(v["unindexed"][0]["data_file"], "c_0_3");
        assert_eq!(v["unindexed"][0]["offset"], 4096);
        assert_eq!(v["truncated"], false);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1, "no temporary left");
    }
}
