//! The filesystem seam: every file operation of the relay goes through a [`FileSystem`].
//!
//! [`RealFs`] calls the kernel. [`super::fault::FaultFs`] wraps it and fails chosen operations on
//! chosen paths (ENOSPC, EIO, short writes), so tests can make a write, an fdatasync or a rename
//! fail exactly where they want. Operations on an open file take the file and the path it was
//! opened at: the path is what fault rules match and what errors name.

use nix::fcntl::{splice, SpliceFFlags};
use std::fmt;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, IoSlice};
use std::os::fd::BorrowedFd;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

/// The kinds of file operation, as fault rules and errors name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Op {
    /// Creating a directory (and its parents).
    CreateDir,
    /// Creating (or replacing) a file.
    Create,
    /// Opening an existing file.
    Open,
    /// A positional write.
    Write,
    /// Moving bytes from a pipe into a file.
    Splice,
    /// A positional read.
    Read,
    /// fdatasync.
    SyncData,
    /// Truncating or extending a file.
    SetLen,
    /// Renaming a file or directory.
    Rename,
    /// Removing a file or a directory tree.
    Remove,
    /// fsync of a directory (makes a create or rename durable).
    SyncDir,
    /// Listing a directory.
    ReadDir,
    /// Reading a file's or directory's metadata.
    Stat,
    /// Sending file bytes to a socket.
    SendFile,
    /// Asking the free space of a file system.
    FreeSpace,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Op::CreateDir => "create directory",
            Op::Create => "create",
            Op::Open => "open",
            Op::Write => "write",
            Op::Splice => "splice into",
            Op::Read => "read",
            Op::SyncData => "fdatasync",
            Op::SetLen => "truncate",
            Op::Rename => "rename",
            Op::Remove => "remove",
            Op::SyncDir => "fsync directory",
            Op::ReadDir => "list",
            Op::Stat => "stat",
            Op::SendFile => "send",
            Op::FreeSpace => "statvfs",
        };
        f.write_str(s)
    }
}

/// What [`FileSystem::stat`] tells of a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// A directory.
    pub is_dir: bool,
    /// Length in bytes (files).
    pub len: u64,
    /// Bytes allocated on the disk (`st_blocks × 512`).
    pub allocated: u64,
    /// Last modification.
    pub modified: SystemTime,
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// File name (one path component).
    pub name: String,
    /// What it is.
    pub meta: Meta,
}

/// Every file operation the relay performs.
pub trait FileSystem: Send + Sync + fmt::Debug {
    /// Creates `dir` and its missing parents (mode 0770 before the umask).
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Creates `path` for reading and writing (mode 0660 before the umask), replacing a file of
    /// that name by unlinking it first, so a reader holding the old one keeps its content.
    fn create(&self, path: &Path) -> io::Result<File>;
    /// Opens an existing file, for reading and writing when `write`.
    fn open(&self, path: &Path, write: bool) -> io::Result<File>;
    /// One positional vectored write; returns the bytes written (possibly fewer).
    fn write_at(
        &self,
        file: &File,
        path: &Path,
        bufs: &[IoSlice<'_>],
        offset: u64,
    ) -> io::Result<usize>;
    /// Moves up to `len` bytes from the pipe `pipe` into `file` at `offset`; returns how many.
    fn splice_in(
        &self,
        pipe: BorrowedFd<'_>,
        file: &File,
        path: &Path,
        offset: u64,
        len: usize,
    ) -> io::Result<usize>;
    /// One positional read; returns the bytes read (0 at the end).
    fn read_at(&self, file: &File, path: &Path, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// fdatasync.
    fn sync_data(&self, file: &File, path: &Path) -> io::Result<()>;
    /// Sets the file's length.
    fn set_len(&self, file: &File, path: &Path, len: u64) -> io::Result<()>;
    /// The open file's length.
    fn len(&self, file: &File, path: &Path) -> io::Result<u64>;
    /// Renames `from` to `to` (same file system).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Removes an empty directory.
    fn remove_dir(&self, path: &Path) -> io::Result<()>;
    /// Removes a directory and everything under it.
    fn remove_dir_all(&self, path: &Path) -> io::Result<()>;
    /// fsync of a directory.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
    /// Lists a directory (names that are not UTF-8 are skipped).
    fn read_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>>;
    /// Metadata of a path (not following a final symbolic link).
    fn stat(&self, path: &Path) -> io::Result<Meta>;
    /// Sends up to `len` bytes of `file` from `offset` to the (non-blocking) socket `sock`.
    fn send_file(
        &self,
        sock: BorrowedFd<'_>,
        file: &File,
        path: &Path,
        offset: u64,
        len: usize,
    ) -> io::Result<usize>;
    /// Bytes available to the relay on the file system holding `path`.
    fn free_space(&self, path: &Path) -> io::Result<u64>;
}

/// A shared file system.
pub type Fs = Arc<dyn FileSystem>;

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

impl RealFs {
    /// The real file system, shared.
    pub fn shared() -> Fs {
        Arc::new(RealFs)
    }
}

fn meta_of(m: &std::fs::Metadata) -> Meta {
    Meta {
        is_dir: m.is_dir(),
        len: m.len(),
        allocated: m.blocks().saturating_mul(512),
        modified: m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
    }
}

impl FileSystem for RealFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        DirBuilder::new().recursive(true).mode(0o770).create(dir)
    }

    fn create(&self, path: &Path) -> io::Result<File> {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
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

    fn open(&self, path: &Path, write: bool) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(write)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)
    }

    fn write_at(
        &self,
        file: &File,
        _path: &Path,
        bufs: &[IoSlice<'_>],
        offset: u64,
    ) -> io::Result<usize> {
        let pos = i64::try_from(offset).map_err(|_| io::ErrorKind::InvalidInput)?;
        Ok(nix::sys::uio::pwritev(file, bufs, pos)?)
    }

    fn splice_in(
        &self,
        pipe: BorrowedFd<'_>,
        file: &File,
        _path: &Path,
        offset: u64,
        len: usize,
    ) -> io::Result<usize> {
        let mut off = i64::try_from(offset).map_err(|_| io::ErrorKind::InvalidInput)?;
        let fd = std::os::fd::AsFd::as_fd(file);
        Ok(splice(
            pipe,
            None,
            fd,
            Some(&mut off),
            len,
            SpliceFFlags::SPLICE_F_MOVE,
        )?)
    }

    fn read_at(&self, file: &File, _path: &Path, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        file.read_at(buf, offset)
    }

    fn sync_data(&self, file: &File, _path: &Path) -> io::Result<()> {
        file.sync_data()
    }

    fn set_len(&self, file: &File, _path: &Path, len: u64) -> io::Result<()> {
        file.set_len(len)
    }

    fn len(&self, file: &File, _path: &Path) -> io::Result<u64> {
        file.metadata().map(|m| m.len())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn remove_dir(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir(path)
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir_all(path)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(path)? {
            let e = e?;
            let Ok(name) = e.file_name().into_string() else {
                continue;
            };
            let Ok(m) = std::fs::symlink_metadata(e.path()) else {
                continue;
            };
            out.push(DirEntry {
                name,
                meta: meta_of(&m),
            });
        }
        Ok(out)
    }

    fn stat(&self, path: &Path) -> io::Result<Meta> {
        std::fs::symlink_metadata(path).map(|m| meta_of(&m))
    }

    fn send_file(
        &self,
        sock: BorrowedFd<'_>,
        file: &File,
        _path: &Path,
        offset: u64,
        len: usize,
    ) -> io::Result<usize> {
        let mut off = i64::try_from(offset).map_err(|_| io::ErrorKind::InvalidInput)?;
        Ok(nix::sys::sendfile::sendfile64(
            sock,
            file,
            Some(&mut off),
            len,
        )?)
    }

    fn free_space(&self, path: &Path) -> io::Result<u64> {
        let s = nix::sys::statvfs::statvfs(path)?;
        Ok(s.blocks_available().saturating_mul(s.fragment_size()))
    }
}
