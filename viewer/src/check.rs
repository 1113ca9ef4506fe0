//! `check`: the integrity of a trace on disk.
//!
//! For every trace directory: the metadata is readable; for every stream: its index header
//! (magic, version, entry length), no torn tail (a length that is not a whole number of
//! entries), entries that are sane (sizes in whole bytes, content within the packet, begin not
//! after end) and ordered (each packet starts where the previous one ended, timestamps and
//! packet_seq_num do not go back), every entry inside its data file, the packet header found at
//! each offset agreeing with the entry (magic, stream class, instance, sizes, timestamps,
//! sequence number, discarded events), and no data after the last indexed packet.
//!
//! Each problem is one line `FILE: offset N: WHAT`, where FILE is relative to the checked root
//! and N is a byte offset in that file (an index file for index problems, a data file for
//! packet problems).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use serde::Serialize;
use trelay_proto::ctf::index::{IndexEntry, IndexHeader, HEADER_LEN, INDEX_MAGIC};
use trelay_proto::ctf::packet::{PacketHeader, WordSize, PACKET_MAGIC};
use trelay_proto::{DecodeError, Decoded};

use crate::trace::{discover_some, label, StreamFiles, TraceDir, TraceError};

/// One integrity problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// File, relative to the checked root.
    pub file: String,
    /// Byte offset in that file.
    pub offset: u64,
    /// What is wrong.
    pub what: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: offset {}: {}", self.file, self.offset, self.what)
    }
}

/// What was checked and what was found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckReport {
    /// Trace directories checked.
    pub traces: u64,
    /// Streams checked.
    pub streams: u64,
    /// Index entries checked.
    pub entries: u64,
    /// Problems, in discovery order.
    pub problems: Vec<Problem>,
}

/// Checks every trace under `root`. Errors only when there is no trace to check.
pub fn check(root: &Path) -> Result<CheckReport, TraceError> {
    let mut r = CheckReport::default();
    for t in discover_some(root)? {
        r.traces += 1;
        let word = check_metadata(root, &t, &mut r);
        for s in &t.streams {
            r.streams += 1;
            check_stream(root, s, word, &mut r);
        }
    }
    Ok(r)
}

impl CheckReport {
    fn problem(&mut self, file: String, offset: u64, what: impl Into<String>) {
        self.problems.push(Problem {
            file,
            offset,
            what: what.into(),
        });
    }
}

fn check_metadata(root: &Path, t: &TraceDir, r: &mut CheckReport) -> WordSize {
    let path = t.metadata_path();
    let file = label(root, &path);
    match std::fs::read(&path) {
        Err(e) => {
            r.problem(file, 0, format!("metadata file unreadable: {e}"));
            WordSize::Bits64
        }
        Ok(bytes) if bytes.is_empty() => {
            r.problem(file, 0, "metadata file is empty");
            WordSize::Bits64
        }
        Ok(bytes) => match crate::tsdl::Metadata::from_file_bytes(&bytes) {
            Ok(md) => md.word_size(),
            Err(e) => {
                r.problem(file, 0, format!("metadata unreadable: {e}"));
                WordSize::Bits64
            }
        },
    }
}

fn check_stream(root: &Path, s: &StreamFiles, word: WordSize, r: &mut CheckReport) {
    let idx_label = label(root, &s.index);
    let data = File::open(&s.data);
    let index = std::fs::read(&s.index);
    let (data, index) = match (data, index) {
        (Err(_), Err(_)) => return,
        (Ok(_), Err(e)) => {
            r.problem(s.label.clone(), 0, format!("no index ({idx_label}: {e})"));
            return;
        }
        (Err(e), Ok(_)) => {
            r.problem(
                idx_label,
                0,
                format!("data file {} unreadable: {e}", s.label),
            );
            return;
        }
        (Ok(d), Ok(i)) => (d, i),
    };
    let data_len = match data.metadata() {
        Ok(m) => m.len(),
        Err(e) => {
            r.problem(s.label.clone(), 0, format!("cannot stat: {e}"));
            return;
        }
    };
    let header = match IndexHeader::decode(&index) {
        Ok(Decoded::Done { msg, .. }) => msg,
        Ok(Decoded::Incomplete { .. }) => {
            r.problem(
                idx_label,
                0,
                format!(
                    "index file is {} bytes, shorter than its {HEADER_LEN}-byte header",
                    index.len()
                ),
            );
            return;
        }
        Err(e) => {
            let (offset, what) = header_problem(&e);
            r.problem(idx_label, offset, what);
            return;
        }
    };
    let body = index.get(HEADER_LEN..).unwrap_or(&[]);
    let entry_len = header.entry_len as usize;
    let whole = body.len() / entry_len;
    let torn = body.len() % entry_len;
    if torn > 0 {
        r.problem(
            idx_label.clone(),
            (HEADER_LEN + whole * entry_len) as u64,
            format!(
                "torn tail: {torn} bytes after the last whole entry ({entry_len}-byte entries)"
            ),
        );
    }
    let mut walk = Walk {
        idx: idx_label,
        data_label: s.label.clone(),
        prev: None,
        covered_end: 0,
        extended: header.entry_len >= 72,
    };
    for n in 0..whole {
        let pos = HEADER_LEN + n * entry_len;
        let Some(Decoded::Done { msg: e, .. }) = body
            .get(n * entry_len..)
            .map(|b| IndexEntry::decode(&header, b))
        else {
            break;
        };
        r.entries += 1;
        walk.entry(r, n as u64, pos as u64, &e, &data, data_len, word);
    }
    if data_len > walk.covered_end {
        r.problem(
            s.label.clone(),
            walk.covered_end,
            format!(
                "{} bytes after the last indexed packet (torn tail or unindexed data)",
                data_len - walk.covered_end
            ),
        );
    }
}

fn header_problem(e: &DecodeError) -> (u64, String) {
    match e {
        DecodeError::BadMagic { found, .. } => (
            0,
            format!("bad index magic {found:#010x}, expected {INDEX_MAGIC:#010x}"),
        ),
        DecodeError::InvalidValue { field, value } => {
            let offset = match *field {
                "index.major" => 4,
                "index.minor" => 8,
                _ => 12,
            };
            (offset, format!("bad index header: {field} = {value}"))
        }
        other => (0, format!("bad index header: {other}")),
    }
}

/// State carried from one entry to the next.
struct Walk {
    idx: String,
    data_label: String,
    prev: Option<IndexEntry>,
    /// End of the furthest packet seen so far.
    covered_end: u64,
    extended: bool,
}

impl Walk {
    #[allow(clippy::too_many_arguments)]
    fn entry(
        &mut self,
        r: &mut CheckReport,
        n: u64,
        pos: u64,
        e: &IndexEntry,
        data: &File,
        data_len: u64,
        word: WordSize,
    ) {
        let idx = self.idx.clone();
        if e.offset == u64::MAX {
            // A lost-packet marker: nothing in the data file to check.
            return;
        }
        let mut sane = true;
        if e.packet_size == 0 || e.packet_size % 8 != 0 {
            r.problem(
                idx.clone(),
                pos,
                format!(
                    "entry {n}: packet_size {} bits is not a positive whole number of bytes",
                    e.packet_size
                ),
            );
            sane = false;
        }
        if e.content_size > e.packet_size {
            r.problem(
                idx.clone(),
                pos,
                format!(
                    "entry {n}: content_size {} bits exceeds packet_size {} bits",
                    e.content_size, e.packet_size
                ),
            );
        }
        if e.timestamp_begin > e.timestamp_end {
            r.problem(
                idx.clone(),
                pos,
                format!(
                    "entry {n}: timestamp_begin {} after timestamp_end {}",
                    e.timestamp_begin, e.timestamp_end
                ),
            );
        }
        if let Some(p) = self.prev {
            let prev_end = p.offset.saturating_add(p.packet_size / 8);
            if e.offset < prev_end {
                r.problem(idx.clone(), pos, format!("entry {n}: out of order: packet offset {} is before the end of the previous packet ({prev_end})", e.offset));
            } else if e.offset > prev_end {
                r.problem(self.data_label.clone(), prev_end, format!("{} bytes between packets not covered by any index entry (before entry {n})", e.offset - prev_end));
            }
            if e.timestamp_begin < p.timestamp_begin {
                r.problem(idx.clone(), pos, format!("entry {n}: out of order: timestamp_begin {} is earlier than the previous entry's {}", e.timestamp_begin, p.timestamp_begin));
            }
            if self.extended
                && e.packet_seq_num != u64::MAX
                && p.packet_seq_num != u64::MAX
                && e.packet_seq_num <= p.packet_seq_num
            {
                r.problem(idx.clone(), pos, format!("entry {n}: out of order: packet_seq_num {} does not follow the previous entry's {}", e.packet_seq_num, p.packet_seq_num));
            }
        } else if e.offset > 0 {
            r.problem(
                self.data_label.clone(),
                0,
                format!("{} bytes before the first indexed packet", e.offset),
            );
        }
        let end = e.offset.saturating_add(e.packet_size / 8);
        self.prev = Some(*e);
        self.covered_end = self.covered_end.max(end);
        if !sane {
            return;
        }
        if end > data_len {
            r.problem(self.data_label.clone(), e.offset, format!("entry {n}: packet of {} bytes ends at {end}, past the end of the data file ({data_len} bytes)", e.packet_size / 8));
        }
        self.packet_header(r, n, e, data, word);
    }

    fn packet_header(
        &self,
        r: &mut CheckReport,
        n: u64,
        e: &IndexEntry,
        data: &File,
        word: WordSize,
    ) {
        let mut buf = [0u8; 84];
        let len = word.header_len();
        let got = read_full_at(data, &mut buf[..len], e.offset);
        let file = self.data_label.clone();
        let h = match PacketHeader::decode(buf.get(..got).unwrap_or(&[]), word) {
            Ok(Decoded::Done { msg, .. }) => msg,
            Ok(Decoded::Incomplete { .. }) => {
                r.problem(
                    file,
                    e.offset,
                    format!("entry {n}: only {got} bytes of packet header at this offset"),
                );
                return;
            }
            Err(_) => {
                let found = buf
                    .get(..4)
                    .and_then(|b| <[u8; 4]>::try_from(b).ok())
                    .map(u32::from_le_bytes)
                    .unwrap_or(0);
                r.problem(
                    file,
                    e.offset,
                    format!(
                        "entry {n}: bad packet magic {found:#010x}, expected {PACKET_MAGIC:#010x}"
                    ),
                );
                return;
            }
        };
        let mut fields = vec![
            ("stream_id", u64::from(h.stream_id), e.stream_id),
            ("packet_size", h.packet_size, e.packet_size),
            ("content_size", h.content_size, e.content_size),
            ("timestamp_begin", h.timestamp_begin, e.timestamp_begin),
            ("timestamp_end", h.timestamp_end, e.timestamp_end),
            ("events_discarded", h.events_discarded, e.events_discarded),
        ];
        if self.extended {
            fields.push((
                "stream_instance_id",
                h.stream_instance_id,
                e.stream_instance_id,
            ));
            fields.push(("packet_seq_num", h.packet_seq_num, e.packet_seq_num));
        }
        for (name, in_packet, in_index) in fields {
            if in_packet != in_index {
                r.problem(file.clone(), e.offset, format!("entry {n}: packet header has {name} {in_packet}, index entry says {in_index}"));
            }
        }
    }
}

/// Reads as much of `buf` as the file holds at `offset`; returns the count.
fn read_full_at(f: &File, buf: &mut [u8], offset: u64) -> usize {
    let mut got = 0usize;
    while got < buf.len() {
        let Some(rest) = buf.get_mut(got..) else {
            break;
        };
        match f.read_at(rest, offset.saturating_add(got as u64)) {
            Ok(0) | Err(_) => break,
            Ok(k) => got += k,
        }
    }
    got
}
