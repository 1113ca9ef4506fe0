//! The control connection: commands and their replies, in order, encoded and decoded with
//! `trelay_proto::lttng::relayd` in the layouts of the negotiated protocol minor.
//!
//! Commands that need an answer before the caller can go on (ADD_STREAM, CREATE_SESSION, …) are
//! strict request/reply. SEND_INDEX (and beacons, which are SEND_INDEX too) may be *pipelined*:
//! up to `window` of them stay unanswered when the sender moves on, their replies read later in
//! order, so index round trips overlap with the next data packets. A window of 0 behaves like
//! LTTng's consumer daemon (each index waits for its reply before anything else is sent). Any
//! other command first collects the replies in flight. The write and read buffers are reused for every command.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use trelay_proto::lttng::relayd::{
    decode_reply, Command, CommandKind, ControlHeader, MetadataHeader, ProtocolMinor, Reply,
    ReturnCode, SendIndex,
};
use trelay_proto::{Decoded, StreamId};

use super::SendError;

/// A control connection to a relay.
#[derive(Debug)]
pub struct ControlConn {
    rd: BufReader<OwnedReadHalf>,
    wr: OwnedWriteHalf,
    minor: ProtocolMinor,
    out: Vec<u8>,
    reply: Vec<u8>,
    in_flight: VecDeque<Instant>,
    window: usize,
    rtt: Option<Histogram<u64>>,
}

impl ControlConn {
    /// Wraps a connected socket; at most `window` SEND_INDEX replies may stay outstanding (0:
    /// wait for each).
    pub fn new(sock: TcpStream, window: usize) -> Self {
        let _ = sock.set_nodelay(true);
        let (rd, wr) = sock.into_split();
        ControlConn {
            rd: BufReader::with_capacity(4096, rd),
            wr,
            minor: ProtocolMinor::CURRENT,
            out: Vec::with_capacity(4096),
            reply: Vec::with_capacity(64),
            in_flight: VecDeque::new(),
            window,
            rtt: None,
        }
    }

    /// Sets the negotiated minor (layouts of later commands and replies).
    pub(crate) fn set_minor(&mut self, minor: ProtocolMinor) {
        self.minor = minor;
    }

    /// Records the round-trip time of every SEND_INDEX from now on, in nanoseconds.
    pub fn record_index_rtt(&mut self) {
        self.rtt = Histogram::new_with_bounds(1, 60_000_000_000, 3).ok();
    }

    /// The SEND_INDEX round trips recorded so far.
    pub fn index_rtt(&self) -> Option<&Histogram<u64>> {
        self.rtt.as_ref()
    }

    async fn write_out(&mut self, kind: CommandKind) -> Result<(), SendError> {
        let r = self.wr.write_all(&self.out).await;
        self.out.clear();
        r.map_err(|e| SendError::io(kind, e))
    }

    /// Sends `cmd` and returns its reply, after the replies still in flight.
    pub(crate) async fn call(&mut self, cmd: &Command<'_>) -> Result<Reply, SendError> {
        self.drain_indexes().await?;
        cmd.encode(self.minor, &mut self.out);
        self.write_out(cmd.kind()).await?;
        self.read_reply(cmd.kind()).await
    }

    /// Sends `cmd` and expects a generic reply of LTTNG_OK.
    pub(crate) async fn call_ok(&mut self, cmd: &Command<'_>) -> Result<(), SendError> {
        match self.call(cmd).await? {
            Reply::Generic(code) => check_ok(cmd.kind(), code),
            other => Err(unexpected(cmd.kind(), &other)),
        }
    }

    async fn read_reply(&mut self, kind: CommandKind) -> Result<Reply, SendError> {
        loop {
            match decode_reply(kind, self.minor, &self.reply) {
                Ok(Decoded::Done { msg, used }) => {
                    self.reply.drain(..used);
                    return Ok(msg);
                }
                Ok(Decoded::Incomplete { needed }) => {
                    let have = self.reply.len();
                    self.reply.resize(needed.max(have + 1), 0);
                    let r = self.rd.read_exact(&mut self.reply[have..]).await;
                    if let Err(e) = r {
                        self.reply.truncate(have);
                        return Err(SendError::io(kind, e));
                    }
                }
                Err(e) => {
                    self.reply.clear();
                    return Err(SendError::BadReply {
                        cmd: kind.name(),
                        reason: e.to_string(),
                    });
                }
            }
        }
    }

    /// SEND_METADATA (no reply): the header and sub-header, then `data` written from the
    /// caller's buffer.
    pub(crate) async fn send_metadata(
        &mut self,
        stream: StreamId,
        data: &[u8],
        padding: u32,
    ) -> Result<(), SendError> {
        let kind = CommandKind::SendMetadata;
        ControlHeader::new(kind, (MetadataHeader::LEN + data.len()) as u64).encode(&mut self.out);
        MetadataHeader {
            stream_id: stream,
            padding_size: padding,
        }
        .encode(&mut self.out);
        self.write_out(kind).await?;
        self.wr
            .write_all(data)
            .await
            .map_err(|e| SendError::io(kind, e))
    }

    /// Sends a SEND_INDEX, then reads replies until at most `window` are outstanding.
    pub(crate) async fn pipelined_index(&mut self, idx: SendIndex) -> Result<(), SendError> {
        Command::SendIndex(idx).encode(self.minor, &mut self.out);
        self.write_out(CommandKind::SendIndex).await?;
        self.in_flight.push_back(Instant::now());
        while self.in_flight.len() > self.window {
            self.read_index_reply().await?;
        }
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
        let kind = CommandKind::SendIndex;
        let reply = self.read_reply(kind).await?;
        let sent = self.in_flight.pop_front();
        if let (Some(h), Some(sent)) = (self.rtt.as_mut(), sent) {
            let ns = u64::try_from(sent.elapsed().as_nanos()).unwrap_or(u64::MAX);
            let _ = h.record(ns.max(1));
        }
        match reply {
            Reply::Generic(code) => check_ok(kind, code),
            other => Err(unexpected(kind, &other)),
        }
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
pub(crate) fn check_ok(kind: CommandKind, code: ReturnCode) -> Result<(), SendError> {
    if code.is_ok() {
        Ok(())
    } else {
        Err(SendError::Refused {
            cmd: kind.name(),
            code: code.0,
        })
    }
}

/// A reply of the wrong shape (cannot happen with `decode_reply`, kept as an error).
pub(crate) fn unexpected(kind: CommandKind, reply: &Reply) -> SendError {
    SendError::BadReply {
        cmd: kind.name(),
        reason: format!("unexpected reply {reply:?}"),
    }
}
