//! The files of a stream: data files and index files, created inside the stream's chunk.
//!
//! Data files are written with positional writes by the connection that owns the stream; index
//! files are appended to only by the commit group (see [`super::commit`]), which tracks their
//! length. Files are created with mode 0660 (subject to the umask); an existing file of the same
//! name is replaced (unlinked first, so a reader holding it keeps the old content).

use super::chunk::{lock, Chunk};
use super::layout::stream_file_name;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::{Arc, Mutex};
use trelay_proto::ctf::index::{encode_header, IndexEntry, IndexVersion, HEADER_LEN};

fn create(dir: &Path, name: &str) -> std::io::Result<File> {
    let path = dir.join(name);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o660)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
}

/// Creates data file number `file_no` of stream `name` in `chunk`/`path`.
pub fn create_data(
    chunk: &Chunk,
    path: &str,
    name: &str,
    tracefile_size: u64,
    file_no: u64,
) -> std::io::Result<Arc<File>> {
    let file_name = stream_file_name(name, tracefile_size, file_no, "");
    let file = chunk.with_trace_dir(path, |dir| create(dir, &file_name))?;
    crate::storage::lock::hold_from(&file, 0);
    Ok(Arc::new(file))
}

/// An index file and the length written so far (header included).
#[derive(Debug)]
pub struct IndexFile {
    file: File,
    /// The data file whose packets this index describes.
    pub data: Arc<File>,
    version: IndexVersion,
    len: Mutex<u64>,
    committed_entries: Mutex<u64>,
}

impl IndexFile {
    /// Creates index file number `file_no` of stream `name` (in `path/index/`) with its header,
    /// paired with its data file.
    #[allow(clippy::too_many_arguments)]
    pub fn create(
        data: Arc<File>,
        chunk: &Chunk,
        path: &str,
        name: &str,
        tracefile_size: u64,
        file_no: u64,
        version: IndexVersion,
    ) -> std::io::Result<Arc<IndexFile>> {
        let file_name = stream_file_name(name, tracefile_size, file_no, ".idx");
        let dir = if path.is_empty() {
            "index".to_owned()
        } else {
            format!("{path}/index")
        };
        let file = chunk.with_dir(&dir, |d| create(d, &file_name))?;
        let mut header = Vec::with_capacity(HEADER_LEN);
        encode_header(version, &mut header);
        file.write_all_at(&header, 0)?;
        crate::storage::lock::hold_from(&file, header.len() as u64);
        Ok(Arc::new(IndexFile {
            file,
            data,
            version,
            len: Mutex::new(header.len() as u64),
            committed_entries: Mutex::new(0),
        }))
    }

    /// Appends entries (one write).
    pub fn append(&self, entries: &[IndexEntry], buf: &mut Vec<u8>) -> std::io::Result<()> {
        buf.clear();
        for e in entries {
            e.encode(self.version, buf);
        }
        let mut len = lock(&self.len);
        self.file.write_all_at(buf, *len)?;
        *len = len.saturating_add(buf.len() as u64);
        Ok(())
    }

    /// Flushes file data to the disk.
    pub fn sync(&self) -> std::io::Result<()> {
        self.file.sync_data()
    }

    /// Records that `n` more entries of this file are durable and visible, the last one ending
    /// at `data_end` in the data file, and moves both files' frontier locks.
    pub fn advance_committed(&self, n: u64, data_end: u64) {
        let mut c = lock(&self.committed_entries);
        *c = c.saturating_add(n);
        crate::storage::lock::hold_from(&self.file, *lock(&self.len));
        crate::storage::lock::hold_from(&self.data, data_end);
    }

    /// Entries of this file that are committed.
    pub fn committed_entries(&self) -> u64 {
        *lock(&self.committed_entries)
    }

    /// Reads entry number `n` of this file (positional read; only committed entries are
    /// complete on disk, the caller bounds `n`).
    pub fn read_entry(&self, n: u64) -> std::io::Result<IndexEntry> {
        use trelay_proto::ctf::index::IndexHeader;
        use trelay_proto::Decoded;
        let header = IndexHeader::new(self.version);
        let pos = header
            .entry_position(n)
            .ok_or_else(|| std::io::Error::other("index entry position overflows"))?;
        let mut buf = [0u8; 128];
        let len = usize::try_from(header.entry_len).unwrap_or(usize::MAX);
        let bytes = buf
            .get_mut(..len)
            .ok_or_else(|| std::io::Error::other("index entry too long"))?;
        self.file.read_exact_at(bytes, pos)?;
        match IndexEntry::decode(&header, bytes) {
            Decoded::Done { msg, .. } => Ok(msg),
            Decoded::Incomplete { .. } => Err(std::io::Error::other("short index entry")),
        }
    }
}

/// Zeros for padding writes.
const ZEROS: [u8; 4096] = [0; 4096];

/// Writes `len` zero bytes at `offset`.
pub fn write_zeros(file: &File, mut offset: u64, mut len: u64) -> std::io::Result<()> {
    while len > 0 {
        let n = len.min(ZEROS.len() as u64);
        let chunk = ZEROS.get(..n as usize).unwrap_or(&ZEROS);
        file.write_all_at(chunk, offset)?;
        offset = offset.saturating_add(n);
        len -= n;
    }
    Ok(())
}

/// Writes `payload` then `padding` zero bytes at `offset`, in one positional vectored write when
/// the kernel takes it all (the usual case), else finishing with plain writes.
pub fn write_padded(file: &File, offset: u64, payload: &[u8], padding: u64) -> std::io::Result<()> {
    use std::io::IoSlice;
    const SLOTS: usize = 16;
    let mut iov = [IoSlice::new(&[]); SLOTS + 1];
    let mut used = 1;
    let mut zeros_in_iov = 0u64;
    if let Some(first) = iov.first_mut() {
        *first = IoSlice::new(payload);
    }
    let mut left = padding;
    while left > 0 && used < iov.len() {
        let n = left.min(ZEROS.len() as u64);
        if let Some(slot) = iov.get_mut(used) {
            *slot = IoSlice::new(ZEROS.get(..n as usize).unwrap_or(&ZEROS));
        }
        used += 1;
        left -= n;
        zeros_in_iov += n;
    }
    let pos = i64::try_from(offset).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    let written = nix::sys::uio::pwritev(file, iov.get(..used).unwrap_or_default(), pos)? as u64;
    let plen = payload.len() as u64;
    let total = plen.saturating_add(padding);
    if written >= total {
        return Ok(());
    }
    // A short write: finish what is missing.
    if written < plen {
        let rest = payload.get(written as usize..).unwrap_or_default();
        file.write_all_at(rest, offset.saturating_add(written))?;
    }
    let zeros_done = written.saturating_sub(plen).min(zeros_in_iov);
    write_zeros(
        file,
        offset.saturating_add(plen).saturating_add(zeros_done),
        padding - zeros_done,
    )
}

#[cfg(test)]
mod padded_tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    #[test]
    fn payload_and_padding_land_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let f = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("d"))
            .unwrap();
        f.write_all_at(&[9u8; 8], 0).unwrap();
        // Padding longer than the vectored slots hold is finished with plain writes.
        for (payload, padding) in [(3usize, 0u64), (5, 44), (1, 4096 * 16 + 7), (0, 100)] {
            let bytes: Vec<u8> = (0..payload).map(|i| i as u8 + 1).collect();
            let end = f.metadata().unwrap().len();
            write_padded(&f, end, &bytes, padding).unwrap();
            let mut back = vec![0xffu8; payload + padding as usize];
            f.read_exact_at(&mut back, end).unwrap();
            assert_eq!(&back[..payload], &bytes[..]);
            assert!(back[payload..].iter().all(|b| *b == 0));
            assert_eq!(f.metadata().unwrap().len(), end + payload as u64 + padding);
        }
    }
}
