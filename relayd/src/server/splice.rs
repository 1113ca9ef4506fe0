//! Zero-copy socket → file transfer for data packets: splice(2) from the socket into a pipe, then
//! from the pipe into the stream's file at the packet's offset, so payload bytes never enter user
//! space. If the file system cannot splice, the bytes already in the pipe are read out and written
//! with a positional write, and the connection falls back to plain copies from then on.

use nix::fcntl::{fcntl, splice, FcntlArg, OFlag, SpliceFFlags};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use tokio::io::Interest;
use tokio::net::TcpStream;

/// Pipe size asked for (the kernel may grant less).
const PIPE_SIZE: i32 = 1 << 20;

/// A pipe dedicated to one data connection.
#[derive(Debug)]
pub struct Splicer {
    read: File,
    write: OwnedFd,
    capacity: usize,
    /// Splicing into files failed once with EINVAL: copy instead.
    pub disabled: bool,
}

impl Splicer {
    /// A new pipe, enlarged to 1 MiB when the kernel allows it.
    pub fn new() -> io::Result<Splicer> {
        let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK)?;
        let capacity = fcntl(write.as_raw_fd(), FcntlArg::F_SETPIPE_SZ(PIPE_SIZE))
            .ok()
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(64 * 1024);
        Ok(Splicer {
            read: File::from(read),
            write,
            capacity,
            disabled: false,
        })
    }

    /// Moves exactly `len` bytes from `sock` into `file` at `offset`; `buf` serves the fallback.
    pub async fn copy(
        &mut self,
        sock: &TcpStream,
        file: &File,
        mut offset: u64,
        mut len: u64,
        buf: &mut [u8],
    ) -> io::Result<()> {
        while len > 0 {
            let want = usize::try_from(len)
                .unwrap_or(usize::MAX)
                .min(self.capacity);
            let n = loop {
                sock.readable().await?;
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
                    Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(e),
                }
            };
            self.drain(file, offset, n, buf)?;
            offset = offset.saturating_add(n as u64);
            len = len.saturating_sub(n as u64);
        }
        Ok(())
    }

    /// Empties `n` bytes of the pipe into `file` at `offset`.
    fn drain(
        &mut self,
        file: &File,
        mut offset: u64,
        mut n: usize,
        buf: &mut [u8],
    ) -> io::Result<()> {
        while n > 0 {
            if !self.disabled {
                let mut off = i64::try_from(offset).map_err(|_| io::ErrorKind::InvalidInput)?;
                match splice(
                    self.read.as_fd(),
                    None,
                    file.as_fd(),
                    Some(&mut off),
                    n,
                    SpliceFFlags::SPLICE_F_MOVE,
                ) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(m) => {
                        offset = offset.saturating_add(m as u64);
                        n -= m;
                        continue;
                    }
                    Err(nix::errno::Errno::EINVAL) => {
                        tracing::info!("file system cannot splice: copying data packets");
                        self.disabled = true;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            let chunk = buf
                .get_mut(..n.min(buf.len()))
                .ok_or(io::ErrorKind::InvalidInput)?;
            let m = io::Read::read(&mut &self.read, chunk)?;
            if m == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            file.write_all_at(chunk.get(..m).unwrap_or_default(), offset)?;
            offset = offset.saturating_add(m as u64);
            n -= m;
        }
        Ok(())
    }
}
