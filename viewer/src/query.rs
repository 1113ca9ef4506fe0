//! `index`: questions answered from the on-disk index alone (no data file is read).
//!
//! Per stream: packets, bytes, time span, events discarded by the tracer (the cumulative
//! counter of the last packet), gaps in `packet_seq_num` (packets the tracer discarded, or
//! that never reached the relay) and lost-packet markers (entries whose offset is all ones:
//! the relay learnt of a packet whose data never arrived). Optionally the packets overlapping a
//! time range, with their file and offset.

use std::path::Path;

use serde::Serialize;
use trelay_proto::ctf::index::{IndexEntry, IndexFile};

use crate::report::PacketLine;
use crate::time::TimeArg;
use crate::trace::{discover_some, label, stream_selected, StreamFiles, TraceError};
use crate::tsdl::Clock;

/// What to ask.
#[derive(Debug, Clone, Default)]
pub struct IndexQuery {
    /// Only streams whose file name or path matches this glob.
    pub stream_glob: Option<String>,
    /// Lower bound of the time range (inclusive).
    pub from: Option<TimeArg>,
    /// Upper bound of the time range (inclusive).
    pub to: Option<TimeArg>,
    /// List every packet even without a range.
    pub all_packets: bool,
}

impl IndexQuery {
    fn lists_packets(&self) -> bool {
        self.all_packets || self.from.is_some() || self.to.is_some()
    }
}

/// The answer for a whole root folder.
#[derive(Debug, Clone, Serialize)]
pub struct IndexReport {
    /// One entry per trace directory.
    pub traces: Vec<TraceReport>,
}

/// The clock of a trace, as its metadata declares it.
#[derive(Debug, Clone, Serialize)]
pub struct ClockInfo {
    /// Name.
    pub name: String,
    /// Frequency, Hz.
    pub freq: u64,
    /// Offset from the Epoch, seconds.
    pub offset_s: i64,
    /// Further offset, cycles.
    pub offset: i64,
}

/// The answer for one trace directory.
#[derive(Debug, Clone, Serialize)]
pub struct TraceReport {
    /// Trace directory relative to the root.
    pub trace: String,
    /// Its clock, if the metadata names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clock: Option<ClockInfo>,
    /// Why the metadata could not be read, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata_error: Option<String>,
    /// The range asked, in cycles of this trace's clock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range: Option<[u64; 2]>,
    /// Per-stream facts.
    pub streams: Vec<StreamSummary>,
    /// Packets overlapping the range (or all, when asked), by stream then file order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub packets: Vec<PacketLine>,
}

/// A jump in `packet_seq_num` between two consecutive entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeqGap {
    /// Sequence number before the gap.
    pub after: u64,
    /// Sequence number after the gap.
    pub next: u64,
    /// Packets missing in between.
    pub missing: u64,
}

/// An index entry marking a lost packet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LostMarker {
    /// Entry number in the index file.
    pub entry: u64,
    /// Its packet_seq_num, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// Its timestamps (cycles).
    pub begin: u64,
    /// End timestamp (cycles).
    pub end: u64,
}

/// Facts about one stream's index.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StreamSummary {
    /// Data file relative to the root.
    pub stream: String,
    /// Index file relative to the root.
    pub index: String,
    /// Why the index could not be read, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Indexed packets (lost-packet markers excluded).
    pub packets: u64,
    /// Bytes of those packets.
    pub bytes: u64,
    /// Earliest timestamp_begin (cycles).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub begin: Option<u64>,
    /// Latest timestamp_end (cycles).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<u64>,
    /// `begin` as RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub begin_time: Option<String>,
    /// `end` as RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    /// Events discarded by the tracer (cumulative counter of the last packet).
    pub events_discarded: u64,
    /// Gaps in packet_seq_num.
    pub seq_gaps: Vec<SeqGap>,
    /// Lost-packet markers.
    pub lost: Vec<LostMarker>,
    /// Bytes of a partially written entry at the end of the index.
    pub torn_tail: u64,
    /// The relay's loss log for this stream (`index/<stream>.loss.json`, written by trelayd), if
    /// there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss_log: Option<LossLog>,
}

/// What trelayd's loss sidecar (`index/<stream>.loss.json`, format `trelay-loss/1`) says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct LossLog {
    /// Packets whose index arrived but whose data never did.
    #[serde(default)]
    pub lost_packets: u64,
    /// Packets whose data is in the data file without an index entry.
    #[serde(default)]
    pub unindexed_packets: u64,
    /// Lost ranges: `net_seq` and `packet_seq` as `[first, last]`.
    #[serde(default)]
    pub lost: Vec<serde_json::Value>,
    /// Unindexed ranges, with their data file offset and size.
    #[serde(default)]
    pub unindexed: Vec<serde_json::Value>,
    /// Whether ranges were dropped (counts stay exact).
    #[serde(default)]
    pub truncated: bool,
}

/// Reads the loss sidecar of stream `name` in `trace_dir`, if any: `index/<name>.loss.json`, or
/// for tracefile-rotated files `<stream>_<n>`, the stream's own sidecar (only for file 0).
pub fn read_loss_log(trace_dir: &Path, name: &str) -> Option<LossLog> {
    let mut candidates = vec![name.to_owned()];
    if let Some(stem) = name.strip_suffix("_0") {
        candidates.push(stem.to_owned());
    }
    candidates.into_iter().find_map(|n| {
        let text = std::fs::read(trace_dir.join("index").join(format!("{n}.loss.json"))).ok()?;
        serde_json::from_slice(&text).ok()
    })
}

/// Summarises the entries of one index.
pub fn summarize(entries: &[IndexEntry], clock: Option<&Clock>) -> StreamSummary {
    let mut s = StreamSummary::default();
    let mut prev_seq: Option<u64> = None;
    for (n, e) in entries.iter().enumerate() {
        let seq = (e.packet_seq_num != u64::MAX).then_some(e.packet_seq_num);
        if let (Some(p), Some(q)) = (prev_seq, seq) {
            if q > p.saturating_add(1) {
                s.seq_gaps.push(SeqGap {
                    after: p,
                    next: q,
                    missing: q - p - 1,
                });
            }
        }
        if seq.is_some() {
            prev_seq = seq;
        }
        if e.offset == u64::MAX {
            s.lost.push(LostMarker {
                entry: n as u64,
                seq,
                begin: e.timestamp_begin,
                end: e.timestamp_end,
            });
            continue;
        }
        s.packets += 1;
        s.bytes = s.bytes.saturating_add(e.packet_size / 8);
        s.begin = Some(
            s.begin
                .map_or(e.timestamp_begin, |b| b.min(e.timestamp_begin)),
        );
        s.end = Some(s.end.map_or(e.timestamp_end, |b| b.max(e.timestamp_end)));
        s.events_discarded = s.events_discarded.max(e.events_discarded);
    }
    if let Some(c) = clock {
        s.begin_time = s.begin.map(|b| c.format(b));
        s.end_time = s.end.map(|b| c.format(b));
    }
    s
}

/// Errors of a query.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// Reading the traces failed.
    #[error(transparent)]
    Trace(#[from] TraceError),
    /// A time bound could not be applied.
    #[error("{trace}: {msg}")]
    Time {
        /// The trace.
        trace: String,
        /// Why.
        msg: String,
    },
}

/// Answers `q` for every trace under `root`.
pub fn query(root: &Path, q: &IndexQuery) -> Result<IndexReport, QueryError> {
    let mut traces = Vec::new();
    for t in discover_some(root)? {
        let (clock, metadata_error) = match t.metadata() {
            Ok(md) => (md.clock().cloned(), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let bound = |arg: Option<TimeArg>, lower: bool, dflt: u64| {
            arg.map_or(Ok(dflt), |a| a.to_cycles(clock.as_ref(), lower))
                .map_err(|msg| QueryError::Time {
                    trace: t.label.clone(),
                    msg,
                })
        };
        let range = if q.lists_packets() {
            Some([bound(q.from, true, 0)?, bound(q.to, false, u64::MAX)?])
        } else {
            None
        };
        let mut report = TraceReport {
            trace: t.label.clone(),
            clock: clock.as_ref().map(|c| ClockInfo {
                name: c.name.clone(),
                freq: c.freq,
                offset_s: c.offset_s,
                offset: c.offset,
            }),
            metadata_error,
            range,
            streams: Vec::new(),
            packets: Vec::new(),
        };
        for s in t
            .streams
            .iter()
            .filter(|s| stream_selected(s, q.stream_glob.as_deref()))
        {
            stream_report(root, s, clock.as_ref(), range, &mut report);
        }
        traces.push(report);
    }
    Ok(IndexReport { traces })
}

fn stream_report(
    root: &Path,
    s: &StreamFiles,
    clock: Option<&Clock>,
    range: Option<[u64; 2]>,
    report: &mut TraceReport,
) {
    let index_label = label(root, &s.index);
    let parsed = std::fs::read(&s.index)
        .map_err(|e| e.to_string())
        .and_then(|b| IndexFile::parse(&b).map_err(|e| e.to_string()));
    let file = match parsed {
        Ok(f) => f,
        Err(e) => {
            report.streams.push(StreamSummary {
                stream: s.label.clone(),
                index: index_label,
                error: Some(e),
                ..StreamSummary::default()
            });
            return;
        }
    };
    let mut sum = summarize(&file.entries, clock);
    sum.stream = s.label.clone();
    sum.index = index_label;
    sum.torn_tail = file.torn_tail as u64;
    sum.loss_log = s.data.parent().and_then(|d| read_loss_log(d, &s.name));
    report.streams.push(sum);
    if let Some([from, to]) = range {
        let mut prev: Option<u64> = None;
        for e in &file.entries {
            if e.timestamp_begin <= to && e.timestamp_end >= from {
                report
                    .packets
                    .push(PacketLine::from_entry(&s.label, e, clock, prev));
            }
            if e.offset != u64::MAX {
                prev = Some(e.events_discarded);
            }
        }
    }
}

/// The report as text.
pub fn render_text(r: &IndexReport) -> String {
    let mut out = String::new();
    for t in &r.traces {
        out.push_str(&format!("trace {}", t.trace));
        match &t.clock {
            Some(c) => out.push_str(&format!(
                " (clock {}: {} Hz, offset {} s + {} cycles)\n",
                c.name, c.freq, c.offset_s, c.offset
            )),
            None => out.push_str(" (no clock: times in cycles only)\n"),
        }
        if let Some(e) = &t.metadata_error {
            out.push_str(&format!("  metadata: {e}\n"));
        }
        for s in &t.streams {
            out.push_str(&stream_text(s));
        }
        if let Some([from, to]) = t.range {
            out.push_str(&format!(
                "  {} packet(s) overlapping cycles {from} .. {to}:\n",
                t.packets.len()
            ));
            for p in &t.packets {
                out.push_str(&format!("    {}\n", p.summary()));
            }
        }
    }
    out
}

fn stream_text(s: &StreamSummary) -> String {
    let mut out = format!("  {}: ", s.stream);
    if let Some(e) = &s.error {
        out.push_str(&format!("index {}: {e}\n", s.index));
        return out;
    }
    out.push_str(&format!("{} packets, {} bytes", s.packets, s.bytes));
    if let (Some(b), Some(e)) = (s.begin, s.end) {
        out.push_str(&format!(", cycles {b} .. {e}"));
    }
    if let (Some(b), Some(e)) = (&s.begin_time, &s.end_time) {
        out.push_str(&format!(" [{b} .. {e}]"));
    }
    out.push_str(&format!(
        ", {} events discarded, {} seq gap(s), {} lost-packet marker(s)",
        s.events_discarded,
        s.seq_gaps.len(),
        s.lost.len()
    ));
    if s.torn_tail > 0 {
        out.push_str(&format!(", torn index tail of {} bytes", s.torn_tail));
    }
    out.push('\n');
    if let Some(l) = &s.loss_log {
        out.push_str(&format!(
            "    relay loss log: {} lost packet(s), {} unindexed packet(s){}\n",
            l.lost_packets,
            l.unindexed_packets,
            if l.truncated {
                " (ranges truncated)"
            } else {
                ""
            }
        ));
        for r in &l.lost {
            out.push_str(&format!("      lost {r}\n"));
        }
        for r in &l.unindexed {
            out.push_str(&format!("      unindexed {r}\n"));
        }
    }
    for g in &s.seq_gaps {
        out.push_str(&format!(
            "    gap: packet_seq_num {} -> {} ({} missing)\n",
            g.after, g.next, g.missing
        ));
    }
    for l in &s.lost {
        let seq = l.seq.map(|q| format!(" seq={q}")).unwrap_or_default();
        out.push_str(&format!(
            "    lost: entry {}{seq} begin={} end={}\n",
            l.entry, l.begin, l.end
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(offset: u64, seq: u64, b: u64, end: u64, disc: u64) -> IndexEntry {
        IndexEntry {
            offset,
            packet_size: 4096 * 8,
            content_size: 100 * 8,
            timestamp_begin: b,
            timestamp_end: end,
            events_discarded: disc,
            stream_id: 0,
            stream_instance_id: 0,
            packet_seq_num: seq,
        }
    }

    #[test]
    fn gaps_markers_and_counts() {
        let entries = [
            e(0, 0, 10, 20, 0),
            e(4096, 1, 20, 30, 0),
            e(u64::MAX, 2, 30, 40, 0),
            e(8192, 5, 50, 60, 7),
        ];
        let s = summarize(&entries, None);
        assert_eq!(s.packets, 3);
        assert_eq!(s.bytes, 3 * 4096);
        assert_eq!((s.begin, s.end), (Some(10), Some(60)));
        assert_eq!(s.events_discarded, 7);
        assert_eq!(
            s.seq_gaps,
            [SeqGap {
                after: 2,
                next: 5,
                missing: 2
            }]
        );
        assert_eq!(s.lost.len(), 1);
        assert_eq!(s.lost[0].entry, 2);
        assert_eq!(s.lost[0].seq, Some(2));
        let text = stream_text(&s);
        assert!(
            text.contains("gap: packet_seq_num 2 -> 5 (2 missing)"),
            "{text}"
        );
        assert!(
            text.contains("lost: entry 2 seq=2 begin=30 end=40"),
            "{text}"
        );
    }

    #[test]
    fn unknown_seq_numbers_make_no_gaps() {
        let s = summarize(&[e(0, u64::MAX, 1, 2, 0), e(4096, u64::MAX, 3, 4, 0)], None);
        assert!(s.seq_gaps.is_empty());
    }
}
