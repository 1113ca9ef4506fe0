//! The packets of one stream file, with their index entries.
//!
//! Entries come from the stream's index file when it has one (read ahead in blocks), or else
//! from the CTF packet header and context at the start of each packet. Either way a packet is
//! handed out only once the data file holds all of it, so the same source serves a finished
//! trace and one still being written: [`PacketSource::next_packet`] answers `None` when nothing
//! complete is available yet and may answer again later.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use trelay_proto::ctf::index::{IndexEntry, IndexHeader, HEADER_LEN};
use trelay_proto::ctf::packet::{PacketHeader, WordSize};
use trelay_proto::Decoded;

use super::walk::StreamFile;
use super::TraceError;

/// Largest packet accepted (the relay data header's size field is 32 bits).
pub const MAX_PACKET_LEN: u64 = 1 << 30;
/// Bytes of index file read at once.
const INDEX_READ_AHEAD: usize = 64 * 1024;

/// Where entries come from.
#[derive(Debug)]
enum Mode {
    /// Index file not there yet and no packet seen (following a trace being created).
    Undecided,
    /// From the index file.
    Index {
        file: File,
        header: IndexHeader,
        /// File position of the next unread byte.
        pos: u64,
        /// Read-ahead bytes from `pos - buf.len() + consumed`.
        buf: Vec<u8>,
        consumed: usize,
    },
    /// From packet headers.
    Scan,
}

/// The packets of one stream file, in file order.
#[derive(Debug)]
pub struct PacketSource {
    data_path: PathBuf,
    index_path: PathBuf,
    data: File,
    data_len: u64,
    word: WordSize,
    mode: Mode,
    next_offset: u64,
    head: [u8; 84],
}

impl PacketSource {
    /// Opens `stream`. With `wait_for_index` (following a growing trace) a missing index file is
    /// waited for until the first packet is complete; otherwise a stream without a usable index
    /// file is read from its packet headers at once.
    pub fn open(
        stream: &StreamFile,
        word: WordSize,
        wait_for_index: bool,
    ) -> Result<Self, TraceError> {
        let data = File::open(&stream.data).map_err(|e| TraceError::io(&stream.data, e))?;
        let mut src = PacketSource {
            data_path: stream.data.clone(),
            index_path: stream.index.clone(),
            data,
            data_len: 0,
            word,
            mode: Mode::Undecided,
            next_offset: 0,
            head: [0; 84],
        };
        src.try_index()?;
        if !wait_for_index && matches!(src.mode, Mode::Undecided) {
            tracing::debug!(stream = %stream.data.display(), "no index file, reading packet headers");
            src.mode = Mode::Scan;
        }
        Ok(src)
    }

    /// Whether entries come from an index file.
    pub fn uses_index(&self) -> bool {
        matches!(self.mode, Mode::Index { .. })
    }

    /// Path of the data file.
    pub fn data_path(&self) -> &Path {
        &self.data_path
    }

    /// The data file (for sending packet bytes from it).
    pub fn data_file(&self) -> &File {
        &self.data
    }

    /// Offset right after the last packet handed out.
    pub fn position(&self) -> u64 {
        self.next_offset
    }

    /// Bytes of the data file after the last packet handed out (as of the last size check).
    pub fn trailing_bytes(&mut self) -> Result<u64, TraceError> {
        self.refresh_len()?;
        Ok(self.data_len.saturating_sub(self.next_offset))
    }

    /// Current size of the data file.
    pub fn data_len(&mut self) -> Result<u64, TraceError> {
        self.refresh_len()?;
        Ok(self.data_len)
    }

    fn refresh_len(&mut self) -> Result<(), TraceError> {
        self.data_len = self
            .data
            .metadata()
            .map_err(|e| TraceError::io(&self.data_path, e))?
            .len();
        Ok(())
    }

    /// Switches to index mode if the index file exists with a valid header.
    fn try_index(&mut self) -> Result<(), TraceError> {
        let file = match File::open(&self.index_path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(TraceError::io(&self.index_path, e)),
        };
        let mut raw = [0u8; HEADER_LEN];
        match file.read_exact_at(&mut raw, 0) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(TraceError::io(&self.index_path, e)),
        }
        match IndexHeader::decode(&raw) {
            Ok(Decoded::Done { msg: header, .. }) => {
                self.mode = Mode::Index {
                    file,
                    header,
                    pos: HEADER_LEN as u64,
                    buf: Vec::with_capacity(INDEX_READ_AHEAD),
                    consumed: 0,
                };
            }
            Ok(Decoded::Incomplete { .. }) => {}
            Err(e) => {
                tracing::warn!(index = %self.index_path.display(), error = %e,
                    "unusable index file, reading packet headers instead");
                self.mode = Mode::Scan;
            }
        }
        Ok(())
    }

    /// The next complete packet's index entry (`offset` is its position in the data file), or
    /// `None` if none is complete yet.
    pub fn next_packet(&mut self) -> Result<Option<IndexEntry>, TraceError> {
        if matches!(self.mode, Mode::Undecided) {
            self.try_index()?;
            if matches!(self.mode, Mode::Undecided) {
                // Still no index: scan once a whole packet is on disk (a tracer that writes an
                // index creates it with the stream, before any packet).
                if self.scan_entry()?.is_none() {
                    return Ok(None);
                }
                tracing::debug!(stream = %self.data_path.display(), "no index file, reading packet headers");
                self.mode = Mode::Scan;
            }
        }
        let entry = match self.mode {
            Mode::Index { .. } => self.index_entry()?,
            _ => self.scan_entry()?,
        };
        let Some(entry) = entry else {
            return Ok(None);
        };
        if let Mode::Index {
            consumed, header, ..
        } = &mut self.mode
        {
            *consumed += header.entry_len as usize;
        }
        self.next_offset += entry.packet_size / 8;
        Ok(Some(entry))
    }

    /// Peeks at the next index file entry and checks it against the data file.
    fn index_entry(&mut self) -> Result<Option<IndexEntry>, TraceError> {
        let Mode::Index {
            file,
            header,
            pos,
            buf,
            consumed,
        } = &mut self.mode
        else {
            return Ok(None);
        };
        let len = header.entry_len as usize;
        if buf.len() - *consumed < len {
            buf.drain(..*consumed);
            *consumed = 0;
            let old = buf.len();
            buf.resize(old + INDEX_READ_AHEAD, 0);
            let n = file
                .read_at(&mut buf[old..], *pos)
                .map_err(|e| TraceError::io(&self.index_path, e))?;
            buf.truncate(old + n);
            *pos += n as u64;
        }
        let entry = match IndexEntry::decode(header, &buf[*consumed..]) {
            Decoded::Done { msg, .. } => msg,
            Decoded::Incomplete { .. } => return Ok(None),
        };
        if entry.offset != self.next_offset {
            return Err(TraceError::Index {
                path: self.index_path.clone(),
                reason: format!(
                    "entry at data offset {} where the previous packet ended at {}",
                    entry.offset, self.next_offset
                ),
            });
        }
        check_sizes(&entry).map_err(|reason| TraceError::Index {
            path: self.index_path.clone(),
            reason,
        })?;
        if !self.available(entry.packet_size / 8)? {
            return Ok(None);
        }
        Ok(Some(entry))
    }

    /// Reads the packet header at the current offset, if the whole packet is on disk.
    fn scan_entry(&mut self) -> Result<Option<IndexEntry>, TraceError> {
        let hlen = self.word.header_len() as u64;
        if !self.available(hlen)? {
            return Ok(None);
        }
        let head = &mut self.head[..hlen as usize];
        self.data
            .read_exact_at(head, self.next_offset)
            .map_err(|e| TraceError::io(&self.data_path, e))?;
        let bad = |reason: String| TraceError::Packet {
            path: self.data_path.clone(),
            offset: self.next_offset,
            reason,
        };
        let h = match PacketHeader::decode(head, self.word) {
            Ok(Decoded::Done { msg, .. }) => msg,
            Ok(Decoded::Incomplete { .. }) => return Ok(None),
            Err(e) => return Err(bad(e.to_string())),
        };
        let entry = IndexEntry {
            offset: self.next_offset,
            packet_size: h.packet_size,
            content_size: h.content_size,
            timestamp_begin: h.timestamp_begin,
            timestamp_end: h.timestamp_end,
            events_discarded: h.events_discarded,
            stream_id: u64::from(h.stream_id),
            stream_instance_id: h.stream_instance_id,
            packet_seq_num: h.packet_seq_num,
        };
        check_sizes(&entry).map_err(bad)?;
        if entry.content_size < hlen * 8 {
            return Err(bad(format!(
                "content size {} bits is smaller than the header",
                entry.content_size
            )));
        }
        if !self.available(entry.packet_size / 8)? {
            return Ok(None);
        }
        Ok(Some(entry))
    }

    /// Whether the data file holds `len` bytes from the current offset (re-checking its size
    /// only when the cached one is too small).
    fn available(&mut self, len: u64) -> Result<bool, TraceError> {
        let end = self.next_offset.saturating_add(len);
        if end <= self.data_len {
            return Ok(true);
        }
        self.refresh_len()?;
        Ok(end <= self.data_len)
    }
}

/// Checks an entry's sizes: whole bytes, content within packet, packet within limits.
fn check_sizes(e: &IndexEntry) -> Result<(), String> {
    if e.packet_size == 0 || e.packet_size % 8 != 0 || e.packet_size / 8 > MAX_PACKET_LEN {
        return Err(format!("bad packet size {} bits", e.packet_size));
    }
    if e.content_size > e.packet_size {
        return Err(format!(
            "content size {} bits exceeds packet size {} bits",
            e.content_size, e.packet_size
        ));
    }
    Ok(())
}

/// Bytes of a packet's content (its content size rounded up to whole bytes).
pub fn content_len(e: &IndexEntry) -> u64 {
    e.content_size.div_ceil(8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{write_trace_dir, SynthTrace};
    use proptest::prelude::*;

    fn stream(dir: &Path, n: u32) -> StreamFile {
        StreamFile {
            name: format!("channel0_{n}"),
            data: dir.join(format!("channel0_{n}")),
            index: dir.join("index").join(format!("channel0_{n}.idx")),
        }
    }

    fn drain(src: &mut PacketSource) -> Vec<IndexEntry> {
        std::iter::from_fn(|| src.next_packet().unwrap()).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn index_and_headers_agree(len in 148usize..20_000, packets in 1u64..6) {
            let dir = tempfile::tempdir().unwrap();
            let trace = SynthTrace::new("h", "t", len);
            write_trace_dir(&trace, dir.path(), 1, packets).unwrap();
            let s = stream(dir.path(), 0);
            let mut with_index = PacketSource::open(&s, WordSize::Bits64, false).unwrap();
            prop_assert!(with_index.uses_index());
            let a = drain(&mut with_index);
            std::fs::remove_file(&s.index).unwrap();
            let mut scanned = PacketSource::open(&s, WordSize::Bits64, false).unwrap();
            prop_assert!(!scanned.uses_index());
            let b = drain(&mut scanned);
            prop_assert_eq!(a.len() as u64, packets);
            prop_assert_eq!(&a, &b);
            prop_assert_eq!(a[0].offset, 0);
            prop_assert_eq!(with_index.trailing_bytes().unwrap(), 0);
        }
    }

    #[test]
    fn growing_file_yields_whole_packets_only() {
        let dir = tempfile::tempdir().unwrap();
        let trace = SynthTrace::new("h", "t", 4096);
        write_trace_dir(&trace, dir.path(), 1, 3).unwrap();
        let s = stream(dir.path(), 0);
        let full = std::fs::read(&s.data).unwrap();
        let full_idx = std::fs::read(&s.index).unwrap();
        // Index says 3 packets, data holds one and a half.
        std::fs::write(&s.data, &full[..6000]).unwrap();
        let mut src = PacketSource::open(&s, WordSize::Bits64, true).unwrap();
        assert_eq!(drain(&mut src).len(), 1);
        std::fs::write(&s.data, &full).unwrap();
        assert_eq!(drain(&mut src).len(), 2);
        assert_eq!(src.position(), 3 * 4096);
        // Without index, waiting mode decides once a packet is complete.
        std::fs::remove_file(&s.index).unwrap();
        std::fs::write(&s.data, &full[..100]).unwrap();
        let mut src = PacketSource::open(&s, WordSize::Bits64, true).unwrap();
        assert!(src.next_packet().unwrap().is_none());
        std::fs::write(&s.index, &full_idx[..10]).unwrap();
        assert!(src.next_packet().unwrap().is_none());
        std::fs::write(&s.index, &full_idx).unwrap();
        std::fs::write(&s.data, &full).unwrap();
        assert_eq!(drain(&mut src).len(), 3);
        assert!(src.uses_index());
    }

    #[test]
    fn inconsistent_index_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let trace = SynthTrace::new("h", "t", 4096);
        write_trace_dir(&trace, dir.path(), 1, 2).unwrap();
        let s = stream(dir.path(), 0);
        let mut idx = std::fs::read(&s.index).unwrap();
        // Second entry's offset: 4096 -> 4000.
        let at = HEADER_LEN + 72;
        idx[at..at + 8].copy_from_slice(&4000u64.to_be_bytes());
        std::fs::write(&s.index, &idx).unwrap();
        let mut src = PacketSource::open(&s, WordSize::Bits64, false).unwrap();
        assert!(src.next_packet().unwrap().is_some());
        assert!(matches!(src.next_packet(), Err(TraceError::Index { .. })));
    }

    #[test]
    fn garbage_data_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let s = stream(dir.path(), 0);
        std::fs::write(&s.data, [0xabu8; 500]).unwrap();
        let mut src = PacketSource::open(&s, WordSize::Bits64, false).unwrap();
        assert!(matches!(src.next_packet(), Err(TraceError::Packet { .. })));
    }
}
