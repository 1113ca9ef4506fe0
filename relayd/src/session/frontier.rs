//! Committed-frontier locks: local readers never read uncommitted bytes.
//!
//! The relay holds an fcntl OFD write lock over `[committed end, ∞)` of every data, index and
//! metadata file it writes. A commit takes the lock from the new end and releases what lies
//! before it. A local reader asks F_OFD_GETLK for the region it wants to read ([`is_locked`]) and
//! waits while the relay holds it. The locks go away with the relay's last descriptor of the file
//! (stream closed, or relay gone). A file system without OFD locks only loses this guard (logged
//! once per file), never the data.

use std::fs::File;
use std::os::fd::AsRawFd;

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

fn set(file: &File, kind: i32, start: u64, len: u64) -> std::io::Result<()> {
    let fl = flock(kind, start, len)?;
    nix::fcntl::fcntl(file.as_raw_fd(), nix::fcntl::FcntlArg::F_OFD_SETLK(&fl))?;
    Ok(())
}

/// Holds `[start, ∞)` of `file` and releases `[0, start)`.
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

/// For readers: whether some other open file description holds a lock over
/// `[start, start + len)` of `file` (`len` 0: to the end).
pub fn is_locked(file: &File, start: u64, len: u64) -> std::io::Result<bool> {
    let mut fl = flock(libc::F_RDLCK, start, len)?;
    nix::fcntl::fcntl(file.as_raw_fd(), nix::fcntl::FcntlArg::F_OFD_GETLK(&mut fl))?;
    Ok(i32::from(fl.l_type) != libc::F_UNLCK)
}
