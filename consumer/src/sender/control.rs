//! The control connection: commands and their replies, in order.
//!
//! Commands that need an answer before the caller can go on (ADD_STREAM, CREATE_SESSION, …) are
//! strict request/reply. SEND_INDEX (and beacons, which are SEND_INDEX too) are *pipelined*: up
//! to `window` of them may be in flight, their 4-byte replies read later in order, so the index
//! round trip overlaps with the next data packet. A window of 1 behaves like LTTng's consumer
//! daemon (each index waits for its reply before the next one is sent). Any other command first
//! collects the replies in flight. The write buffer is reused for every command.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use super::wire::{Cmd, LTTNG_OK};
use super::SendError;

/// Largest path a relay may return (CREATE_SESSION, CLOSE_TRACE_CHUNK).
const MAX_REPLY_PATH: u32 = 4096;

/// A control connection to a relay.
#[derive(Debug)]
pub struct ControlConn {
    rd: BufReader<OwnedReadHalf>,
    wr: OwnedWriteHalf,
    /// Reused buffer for outgoing commands.
    pub(crate) out: Vec<u8>,
    in_flight: VecDeque<Instant>,
    window: usize,
    rtt: Option<Histogram<u64>>,
}

impl ControlConn {
    /// Wraps a connected socket; at most `window` (≥ 1) SEND_INDEX replies may be outstanding.
    pub fn new(sock: TcpStream, window: usize) -> Self {
        let _ = sock.set_nodelay(true);
        let (rd, wr) = sock.into_split();
        ControlConn {
            rd: BufReader::with_capacity(4096, rd),
            wr,
            out: Vec::with_capacity(4096),
            in_flight: VecDeque::new(),
            window: window.max(1),
            rtt: None,
        }
    }

    /// Records the round-trip time of every SEND_INDEX from now on, in nanoseconds.
    pub fn record_index_rtt(&mut self) {
        self.rtt = Histogram::new_with_bounds(1, 60_000_000_000, 3).ok();
    }

    /// The SEND_INDEX round trips recorded so far.
    pub fn index_rtt(&self) -> Option<&Histogram<u64>> {
        self.rtt.as_ref()
    }

    /// Writes what is in the buffer and clears it.
    pub(crate) async fn flush_out(&mut self, cmd: Cmd) -> Result<(), SendError> {
        let r = self.wr.write_all(&self.out).await;
        self.out.clear();
        r.map_err(|e| SendError::io(cmd, e))
    }

    /// Writes the buffered command plus `extra` bytes (sent without copying them).
    pub(crate) async fn flush_with(&mut self, cmd: Cmd, extra: &[u8]) -> Result<(), SendError> {
        self.flush_out(cmd).await?;
        self.wr
            .write_all(extra)
            .await
            .map_err(|e| SendError::io(cmd, e))
    }

    /// Sends the buffered command and reads exactly `reply.len()` bytes of reply, after the
    /// replies still in flight.
    pub(crate) async fn call(&mut self, cmd: Cmd, reply: &mut [u8]) -> Result<(), SendError> {
        self.drain_indexes().await?;
        self.flush_out(cmd).await?;
        self.read(cmd, reply).await
    }

    /// Sends the buffered command and expects a generic reply of LTTNG_OK.
    pub(crate) async fn call_ok(&mut self, cmd: Cmd) -> Result<(), SendError> {
        let mut r = [0u8; 4];
        self.call(cmd, &mut r).await?;
        check_ok(cmd, u32::from_be_bytes(r))
    }

    /// Reads exactly `buf.len()` reply bytes.
    pub(crate) async fn read(&mut self, cmd: Cmd, buf: &mut [u8]) -> Result<(), SendError> {
        self.rd
            .read_exact(buf)
            .await
            .map(|_| ())
            .map_err(|e| SendError::io(cmd, e))
    }

    /// Reads a `u32` length then that many path bytes (NUL-terminated).
    pub(crate) async fn read_path(&mut self, cmd: Cmd, len: u32) -> Result<String, SendError> {
        if len > MAX_REPLY_PATH {
            return Err(SendError::BadReply {
                cmd: cmd.name(),
                reason: format!("path of {len} bytes"),
            });
        }
        let mut p = vec![0u8; len as usize];
        self.read(cmd, &mut p).await?;
        let end = p.iter().position(|&b| b == 0).unwrap_or(p.len());
        Ok(String::from_utf8_lossy(&p[..end]).into_owned())
    }

    /// Sends the buffered SEND_INDEX, keeping at most `window` replies outstanding.
    pub(crate) async fn pipelined_index(&mut self) -> Result<(), SendError> {
        while self.in_flight.len() >= self.window {
            self.read_index_reply().await?;
        }
        self.flush_out(Cmd::SendIndex).await?;
        self.in_flight.push_back(Instant::now());
        Ok(())
    }

    /// Reads every outstanding SEND_INDEX reply.
    pub async fn drain_indexes(&mut self) -> Result<(), SendError> {
        while !self.in_flight.is_empty() {
            self.read_index_reply().await?;
        }
        Ok(())
    }

    /// SEND_INDEX replies not read yet.
    pub fn indexes_in_flight(&self) -> usize {
        self.in_flight.len()
    }

    async fn read_index_reply(&mut self) -> Result<(), SendError> {
        let mut r = [0u8; 4];
        self.read(Cmd::SendIndex, &mut r).await?;
        let sent = self.in_flight.pop_front();
        if let (Some(h), Some(sent)) = (self.rtt.as_mut(), sent) {
            let ns = u64::try_from(sent.elapsed().as_nanos()).unwrap_or(u64::MAX);
            let _ = h.record(ns.max(1));
        }
        check_ok(Cmd::SendIndex, u32::from_be_bytes(r))
    }

    /// Shuts the write side down (the relay sees EOF) and waits up to `grace` for the relay to
    /// close its side.
    pub async fn shutdown(mut self, grace: Duration) -> Result<(), SendError> {
        self.drain_indexes().await?;
        let _ = self.wr.shutdown().await;
        let mut sink = [0u8; 64];
        let _ = tokio::time::timeout(grace, async {
            while matches!(self.rd.read(&mut sink).await, Ok(n) if n > 0) {}
        })
        .await;
        Ok(())
    }
}

/// Turns a reply code into an error unless it is LTTNG_OK.
pub(crate) fn check_ok(cmd: Cmd, code: u32) -> Result<(), SendError> {
    if code == LTTNG_OK {
        Ok(())
    } else {
        Err(SendError::Refused {
            cmd: cmd.name(),
            code,
        })
    }
}
