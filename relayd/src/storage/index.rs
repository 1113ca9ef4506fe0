//! Index files: a header, then one fixed-size entry per committed packet of the paired data file.
//!
//! Only the commit group appends, and it tracks the length it wrote. An append that fails (a full
//! disk) is cut back to where it started, and a commit that fails after some appends cuts every
//! file it touched back ([`IndexFile::truncate_to`]), so an index never holds an entry a retry
//! would write twice, nor one whose packet is not durable.

use super::error::{Result, StorageError};
use super::file::StorageFile;
use super::fs::{Fs, Op};
use super::pool::Location;
use std::sync::{Arc, Mutex};
use trelay_proto::ctf::index::{encode_header, IndexEntry, IndexHeader, IndexVersion, HEADER_LEN};
use trelay_proto::Decoded;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An index file and the length written so far (header included).
#[derive(Debug)]
pub struct IndexFile {
    file: StorageFile,
    /// The data file whose packets this index describes.
    pub data: Arc<StorageFile>,
    version: IndexVersion,
    len: Mutex<u64>,
    committed_entries: Mutex<u64>,
}

impl IndexFile {
    /// Creates the index file `path` with its header, paired with `data`, and holds its
    /// committed-frontier lock from the end of the header.
    pub fn create(
        fs: &Fs,
        location: impl Into<Location>,
        data: Arc<StorageFile>,
        version: IndexVersion,
    ) -> Result<Arc<IndexFile>> {
        let file = StorageFile::create_at(fs, location.into())?;
        let mut header = Vec::with_capacity(HEADER_LEN);
        encode_header(version, &mut header);
        file.write_all_at(&header, 0)?;
        file.hold_from(header.len() as u64);
        Ok(Arc::new(IndexFile {
            file,
            data,
            version,
            len: Mutex::new(header.len() as u64),
            committed_entries: Mutex::new(0),
        }))
    }

    /// Opens an existing index file (crash recovery left only whole, committed entries) to
    /// append to it, paired with `data`; returns it and its number of entries.
    pub fn reopen(
        fs: &Fs,
        location: impl Into<Location>,
        data: Arc<StorageFile>,
        version: IndexVersion,
    ) -> Result<(Arc<IndexFile>, u64)> {
        let file = StorageFile::reopen_at(fs, location.into())?;
        let len = file.len()?;
        let entry = u64::from(IndexHeader::new(version).entry_len).max(1);
        let body = len.saturating_sub(HEADER_LEN as u64);
        if len < HEADER_LEN as u64 || body % entry != 0 {
            return Err(StorageError::corruption(
                Op::Read,
                file.path(),
                "index file is not a header and whole entries",
            ));
        }
        let entries = body / entry;
        Ok((
            Arc::new(IndexFile {
                file,
                data,
                version,
                len: Mutex::new(len),
                committed_entries: Mutex::new(entries),
            }),
            entries,
        ))
    }

    /// The index file.
    pub fn file(&self) -> &StorageFile {
        &self.file
    }

    /// Appends entries in one write; returns the length before it. A failed append is cut back.
    pub fn append(&self, entries: &[IndexEntry], buf: &mut Vec<u8>) -> Result<u64> {
        buf.clear();
        for e in entries {
            e.encode(self.version, buf);
        }
        let mut len = lock(&self.len);
        let before = *len;
        if let Err(e) = self.file.write_all_at(buf, before) {
            if let Err(cut) = self.file.set_len(before) {
                tracing::warn!("cannot cut a failed index append back: {cut}");
            }
            return Err(e);
        }
        *len = before.saturating_add(buf.len() as u64);
        Ok(before)
    }

    /// Cuts what was appended after `len` (a commit that could not finish).
    pub fn truncate_to(&self, len: u64) -> Result<()> {
        let mut l = lock(&self.len);
        if len < *l {
            self.file.set_len(len)?;
            *l = len;
        }
        Ok(())
    }

    /// Flushes the file's data to the disk.
    pub fn sync(&self) -> Result<()> {
        self.file.sync_data()
    }

    /// Records that `n` more entries of this file are durable and visible, the last one ending
    /// at `data_end` in the data file, and moves both files' frontier locks.
    pub fn advance_committed(&self, n: u64, data_end: u64) {
        let mut c = lock(&self.committed_entries);
        *c = c.saturating_add(n);
        let len = *lock(&self.len);
        self.file.hold_from(len);
        self.data.hold_from(data_end);
    }

    /// Entries of this file that are committed.
    pub fn committed_entries(&self) -> u64 {
        *lock(&self.committed_entries)
    }

    /// Reads entry number `n` of this file (only committed entries are complete on disk, the
    /// caller bounds `n`).
    pub fn read_entry(&self, n: u64) -> Result<IndexEntry> {
        let path = self.file.path();
        let header = IndexHeader::new(self.version);
        let pos = header
            .entry_position(n)
            .ok_or_else(|| StorageError::corruption(Op::Read, path, "entry position overflows"))?;
        let mut buf = [0u8; 128];
        let len = usize::try_from(header.entry_len).unwrap_or(usize::MAX);
        let bytes = buf
            .get_mut(..len)
            .ok_or_else(|| StorageError::corruption(Op::Read, path, "entry too long"))?;
        self.file.read_exact_at(bytes, pos)?;
        match IndexEntry::decode(&header, bytes) {
            Decoded::Done { msg, .. } => Ok(msg),
            Decoded::Incomplete { .. } => Err(StorageError::corruption(
                Op::Read,
                path,
                "short index entry",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::fault::{FaultFs, Rule};
    use crate::storage::fs::RealFs;

    fn entry(i: u64) -> IndexEntry {
        IndexEntry {
            offset: i * 4096,
            packet_size: 4096 * 8,
            content_size: 4096 * 8,
            timestamp_begin: i,
            timestamp_end: i + 1,
            events_discarded: 0,
            stream_id: 0,
            stream_instance_id: 0,
            packet_seq_num: i,
        }
    }

    #[test]
    fn a_failed_append_leaves_no_entry() {
        let dir = tempfile::tempdir().unwrap();
        let (fs, faults) = FaultFs::wrap(RealFs::shared());
        let data = Arc::new(StorageFile::create(&fs, dir.path().join("c_0")).unwrap());
        let v = IndexVersion::for_minor(4);
        let idx = IndexFile::create(&fs, dir.path().join("c_0.idx"), data, v).unwrap();
        let mut buf = Vec::new();
        idx.append(&[entry(0)], &mut buf).unwrap();
        let one = idx.file().len().unwrap();
        faults.add(Rule::new(Op::Write, "c_0.idx", 0).short(7).times(1));
        faults.add(
            Rule::new(Op::Write, "c_0.idx", libc::ENOSPC)
                .after(1)
                .times(1),
        );
        assert!(idx
            .append(&[entry(1), entry(2)], &mut buf)
            .unwrap_err()
            .is_no_space());
        assert_eq!(
            idx.file().len().unwrap(),
            one,
            "the torn append is cut back"
        );
        let before = idx.append(&[entry(1)], &mut buf).unwrap();
        assert_eq!(before, one);
        idx.truncate_to(one).unwrap();
        assert_eq!(idx.file().len().unwrap(), one);
        assert_eq!(idx.read_entry(0).unwrap().timestamp_begin, 0);
        assert!(idx.read_entry(1).is_err());
    }
}
