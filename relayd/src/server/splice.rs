//! Zero-copy socket → file transfer for data packets: splice(2) from the socket into a pipe, then
//! from the pipe into the stream's file at the packet's offset, so payload bytes never enter user
//! space. If the file system cannot splice, the bytes already in the pipe are read out and written
//! with a positional write, and the connection falls back to plain copies from then on.
//!
//! A copy is resumable: bytes taken from the socket stay in the pipe (or in the fallback buffer)
//! until they are in the file, so after a failed write (a full disk) the caller waits and calls
//! [`Splicer::copy`] again with the same position, and nothing is lost or read twice.

use crate::storage::{Op, StorageError, StorageFile};
use nix::fcntl::{fcntl, splice, FcntlArg, OFlag, SpliceFFlags};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use tokio::io::Interest;
use tokio::net::TcpStream;

/// Pipe size asked for (the kernel may grant less).
const PIPE_SIZE: i32 = 1 << 20;
/// Fallback buffer size.
const HELD_MAX: usize = 64 * 1024;

/// Why a copy stopped.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The socket failed or closed.
    #[error("connection: {0}")]
    Net(io::Error),
    /// The file write failed; what was taken from the socket is kept for a retry.
    #[error(transparent)]
    Storage(StorageError),
}

/// A pipe dedicated to one data connection.
#[derive(Debug)]
pub struct Splicer {
    read: File,
    write: OwnedFd,
    capacity: usize,
    /// Bytes in the pipe not yet in the file.
    in_pipe: usize,
    /// Bytes read out of the pipe (fallback) not yet in the file.
    held: Vec<u8>,
    /// Splicing into files failed once with EINVAL: copy instead.
    pub disabled: bool,
    /// Counts the bytes spliced into files.
    spliced: metrics::Counter,
}

impl Splicer {
    /// A new pipe, enlarged to 1 MiB when the kernel allows it; `spliced` counts the bytes
    /// that go through it into files.
    pub fn new(spliced: metrics::Counter) -> io::Result<Splicer> {
        let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
        let capacity = fcntl(write.as_raw_fd(), FcntlArg::F_SETPIPE_SZ(PIPE_SIZE))
            .ok()
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(64 * 1024);
        Ok(Splicer {
            read: File::from(read),
            write,
            capacity,
            in_pipe: 0,
            held: Vec::new(),
            disabled: false,
            spliced,
        })
    }

    /// Moves the `len` bytes still to copy from `sock` into `file` at `offset`; both advance as
    /// bytes land in the file, so a copy that failed can be resumed with the same arguments.
    pub async fn copy(
        &mut self,
        sock: &TcpStream,
        file: &StorageFile,
        offset: &mut u64,
        len: &mut u64,
    ) -> Result<(), CopyError> {
        loop {
            self.drain(file, offset, len).map_err(CopyError::Storage)?;
            if *len == 0 {
                return Ok(());
            }
            let want = usize::try_from(*len)
                .unwrap_or(usize::MAX)
                .min(self.capacity);
            let n = loop {
                sock.readable().await.map_err(CopyError::Net)?;
                let moved = sock.try_io(Interest::READABLE, || {
                    splice(
                        sock.as_fd(),
                        None,
                        self.write.as_fd(),
                        None,
                        want,
                        SpliceFFlags::SPLICE_F_NONBLOCK | SpliceFFlags::SPLICE_F_MOVE,
                    )
                    .map_err(io::Error::from)
                });
                match moved {
                    Ok(0) => return Err(CopyError::Net(io::ErrorKind::UnexpectedEof.into())),
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(CopyError::Net(e)),
                }
            };
            self.in_pipe = n;
        }
    }

    /// Empties what was taken from the socket into `file`.
    fn drain(
        &mut self,
        file: &StorageFile,
        offset: &mut u64,
        len: &mut u64,
    ) -> Result<(), StorageError> {
        let landed = |n: usize, offset: &mut u64, len: &mut u64| {
            *offset = offset.saturating_add(n as u64);
            *len = len.saturating_sub(n as u64);
        };
        if !self.held.is_empty() {
            file.write_all_at(&self.held, *offset)?;
            landed(self.held.len(), offset, len);
            self.held.clear();
        }
        while self.in_pipe > 0 {
            if !self.disabled {
                match file.splice_in(self.read.as_fd(), *offset, self.in_pipe) {
                    Ok(0) => {
                        let e = io::Error::from(io::ErrorKind::WriteZero);
                        return Err(StorageError::new(Op::Splice, file.path(), e));
                    }
                    Ok(m) => {
                        landed(m, offset, len);
                        self.spliced.increment(m as u64);
                        self.in_pipe = self.in_pipe.saturating_sub(m);
                        continue;
                    }
                    Err(e) if e.source.raw_os_error() == Some(libc::EINVAL) => {
                        tracing::info!("file system cannot splice: copying data packets");
                        self.disabled = true;
                    }
                    Err(e) => return Err(e),
                }
            }
            self.held.resize(self.in_pipe.min(HELD_MAX), 0);
            let m = match io::Read::read(&mut &self.read, &mut self.held) {
                Ok(0) => Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
                Ok(m) => Ok(m),
                Err(e) => Err(e),
            };
            let m = m.map_err(|e| {
                self.held.clear();
                StorageError::new(Op::Read, file.path(), e)
            })?;
            self.held.truncate(m);
            self.in_pipe = self.in_pipe.saturating_sub(m);
            file.write_all_at(&self.held, *offset)?;
            landed(m, offset, len);
            self.held.clear();
        }
        Ok(())
    }
}
