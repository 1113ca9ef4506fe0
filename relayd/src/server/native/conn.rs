//! The state of one trelay:// connection and what each message does.

use super::batch::{Batch, MetadataIn};
use super::NativeError;
use crate::identity::Peer;
use crate::session::manifest;
use crate::session::resumable::Resumable;
use crate::session::{Registry, Stream};
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use trelay_proto::ctf::format::TraceFormat;
use trelay_proto::trelay::assembler::Event;
use trelay_proto::trelay::frame::{self, Kind, END};
use trelay_proto::trelay::message::{Ack, AckLevel, Message};
use trelay_proto::NetSeq;

/// How long a commit requested by the sender may take before the connection gives up on it.
const COMMIT_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

/// The session this connection serves.
pub(super) struct Bound {
    pub(super) uuid: [u8; 16],
    pub(super) r: Arc<Resumable>,
    pub(super) generation: u64,
    pub(super) ack: AckLevel,
}

/// What the current message's data frames go to.
enum Pending {
    None,
    Packets(Batch),
    Metadata(MetadataIn),
}

/// One trelay:// connection.
pub(super) struct Conn<'a> {
    pub(super) registry: &'a Arc<Registry>,
    pub(super) shutdown: &'a CancellationToken,
    pub(super) identity: &'a Peer,
    pub(super) peer: String,
    pub(super) bound: Option<Bound>,
    pending: Pending,
    /// Messages completed on this connection (what acks count).
    done: u64,
    out: Vec<u8>,
    max_frame: u32,
    closed: bool,
    /// The last batch carried large packets: read the socket in small steps so their payloads
    /// stay in it and are spliced into the files instead of copied through the inbox.
    large_packets: bool,
}

impl<'a> Conn<'a> {
    pub(super) fn new(
        registry: &'a Arc<Registry>,
        shutdown: &'a CancellationToken,
        identity: &'a Peer,
        peer: String,
    ) -> Self {
        Conn {
            registry,
            shutdown,
            identity,
            peer,
            bound: None,
            pending: Pending::None,
            done: 0,
            out: Vec::with_capacity(256),
            max_frame: frame::HELLO_MAX,
            closed: false,
            large_packets: false,
        }
    }

    pub(super) fn set_max_frame(&mut self, max: u32) {
        self.max_frame = max;
    }

    /// The end of the input between messages: fine; inside one: the message is lost.
    pub(super) fn eof(&self) -> Result<(), NativeError> {
        match self.pending {
            Pending::None => Ok(()),
            _ => Err(NativeError::Io(std::io::ErrorKind::UnexpectedEof.into())),
        }
    }

    /// Handles one event; true when the session closed and the connection ends.
    pub(super) async fn handle(
        &mut self,
        event: Event<'_>,
        sock: &mut impl super::Link,
    ) -> Result<bool, NativeError> {
        if let Some(b) = &self.bound {
            if !b.r.owned_by(b.generation) {
                return Err(NativeError::Superseded);
            }
        }
        match event {
            Event::Hello(_) => Err(NativeError::Protocol("a second hello".into())),
            Event::Ack(_) => Err(NativeError::Protocol("acks go from the relay".into())),
            Event::Error(e) => Err(NativeError::Protocol(format!(
                "the sender gave up: {} ({})",
                e.message, e.code
            ))),
            Event::Reset => {
                self.abandon();
                Ok(false)
            }
            Event::Header { msg, data } => self.header(msg, data, sock).await,
            Event::Data { bytes, end } => {
                match &mut self.pending {
                    Pending::Packets(b) => b.feed(self.registry, self.shutdown, bytes).await?,
                    Pending::Metadata(m) => m.feed(bytes)?,
                    Pending::None => return Err(NativeError::Protocol("stray data".into())),
                }
                if end {
                    match std::mem::replace(&mut self.pending, Pending::None) {
                        Pending::Packets(b) => b.finish()?,
                        Pending::Metadata(m) => m.finish(self.registry, self.shutdown).await?,
                        Pending::None => {}
                    }
                    self.completed(sock).await?;
                }
                Ok(false)
            }
        }
    }

    /// Whether the last packet batch carried packets large enough to splice (on average at
    /// least `min` content bytes each).
    pub(super) fn large_packets(&self) -> bool {
        self.large_packets
    }

    /// Whether the current message's data goes to a packet batch (it may then be spliced).
    pub(super) fn takes_packets(&self) -> bool {
        matches!(self.pending, Pending::Packets(_))
    }

    /// Splices the next `len` data bytes of the current batch from `sock` into its files.
    pub(super) async fn splice(
        &mut self,
        sock: &mut TcpStream,
        splicer: &mut crate::server::splice::Splicer,
        len: u64,
    ) -> Result<(), NativeError> {
        match &mut self.pending {
            Pending::Packets(b) => {
                b.splice(self.registry, self.shutdown, sock, splicer, len)
                    .await
            }
            _ => Err(NativeError::Protocol("stray data".into())),
        }
    }

    fn abandon(&mut self) {
        if let Pending::Packets(b) = std::mem::replace(&mut self.pending, Pending::None) {
            b.abort();
        }
    }

    pub(super) fn bound(&self) -> Result<&Bound, NativeError> {
        self.bound
            .as_ref()
            .ok_or_else(|| NativeError::Protocol("no session opened yet".into()))
    }

    fn stream(&self, n: u32) -> Result<Arc<Stream>, NativeError> {
        self.bound()?
            .r
            .stream(n)
            .ok_or_else(|| NativeError::Refused(format!("unknown stream {n}")))
    }

    async fn header(
        &mut self,
        msg: Message,
        data: bool,
        sock: &mut impl super::Link,
    ) -> Result<bool, NativeError> {
        let needs_data = matches!(msg, Message::Packets(_) | Message::Metadata { .. });
        if needs_data != data {
            return Err(NativeError::Protocol(format!(
                "{} {} data frames",
                name(&msg),
                if data { "must not have" } else { "needs" }
            )));
        }
        match msg {
            Message::Open(o) => self.open(o, TraceFormat::Ctf1_8)?,
            Message::OpenTraced(o) => self.open(o.open, o.trace_format)?,
            Message::AddStream(a) => self.add_stream(a)?,
            Message::Packets(p) => {
                let stream = self.stream(p.stream)?;
                let cap = self.registry.settings.max_packet_size;
                let batch = Batch::new(stream, p.packets, cap)?;
                self.large_packets = batch.mean_content() >= super::SPLICE_MIN;
                self.pending = Pending::Packets(batch);
                return Ok(false);
            }
            Message::Metadata {
                stream,
                offset,
                len,
            } => {
                let stream = self.stream(stream)?;
                let m = MetadataIn::new(self.registry, stream, offset, len).await?;
                self.pending = Pending::Metadata(m);
                return Ok(false);
            }
            Message::StreamsSent => {
                let b = self.bound()?;
                let session = b.r.session.clone();
                let streams = self.registry.session_streams(&session);
                let mut any = false;
                for s in &streams {
                    any |= s.lock().publish();
                }
                if any {
                    session.lock().new_streams = true;
                }
                self.registry.request_commit(&session, streams);
            }
            Message::Beacon {
                stream,
                timestamp_end,
                stream_id,
            } => {
                let s = self.stream(stream)?;
                let last = s.lock().last_complete_seq(s.index_version.is_some());
                let half = crate::session::IndexHalf {
                    packet_size: 0,
                    content_size: 0,
                    timestamp_begin: 0,
                    timestamp_end,
                    events_discarded: 0,
                    stream_id,
                    stream_instance_id: u64::MAX,
                    packet_seq_num: u64::MAX,
                };
                s.add_index(last, half)
                    .map_err(|e| NativeError::Protocol(e.to_string()))?;
                if s.session.params.live_timer > 0 {
                    self.registry.request_commit(&s.session, [s.clone()]);
                }
            }
            Message::Commit => {
                self.commit().await?;
                self.done = self.done.saturating_add(1);
                self.ack(AckLevel::Committed, sock).await?;
                return Ok(false);
            }
            Message::CloseStream { stream, last_seq } => {
                let s = self.stream(stream)?;
                s.request_close(last_seq.map_or(NetSeq::UNSET, NetSeq));
                let aborted = s.session.lock().aborted;
                self.registry.try_close_stream(&s, aborted);
            }
            Message::Close => {
                self.close().await?;
                self.done = self.done.saturating_add(1);
                self.ack(AckLevel::Committed, sock).await?;
                return Ok(true);
            }
            Message::Opened(_) | Message::StreamAdded { .. } => {
                return Err(NativeError::Protocol(format!(
                    "{} goes from the relay",
                    name(&msg)
                )))
            }
        }
        self.completed(sock).await?;
        Ok(false)
    }

    /// A message is complete: count it, send its replies and, at the received level, its ack.
    async fn completed(&mut self, sock: &mut impl super::Link) -> Result<(), NativeError> {
        self.done = self.done.saturating_add(1);
        if self
            .bound
            .as_ref()
            .is_some_and(|b| b.ack == AckLevel::Received)
        {
            self.push_ack(AckLevel::Received);
        }
        self.flush(sock).await
    }

    fn push_ack(&mut self, level: AckLevel) {
        let mut p = Vec::with_capacity(Ack::LEN);
        Ack {
            level,
            upto: self.done,
        }
        .encode(&mut p);
        frame::encode(Kind::Ack, END, &p, &mut self.out);
    }

    async fn ack(
        &mut self,
        level: AckLevel,
        sock: &mut impl super::Link,
    ) -> Result<(), NativeError> {
        self.push_ack(level);
        self.flush(sock).await
    }

    async fn flush(&mut self, sock: &mut impl super::Link) -> Result<(), NativeError> {
        if !self.out.is_empty() {
            sock.write_all(&self.out).await?;
            self.out.clear();
        }
        Ok(())
    }

    pub(super) fn reply(&mut self, msg: &Message) -> Result<(), NativeError> {
        let bytes = msg
            .to_bytes()
            .map_err(|e| NativeError::Protocol(e.to_string()))?;
        frame::encode_split(Kind::Header, &bytes, self.max_frame, true, &mut self.out);
        Ok(())
    }

    async fn commit(&mut self) -> Result<(), NativeError> {
        let session = self.bound()?.r.session.clone();
        let streams = self.registry.session_streams(&session);
        self.registry.request_commit(&session, streams);
        let idle = session.commit.idle(COMMIT_WAIT).await;
        if let Some(why) = session.lock().failed.clone() {
            return Err(NativeError::Storage(format!("the session failed: {why}")));
        }
        if !idle {
            // Never acknowledged as committed before it is.
            return Err(NativeError::Storage(format!(
                "the commit did not finish within {}s",
                COMMIT_WAIT.as_secs()
            )));
        }
        Ok(())
    }

    async fn close(&mut self) -> Result<(), NativeError> {
        let b = self.bound()?;
        let (uuid, r) = (b.uuid, b.r.clone());
        let streams: Vec<Arc<Stream>> = crate::session::chunk::lock(&r.streams)
            .values()
            .cloned()
            .collect();
        for s in &streams {
            let last = s.lock().last_complete_seq(s.index_version.is_some());
            s.request_close(last);
        }
        self.commit().await?;
        self.registry.close_session(&r.session, false, false);
        self.registry.resumables.remove(&uuid);
        manifest::remove(&self.registry.fs, &self.registry.output, &uuid);
        self.closed = true;
        tracing::info!(session = %r.session.id, "trelay:// session closed");
        Ok(())
    }

    /// The connection is gone: an unfinished packet is cut off; the session waits for its
    /// sender to come back for `resume_timeout_s`. Returns the session id, if any.
    pub(super) async fn disconnected(&mut self) -> Option<u64> {
        self.abandon();
        let b = self.bound.take()?;
        let id = b.r.session.id.0;
        if self.closed || !b.r.owned_by(b.generation) {
            return Some(id);
        }
        let registry = self.registry.clone();
        let wait = registry.settings.resume_timeout();
        tokio::spawn(async move {
            tokio::time::sleep(wait).await;
            if b.r.owned_by(b.generation) && registry.resumables.get(&b.uuid).is_some() {
                tracing::warn!(session = %b.r.session.id, "trelay:// sender did not come back within resume_timeout_s: session closed");
                registry.resumables.remove(&b.uuid);
                manifest::remove(&registry.fs, &registry.output, &b.uuid);
                registry.close_session(&b.r.session, false, true);
            }
        });
        Some(id)
    }
}

fn name(m: &Message) -> &'static str {
    match m {
        Message::Open(_) => "Open",
        Message::OpenTraced(_) => "OpenTraced",
        Message::Opened(_) => "Opened",
        Message::AddStream(_) => "AddStream",
        Message::StreamAdded { .. } => "StreamAdded",
        Message::Packets(_) => "Packets",
        Message::Metadata { .. } => "Metadata",
        Message::StreamsSent => "StreamsSent",
        Message::Beacon { .. } => "Beacon",
        Message::Commit => "Commit",
        Message::CloseStream { .. } => "CloseStream",
        Message::Close => "Close",
    }
}
