//! [`StorageFile`]: an open file of the output folder with the path it was opened at and the
//! [`FileSystem`](super::FileSystem) that serves it. Every read, write, splice, fdatasync and truncation of stream,
//! index and metadata files goes through one of its methods, and every failure comes back as a
//! [`StorageError`] naming the file.

use super::error::{Result, StorageError};
use super::fs::{Fs, Op};
use super::lock;
use super::pool::{Location, Slot};
use std::fs::File;
use std::io::{self, IoSlice};
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Zeros for padding writes.
const ZEROS: [u8; 4096] = [0; 4096];

/// Iovec slots of one vectored write.
const SLOTS: usize = 16;

/// A file of the output folder, open while the pool ([`super::pool`]) lets it be.
#[derive(Debug)]
pub struct StorageFile {
    slot: Arc<Slot>,
    location: Location,
    path: PathBuf,
    fs: Fs,
}

impl StorageFile {
    /// Creates `path` (replacing a file of that name) through `fs`.
    pub fn create(fs: &Fs, path: PathBuf) -> Result<StorageFile> {
        Self::create_at(fs, Location::Fixed(path))
    }

    /// Creates the file at `location` (replacing a file of that name) through `fs`.
    pub fn create_at(fs: &Fs, location: Location) -> Result<StorageFile> {
        let path = location.current();
        let slot = Slot::open_with(|| fs.create(&path), 0)
            .map_err(|e| StorageError::new(Op::Create, &path, e))?;
        Ok(StorageFile {
            slot,
            location,
            path,
            fs: fs.clone(),
        })
    }

    /// Opens the existing file `path` (for writing too when `write`). The pool never closes
    /// such a file (it holds no committed-frontier lock).
    pub fn open(fs: &Fs, path: PathBuf, write: bool) -> Result<StorageFile> {
        let slot = Slot::open_with(|| fs.open(&path, write), u64::MAX)
            .map_err(|e| StorageError::new(Op::Open, &path, e))?;
        Ok(StorageFile {
            slot,
            location: Location::Fixed(path.clone()),
            path,
            fs: fs.clone(),
        })
    }

    /// Opens the existing file at `location` for writing more (a session resumed after a
    /// restart); its committed-frontier lock is taken from its end.
    pub fn reopen_at(fs: &Fs, location: Location) -> Result<StorageFile> {
        let path = location.current();
        let slot = Slot::open_with(|| fs.open(&path, true), 0)
            .map_err(|e| StorageError::new(Op::Open, &path, e))?;
        let f = StorageFile {
            slot,
            location,
            path,
            fs: fs.clone(),
        };
        let len = f.len()?;
        f.slot.wrote(len);
        f.hold_from(len);
        Ok(f)
    }

    /// The path it was created at (it may have moved since, with its chunk).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the file is now.
    pub fn current_path(&self) -> PathBuf {
        self.location.current()
    }

    /// Whether it holds a descriptor now (the pool may have closed it).
    pub fn is_open(&self) -> bool {
        self.slot.is_open()
    }

    fn fd_io(&self) -> io::Result<Arc<File>> {
        self.slot.get(
            || self.fs.open(&self.location.current(), true),
            lock::hold_from,
        )
    }

    fn fd(&self) -> Result<Arc<File>> {
        self.fd_io()
            .map_err(|e| StorageError::new(Op::Open, &self.location.current(), e))
    }

    /// Holds the committed-frontier lock over `[from, ∞)` and releases what is below it
    /// ([`lock::hold_from`]); kept across the pool closing and reopening the file (a file the
    /// pool closed is not reopened for it: its next reopen takes the lock from `from`).
    pub fn hold_from(&self, from: u64) {
        self.slot.locked_from(from);
        if let Some(f) = self.slot.current() {
            lock::hold_from(&f, from);
        }
    }

    fn err(&self, op: Op, e: io::Error) -> StorageError {
        StorageError::new(op, &self.path, e)
    }

    /// Writes all of `buf` at `offset`.
    pub fn write_all_at(&self, buf: &[u8], offset: u64) -> Result<()> {
        self.write_padded(offset, buf, 0)
    }

    /// Writes `payload` then `padding` zero bytes at `offset`, in one positional vectored write
    /// when the kernel takes it all (the usual case), continuing after short writes.
    pub fn write_padded(&self, offset: u64, payload: &[u8], padding: u64) -> Result<()> {
        let plen = payload.len() as u64;
        let total = plen.saturating_add(padding);
        let mut done = 0u64;
        while done < total {
            let mut iov = [IoSlice::new(&[]); SLOTS + 1];
            let mut used = 0;
            if done < plen {
                let rest = payload.get(done as usize..).unwrap_or_default();
                if let Some(slot) = iov.get_mut(0) {
                    *slot = IoSlice::new(rest);
                }
                used = 1;
            }
            let mut zeros = total - done.max(plen);
            while zeros > 0 && used < iov.len() {
                let n = zeros.min(ZEROS.len() as u64);
                if let Some(slot) = iov.get_mut(used) {
                    *slot = IoSlice::new(ZEROS.get(..n as usize).unwrap_or(&ZEROS));
                }
                used += 1;
                zeros -= n;
            }
            let at = offset.saturating_add(done);
            let bufs = iov.get(..used).unwrap_or_default();
            let fd = self.fd()?;
            match self.fs.write_at(&fd, &self.path, bufs, at) {
                Ok(0) => {
                    let e = io::Error::from(io::ErrorKind::WriteZero);
                    return Err(self.err(Op::Write, e).needing(total - done));
                }
                Ok(n) => {
                    done = done.saturating_add(n as u64);
                    self.slot.wrote(offset.saturating_add(done));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.err(Op::Write, e).needing(total - done)),
            }
        }
        Ok(())
    }

    /// Writes `len` zero bytes at `offset`.
    pub fn write_zeros(&self, offset: u64, len: u64) -> Result<()> {
        self.write_padded(offset, &[], len)
    }

    /// Moves up to `len` bytes from `pipe` into the file at `offset`; returns how many moved.
    pub fn splice_in(&self, pipe: BorrowedFd<'_>, offset: u64, len: usize) -> Result<usize> {
        let fd = self.fd()?;
        let n = self
            .fs
            .splice_in(pipe, &fd, &self.path, offset, len)
            .map_err(|e| self.err(Op::Splice, e).needing(len as u64))?;
        self.slot.wrote(offset.saturating_add(n as u64));
        Ok(n)
    }

    /// Reads exactly `buf.len()` bytes at `offset` (a file that ends first is a corruption).
    pub fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        let mut done = 0usize;
        while let Some(rest) = buf.get_mut(done..).filter(|r| !r.is_empty()) {
            let at = offset.saturating_add(done as u64);
            let fd = self.fd()?;
            match self.fs.read_at(&fd, &self.path, rest, at) {
                Ok(0) => {
                    return Err(StorageError::corruption(
                        Op::Read,
                        &self.path,
                        "file ends early",
                    ))
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.err(Op::Read, e)),
            }
        }
        Ok(())
    }

    /// fdatasync.
    pub fn sync_data(&self) -> Result<()> {
        let fd = self.fd()?;
        self.fs
            .sync_data(&fd, &self.path)
            .map_err(|e| self.err(Op::SyncData, e))
    }

    /// Sets the length.
    pub fn set_len(&self, len: u64) -> Result<()> {
        let fd = self.fd()?;
        self.fs
            .set_len(&fd, &self.path, len)
            .map_err(|e| self.err(Op::SetLen, e))?;
        self.slot.cut(len);
        Ok(())
    }

    /// The current length.
    pub fn len(&self) -> Result<u64> {
        let fd = self.fd()?;
        self.fs
            .len(&fd, &self.path)
            .map_err(|e| self.err(Op::Stat, e))
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> Result<bool> {
        self.len().map(|n| n == 0)
    }

    /// Sends up to `len` bytes from `offset` to the non-blocking socket `sock` (an `io::Error`,
    /// as the socket side of it may be what failed).
    pub fn send_to(&self, sock: BorrowedFd<'_>, offset: u64, len: usize) -> io::Result<usize> {
        let fd = self.fd_io()?;
        self.fs.send_file(sock, &fd, &self.path, offset, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::fault::{FaultFs, Rule};
    use crate::storage::fs::RealFs;
    use crate::storage::StorageErrorKind;

    #[test]
    fn payload_and_padding_land_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let f = StorageFile::create(&RealFs::shared(), dir.path().join("d")).unwrap();
        f.write_all_at(&[9u8; 8], 0).unwrap();
        // Padding longer than the vectored slots hold takes more than one write.
        for (payload, padding) in [(3usize, 0u64), (5, 44), (1, 4096 * 16 + 7), (0, 100)] {
            let bytes: Vec<u8> = (0..payload).map(|i| i as u8 + 1).collect();
            let end = f.len().unwrap();
            f.write_padded(end, &bytes, padding).unwrap();
            let mut back = vec![0xffu8; payload + padding as usize];
            f.read_exact_at(&mut back, end).unwrap();
            assert_eq!(&back[..payload], &bytes[..]);
            assert!(back[payload..].iter().all(|b| *b == 0));
            assert_eq!(f.len().unwrap(), end + payload as u64 + padding);
        }
    }

    #[test]
    fn short_writes_are_finished_and_full_disks_reported() {
        let dir = tempfile::tempdir().unwrap();
        let (fs, faults) = FaultFs::wrap(RealFs::shared());
        let f = StorageFile::create(&fs, dir.path().join("d")).unwrap();
        faults.add(Rule::new(Op::Write, "d", 0).short(2).times(3));
        f.write_padded(0, b"abcdefg", 3).unwrap();
        let mut back = [0u8; 10];
        f.read_exact_at(&mut back, 0).unwrap();
        assert_eq!(&back, b"abcdefg\0\0\0");
        faults.add(Rule::new(Op::Write, "d", 0).short(4).times(1));
        faults.add(Rule::new(Op::Write, "d", libc::ENOSPC));
        let e = f.write_padded(10, b"0123456789", 0).unwrap_err();
        assert_eq!(e.kind, StorageErrorKind::NoSpace);
        assert_eq!(e.needed, Some(6));
        let e = f.read_exact_at(&mut [0u8; 64], 0).unwrap_err();
        assert_eq!(e.kind, StorageErrorKind::Corruption);
    }
}
