//! Committed-frontier locks: local readers never read uncommitted bytes.
//!
//! While a stream is open, the relay holds an fcntl **open file description** (OFD) write lock
//! over `[committed end, ∞)` (`l_len` 0) of every data, index and metadata file it writes. A commit
//! (after fdatasync of the data, the index append and the index fdatasync) takes the lock from the
//! new end, then releases `[0, new end)` — so between the two calls the region is still locked,
//! never the other way round — and only then publishes the frontier to viewers. At a stream's close
//! the final commit releases everything ([`release`]); a relay that dies loses its locks with its
//! descriptors.
//!
//! OFD locks (F_OFD_SETLK, F_OFD_GETLK) belong to the open file description, not the process: a
//! reader in the same process with its own `open()` of the file sees them too, and they are not
//! dropped when some other descriptor of the file is closed (the trap of classic POSIX locks).
//!
//! Reader side: [`range_locked`] asks F_OFD_GETLK whether `[start, start + len)` is held;
//! [`first_locked`] tells where the relay's lock begins, i.e. the committed end. A reader reads
//! only what is not locked and waits (polls) while its region is. A file system without OFD locks
//! only loses this guard (logged at debug level), never the data.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd};

fn flock(kind: i32, start: u64, len: u64) -> std::io::Result<libc::flock> {
    let start = i64::try_from(start).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    let len = i64::try_from(len).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    Ok(libc::flock {
        l_type: kind as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: start,
        l_len: len,
        l_pid: 0,
    })
}

fn set(file: &impl AsFd, kind: i32, start: u64, len: u64) -> std::io::Result<()> {
    let fl = flock(kind, start, len)?;
    nix::fcntl::fcntl(
        file.as_fd().as_raw_fd(),
        nix::fcntl::FcntlArg::F_OFD_SETLK(&fl),
    )?;
    Ok(())
}

/// Holds `[start, ∞)` of `file` and releases `[0, start)` (in that order).
pub fn hold_from(file: &File, start: u64) {
    let r = set(file, libc::F_WRLCK, start, 0).and_then(|()| {
        if start > 0 {
            set(file, libc::F_UNLCK, 0, start)
        } else {
            Ok(())
        }
    });
    if let Err(e) = r {
        tracing::debug!("cannot move the committed-frontier lock: {e}");
    }
}

/// Releases every lock the relay holds on `file` (the stream closed).
pub fn release(file: &File) {
    if let Err(e) = set(file, libc::F_UNLCK, 0, 0) {
        tracing::debug!("cannot release the committed-frontier lock: {e}");
    }
}

fn get(fd: &impl AsFd, start: u64, len: u64) -> std::io::Result<libc::flock> {
    let mut fl = flock(libc::F_RDLCK, start, len)?;
    nix::fcntl::fcntl(
        fd.as_fd().as_raw_fd(),
        nix::fcntl::FcntlArg::F_OFD_GETLK(&mut fl),
    )?;
    Ok(fl)
}

/// For readers: whether another open file description holds a write lock over part of
/// `[start, start + len)` of the file (`len` 0: to the end of any file).
pub fn range_locked(fd: &impl AsFd, start: u64, len: u64) -> std::io::Result<bool> {
    Ok(i32::from(get(fd, start, len)?.l_type) != libc::F_UNLCK)
}

/// For readers: where the first lock at or after `start` begins (the relay's committed end), or
/// `None` when nothing from `start` on is locked (stream closed, or no relay).
pub fn first_locked(fd: &impl AsFd, start: u64) -> std::io::Result<Option<u64>> {
    let fl = get(fd, start, 0)?;
    if i32::from(fl.l_type) == libc::F_UNLCK {
        return Ok(None);
    }
    Ok(Some(u64::try_from(fl.l_start).unwrap_or(0).max(start)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn another_open_sees_the_tail_locked_and_the_committed_range_free() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut w = File::options()
            .create(true)
            .read(true)
            .write(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        w.write_all(&[7u8; 300]).unwrap();
        hold_from(&w, 0);
        // A separate open file description in the same process.
        let r = File::open(&path).unwrap();
        assert!(range_locked(&r, 0, 1).unwrap());
        assert_eq!(first_locked(&r, 0).unwrap(), Some(0));
        hold_from(&w, 100);
        assert!(
            !range_locked(&r, 0, 100).unwrap(),
            "committed range is free"
        );
        assert!(range_locked(&r, 100, 1).unwrap(), "the tail is locked");
        assert!(
            range_locked(&r, 50, 100).unwrap(),
            "a range crossing the frontier is locked"
        );
        assert!(range_locked(&r, 1 << 40, 0).unwrap(), "to infinity");
        assert_eq!(first_locked(&r, 10).unwrap(), Some(100));
        assert_eq!(first_locked(&r, 150).unwrap(), Some(150));
        hold_from(&w, 250);
        assert_eq!(first_locked(&r, 0).unwrap(), Some(250));
        // The writer's own description never conflicts with itself.
        assert!(!range_locked(&w, 0, 0).unwrap());
        // Another descriptor of the writer's file closing does not drop an OFD lock.
        drop(File::open(&path).unwrap());
        assert!(range_locked(&r, 250, 1).unwrap());
        release(&w);
        assert!(!range_locked(&r, 0, 0).unwrap());
        assert_eq!(first_locked(&r, 0).unwrap(), None);
        hold_from(&w, 10);
        drop(w);
        assert!(
            !range_locked(&r, 0, 0).unwrap(),
            "gone with the relay's descriptor"
        );
    }
}
