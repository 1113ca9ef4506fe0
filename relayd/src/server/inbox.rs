//! A connection's receive buffer: one read takes whatever the peer already sent (several small
//! messages at once), and messages are parsed from it in place, so a small message costs no read
//! of its own. The buffer is allocated once per connection and never grows.

use std::io;
use std::time::Instant;
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

/// Received bytes not yet consumed: `buf[start..end]`.
#[derive(Debug)]
pub struct Inbox {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl Inbox {
    /// An empty inbox holding at most `capacity` bytes.
    pub fn new(capacity: usize) -> Inbox {
        Inbox {
            buf: vec![0u8; capacity].into_boxed_slice(),
            start: 0,
            end: 0,
        }
    }

    /// Appends `bytes` (at most what fits; returns how many), as if they had been read.
    pub fn preload(&mut self, bytes: &[u8]) -> usize {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let room = self.buf.get_mut(self.end..).unwrap_or_default();
        let n = bytes.len().min(room.len());
        room.get_mut(..n)
            .unwrap_or_default()
            .copy_from_slice(bytes.get(..n).unwrap_or_default());
        self.end += n;
        n
    }

    /// Capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Number of buffered bytes.
    pub fn len(&self) -> usize {
        self.end - self.start
    }

    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// The buffered bytes.
    pub fn data(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or_default()
    }

    /// Drops the first `n` buffered bytes (at most all of them).
    pub fn consume(&mut self, n: usize) {
        self.start = self.start.saturating_add(n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Waits for the first bytes of the next message when nothing is buffered (with the drain
    /// rules of [`super::read_next`] during shutdown), reading at most `limit` bytes. Returns
    /// false at the end of the connection. Does nothing when bytes are already buffered.
    pub async fn wait_first(
        &mut self,
        sock: &mut (impl tokio::io::AsyncRead + Unpin),
        limit: usize,
        shutdown: &CancellationToken,
        drain: &mut Option<Instant>,
    ) -> io::Result<bool> {
        if !self.is_empty() {
            return Ok(true);
        }
        let want = limit.clamp(1, self.buf.len());
        let room = self.buf.get_mut(..want).unwrap_or_default();
        let n = super::read_next(sock, room, shutdown, drain).await?;
        self.start = 0;
        self.end = n;
        Ok(n > 0)
    }

    /// Reads until at least `min` bytes are buffered (`min` at most the capacity), asking each
    /// read for up to `limit` buffered bytes in all (more than `min` lets following messages come
    /// along). The end of the connection before `min` is an error.
    pub async fn fill(
        &mut self,
        sock: &mut (impl tokio::io::AsyncRead + Unpin),
        min: usize,
        limit: usize,
    ) -> io::Result<()> {
        if min > self.buf.len() {
            return Err(io::ErrorKind::InvalidInput.into());
        }
        let target = limit.clamp(min, self.buf.len());
        while self.len() < min {
            if self.start.saturating_add(target) > self.buf.len() {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            let top = self.start.saturating_add(target).min(self.buf.len());
            let room = self.buf.get_mut(self.end..top).unwrap_or_default();
            let n = sock.read(room).await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.end += n;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;

    async fn pair() -> (TcpStream, TcpStream) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (b, _) = l.accept().await.unwrap();
        (a, b)
    }

    #[tokio::test]
    async fn messages_are_taken_from_one_read_and_compacted() {
        let (mut tx, mut rx) = pair().await;
        let mut inbox = Inbox::new(8);
        let (sd, mut drain) = (CancellationToken::new(), None);
        tx.write_all(b"abcdef").await.unwrap();
        assert!(inbox.wait_first(&mut rx, 8, &sd, &mut drain).await.unwrap());
        inbox.fill(&mut rx, 6, 8).await.unwrap();
        assert_eq!(inbox.data(), b"abcdef");
        inbox.consume(4);
        assert_eq!(inbox.data(), b"ef");
        // Needing 6 more bytes than fit after `start` moves the rest to the front first.
        tx.write_all(b"ghijkl").await.unwrap();
        inbox.fill(&mut rx, 8, 8).await.unwrap();
        assert_eq!(inbox.data(), b"efghijkl");
        inbox.consume(100);
        assert!(inbox.is_empty());
        drop(tx);
        assert!(!inbox.wait_first(&mut rx, 8, &sd, &mut drain).await.unwrap());
    }

    #[tokio::test]
    async fn a_cut_message_is_an_error_and_oversized_wants_are_refused() {
        let (mut tx, mut rx) = pair().await;
        let mut inbox = Inbox::new(8);
        tx.write_all(b"abc").await.unwrap();
        drop(tx);
        let e = inbox.fill(&mut rx, 4, 8).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        let e = inbox.fill(&mut rx, 9, 9).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }

    #[tokio::test]
    async fn a_limit_of_one_header_reads_no_further() {
        let (mut tx, mut rx) = pair().await;
        let mut inbox = Inbox::new(64);
        tx.write_all(&[7u8; 40]).await.unwrap();
        let (sd, mut drain) = (CancellationToken::new(), None);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(inbox.wait_first(&mut rx, 4, &sd, &mut drain).await.unwrap());
        inbox.fill(&mut rx, 4, 4).await.unwrap();
        assert_eq!(inbox.len(), 4);
    }
}
