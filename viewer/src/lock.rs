//! The OFD byte-range lock protocol between a relay writing a trace and local readers.
//!
//! The relay holds, on each stream's data file and index file, an open-file-description write
//! lock (`F_OFD_SETLK`, `F_WRLCK`) over `[committed_end, ∞)` (`l_len = 0`). Bytes before
//! `committed_end` are durable and complete; bytes after it may be partially written. After each
//! commit the relay takes the lock from the new frontier and releases the old range, so the
//! locked region only ever shrinks from the front.
//!
//! A reader never takes a lock: before reading a range it asks the kernel whether a read lock on
//! exactly that range would conflict (`F_OFD_GETLK` with `F_RDLCK`). "No conflict" means the
//! range is committed and may be read; a conflict means it is not (yet): wait and ask again.
//! Because the frontier only moves forward, a range once seen free stays free.
//!
//! Files written by a relay that takes no locks (lttng-relayd) are always "free": a reader then
//! relies on whole index entries only (an index entry is written after its packet).

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

use nix::fcntl::{fcntl, FcntlArg};

/// What the kernel says about a byte range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeState {
    /// No write lock overlaps the range: it may be read.
    Free,
    /// A write lock overlaps the range.
    Locked {
        /// Start of the conflicting lock.
        start: u64,
        /// Its length (0 = to the end of the file and beyond).
        len: u64,
    },
}

fn off(v: u64) -> io::Result<libc::off_t> {
    libc::off_t::try_from(v)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset out of range"))
}

fn flock(kind: libc::c_int, start: u64, len: u64) -> io::Result<libc::flock> {
    // The OFD commands require `l_pid` to be zero.
    let mut fl = empty_flock();
    fl.l_type = kind as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = off(start)?;
    fl.l_len = off(len)?;
    Ok(fl)
}

/// An all-zero `flock`.
fn empty_flock() -> libc::flock {
    libc::flock {
        l_type: 0,
        l_whence: 0,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    }
}

/// Whether `[start, start + len)` of `file` is free of write locks held through other open
/// file descriptions (`len` 0 = to the end and beyond).
pub fn probe(file: &File, start: u64, len: u64) -> io::Result<RangeState> {
    let mut fl = flock(libc::F_RDLCK, start, len)?;
    fcntl(file.as_raw_fd(), FcntlArg::F_OFD_GETLK(&mut fl)).map_err(io::Error::from)?;
    if fl.l_type == libc::F_UNLCK as libc::c_short {
        return Ok(RangeState::Free);
    }
    Ok(RangeState::Locked {
        start: u64::try_from(fl.l_start).unwrap_or(0),
        len: u64::try_from(fl.l_len).unwrap_or(0),
    })
}

/// Whether `[start, start + len)` may be read now.
pub fn is_committed(file: &File, start: u64, len: u64) -> io::Result<bool> {
    Ok(probe(file, start, len)? == RangeState::Free)
}

/// The writer's side, as the relay does it (used by tests and tools that simulate a relay):
/// takes an OFD write lock on `[from, ∞)` of `file` without waiting.
pub fn lock_from(file: &File, from: u64) -> io::Result<()> {
    let fl = flock(libc::F_WRLCK, from, 0)?;
    fcntl(file.as_raw_fd(), FcntlArg::F_OFD_SETLK(&fl)).map_err(io::Error::from)?;
    Ok(())
}

/// The writer's side: moves the frontier from `old` to `new` (`new >= old`): locks `[new, ∞)`
/// then releases `[old, new)`.
pub fn advance(file: &File, old: u64, new: u64) -> io::Result<()> {
    lock_from(file, new)?;
    if new > old {
        let fl = flock(libc::F_UNLCK, old, new - old)?;
        fcntl(file.as_raw_fd(), FcntlArg::F_OFD_SETLK(&fl)).map_err(io::Error::from)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_sees_the_writers_frontier() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, vec![0u8; 100]).unwrap();
        let writer = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&p)
            .unwrap();
        let reader = File::open(&p).unwrap();
        assert_eq!(probe(&reader, 0, 100).unwrap(), RangeState::Free);
        lock_from(&writer, 40).unwrap();
        assert!(is_committed(&reader, 0, 40).unwrap());
        assert_eq!(
            probe(&reader, 30, 20).unwrap(),
            RangeState::Locked { start: 40, len: 0 }
        );
        assert!(!is_committed(&reader, 1000, 0).unwrap());
        advance(&writer, 40, 70).unwrap();
        assert!(is_committed(&reader, 30, 40).unwrap());
        assert!(!is_committed(&reader, 30, 41).unwrap());
        drop(writer);
        assert!(is_committed(&reader, 0, 1000).unwrap());
    }
}
