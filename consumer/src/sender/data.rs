//! The data connection: a data header then the packet bytes, nothing ever read back.
//!
//! Packets in memory go out with one vectored write of header and payload (no copy into a
//! staging buffer). Packets in a file go out with `sendfile(2)` from the page cache straight to
//! the socket after their header, falling back to read-and-write where the kernel refuses.

use std::fs::File;
use std::io::{self, IoSlice};

use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::TcpStream;

use super::SendError;
use trelay_proto::lttng::relayd::DataHeader;
use trelay_proto::{NetSeq, StreamId};

/// Bytes copied per round in the read-and-write fallback.
const FALLBACK_CHUNK: usize = 256 * 1024;

/// A data connection to a relay.
#[derive(Debug)]
pub struct DataConn {
    sock: TcpStream,
    sendfile_ok: bool,
    scratch: Vec<u8>,
}

fn io_err(e: io::Error) -> SendError {
    SendError::io_data(e)
}

impl DataConn {
    /// Wraps a connected socket.
    pub fn new(sock: TcpStream) -> Self {
        let _ = sock.set_nodelay(true);
        DataConn {
            sock,
            sendfile_ok: true,
            scratch: Vec::new(),
        }
    }

    /// Sends one packet: `payload` then `padding` zero bytes the relay appends.
    pub async fn send(
        &mut self,
        stream: u64,
        seq: u64,
        payload: &[u8],
        padding: u32,
    ) -> Result<(), SendError> {
        let len =
            u32::try_from(payload.len()).map_err(|_| SendError::TooLarge(payload.len() as u64))?;
        let header = header(stream, seq, len, padding);
        write_all_vectored(&self.sock, &header, payload)
            .await
            .map_err(io_err)
    }

    /// Sends one packet whose `len` payload bytes are at `offset` in `file`.
    pub async fn send_from_file(
        &mut self,
        stream: u64,
        seq: u64,
        file: &File,
        offset: u64,
        len: u64,
        padding: u32,
    ) -> Result<(), SendError> {
        let len32 = u32::try_from(len).map_err(|_| SendError::TooLarge(len))?;
        let header = header(stream, seq, len32, padding);
        self.sock.write_all(&header).await.map_err(io_err)?;
        let mut off = offset;
        let end = offset + len;
        while off < end {
            if self.sendfile_ok {
                match self.sendfile_some(file, &mut off, end).await {
                    Ok(()) => continue,
                    Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) => {
                        tracing::debug!("sendfile refused ({e}), copying instead");
                        self.sendfile_ok = false;
                    }
                    Err(e) => return Err(io_err(e)),
                }
            }
            let n = ((end - off) as usize).min(FALLBACK_CHUNK);
            self.scratch.resize(n, 0);
            read_exact_at(file, &mut self.scratch[..n], off).map_err(io_err)?;
            self.sock
                .write_all(&self.scratch[..n])
                .await
                .map_err(io_err)?;
            off += n as u64;
        }
        Ok(())
    }

    async fn sendfile_some(&mut self, file: &File, off: &mut u64, end: u64) -> io::Result<()> {
        loop {
            self.sock.writable().await?;
            let count = (end - *off).min(1 << 30) as usize;
            let res = self.sock.try_io(Interest::WRITABLE, || {
                let mut o =
                    i64::try_from(*off).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
                let n = nix::sys::sendfile::sendfile(&self.sock, file, Some(&mut o), count)
                    .map_err(io::Error::from)?;
                Ok(n)
            });
            match res {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "data file shrank while sending",
                    ))
                }
                Ok(n) => {
                    *off += n as u64;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Shuts the write side down (the relay sees EOF), then waits up to `grace` for the relay
    /// to close its side, which it does once it has consumed every byte sent before.
    pub async fn shutdown(mut self, grace: std::time::Duration) -> Result<(), SendError> {
        self.sock.shutdown().await.map_err(io_err)?;
        let mut sink = [0u8; 64];
        let drained = tokio::time::timeout(grace, async {
            loop {
                match self.sock.read(&mut sink).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
        if drained.is_err() {
            tracing::debug!("the relay kept the data connection open after EOF");
        }
        Ok(())
    }
}

fn header(stream: u64, seq: u64, data_size: u32, padding_size: u32) -> [u8; 32] {
    DataHeader {
        circuit_id: 0,
        stream_id: StreamId(stream),
        net_seq: NetSeq(seq),
        data_size,
        padding_size,
    }
    .to_bytes()
}

fn read_exact_at(file: &File, buf: &mut [u8], at: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, at)
}

/// Writes `a` then `b` with as few vectored writes as the socket allows.
async fn write_all_vectored(sock: &TcpStream, a: &[u8], b: &[u8]) -> io::Result<()> {
    let total = a.len() + b.len();
    let mut done = 0usize;
    while done < total {
        sock.writable().await?;
        let res = if done < a.len() {
            sock.try_write_vectored(&[IoSlice::new(&a[done..]), IoSlice::new(b)])
        } else {
            sock.try_write(&b[done - a.len()..])
        };
        match res {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
