//! Socket output for live replies: the fixed part with `MSG_MORE` (it leaves with the bytes that
//! follow), then file bytes with `sendfile(2)` straight from the page cache, driven by tokio's
//! writability readiness. When the kernel refuses sendfile for a file (EINVAL/ENOSYS: a file
//! system without splice support), the bytes are read into one reused buffer and written.
//!
//! The TLS live port cannot use sendfile (the bytes are encrypted in user space): its
//! [`LiveSocket`] always copies through the same bounded, reused buffer. The plain port keeps
//! sendfile.

use crate::storage::StorageFile;
use nix::errno::Errno;
use socket2::SockRef;
use std::future::Future;
use std::io;
use std::os::fd::AsFd;
use tokio::io::{AsyncRead, AsyncWriteExt, Interest};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// A live connection's transport: read requests, write replies and file bytes.
pub trait LiveSocket: AsyncRead + Unpin + Send {
    /// Sends all of `buf`; with `more`, file bytes follow at once.
    fn send_all(&mut self, buf: &[u8], more: bool) -> impl Future<Output = io::Result<()>> + Send;
    /// Sends `len` bytes of `file` from `offset` (`fallback`: the reused copy buffer).
    fn send_file(
        &mut self,
        file: &StorageFile,
        offset: u64,
        len: u64,
        fallback: &mut Vec<u8>,
    ) -> impl Future<Output = io::Result<()>> + Send;
}

impl LiveSocket for TcpStream {
    async fn send_all(&mut self, buf: &[u8], more: bool) -> io::Result<()> {
        send_all(self, buf, more).await
    }

    async fn send_file(
        &mut self,
        file: &StorageFile,
        offset: u64,
        len: u64,
        fallback: &mut Vec<u8>,
    ) -> io::Result<()> {
        send_file(self, file, offset, len, fallback).await
    }
}

impl LiveSocket for TlsStream<TcpStream> {
    async fn send_all(&mut self, buf: &[u8], more: bool) -> io::Result<()> {
        self.write_all(buf).await?;
        if !more {
            self.flush().await?;
        }
        Ok(())
    }

    async fn send_file(
        &mut self,
        file: &StorageFile,
        offset: u64,
        len: u64,
        fallback: &mut Vec<u8>,
    ) -> io::Result<()> {
        copy(self, file, offset, len, fallback).await?;
        self.flush().await
    }
}

/// Largest single sendfile call.
const MAX_CHUNK: u64 = 1 << 30;
/// Fallback copy buffer size.
const COPY_BUF: usize = 256 * 1024;

/// Sends all of `buf`; with `more`, tells the kernel more data follows at once.
pub async fn send_all(conn: &TcpStream, mut buf: &[u8], more: bool) -> io::Result<()> {
    let flags = if more {
        libc::MSG_MORE | libc::MSG_NOSIGNAL
    } else {
        libc::MSG_NOSIGNAL
    };
    let sock = SockRef::from(conn);
    while !buf.is_empty() {
        let n = conn
            .async_io(Interest::WRITABLE, || sock.send_with_flags(buf, flags))
            .await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        buf = buf.get(n..).unwrap_or_default();
    }
    Ok(())
}

/// Sends `len` bytes of `file` from `offset`. Fails if the file ends first.
pub async fn send_file(
    conn: &mut TcpStream,
    file: &StorageFile,
    mut offset: u64,
    mut len: u64,
    fallback: &mut Vec<u8>,
) -> io::Result<()> {
    while len > 0 {
        let chunk = usize::try_from(len.min(MAX_CHUNK)).unwrap_or(usize::MAX);
        let r = conn
            .async_io(Interest::WRITABLE, || {
                file.send_to(conn.as_fd(), offset, chunk)
            })
            .await;
        match r {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file ended")),
            Ok(n) => {
                offset = offset.saturating_add(n as u64);
                len = len.saturating_sub(n as u64);
            }
            Err(e)
                if matches!(
                    Errno::from_raw(e.raw_os_error().unwrap_or(0)),
                    Errno::EINVAL | Errno::ENOSYS | Errno::EOPNOTSUPP
                ) =>
            {
                tracing::debug!("sendfile refused ({e}); copying instead");
                return copy(conn, file, offset, len, fallback).await;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

async fn copy(
    conn: &mut (impl tokio::io::AsyncWrite + Unpin),
    file: &StorageFile,
    mut offset: u64,
    mut len: u64,
    buf: &mut Vec<u8>,
) -> io::Result<()> {
    buf.resize(COPY_BUF, 0);
    while len > 0 {
        let n = usize::try_from(len).unwrap_or(usize::MAX).min(buf.len());
        let part = buf.get_mut(..n).unwrap_or_default();
        file.read_exact_at(part, offset).map_err(|e| e.source)?;
        conn.write_all(part).await?;
        offset = offset.saturating_add(n as u64);
        len = len.saturating_sub(n as u64);
    }
    Ok(())
}
