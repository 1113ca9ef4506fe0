//! The data of a message: packets of a batch written to their stream's file as the bytes come
//! (padding appended by the relay, index halves recorded with them), and metadata gathered under
//! the relay-wide metadata budget. Packets the relay already has (a resend after a reconnect)
//! are skipped by sequence number.

use super::NativeError;
use crate::server::room::Room;
use crate::session::{IndexHalf, IngestError, PacketSlot, Registry, Stream};
use crate::storage::StorageError;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use trelay_proto::trelay::message::PacketMeta;
use trelay_proto::NetSeq;

/// Where the stream's received packets end: the next sequence number it takes.
fn next_seq(stream: &Stream) -> u64 {
    let last = stream
        .lock()
        .last_complete_seq(stream.index_version.is_some());
    if last.is_unset() {
        0
    } else {
        last.0.saturating_add(1)
    }
}

/// Retries `op` while it finds the disk full, waiting for space the way data connections do.
async fn with_room<T>(
    registry: &Registry,
    stream: &Arc<Stream>,
    shutdown: &CancellationToken,
    mut op: impl FnMut() -> Result<T, StorageError>,
) -> Result<T, NativeError> {
    let room = Room {
        registry,
        session: &stream.session,
        shutdown,
    };
    let mut attempt = 0;
    loop {
        match op() {
            Ok(v) => {
                if attempt > 0 {
                    room.cleared();
                }
                return Ok(v);
            }
            Err(e) if e.is_no_space() => {
                room.wait(e, attempt)
                    .await
                    .map_err(|g| NativeError::Storage(g.to_string()))?;
                attempt = attempt.saturating_add(1);
            }
            Err(e) => {
                stream.session.fail(e.to_string());
                return Err(NativeError::Storage(e.to_string()));
            }
        }
    }
}

/// Refuses a packet whose index fields disagree with the bytes it carries (payload plus
/// padding), before any of it is written: counted and logged like the LTTng path's refusals.
fn check_index(
    stream: &Stream,
    seq: u64,
    i: &trelay_proto::trelay::message::IndexFields,
    total: u64,
) -> Result<(), NativeError> {
    let half = IndexHalf {
        packet_size: i.packet_size_bits,
        content_size: i.content_size_bits,
        ..IndexHalf::default()
    };
    half.check_against(total).map_err(|m| {
        let counters = &stream.session.counters;
        crate::telemetry::SessionCounters::add(&counters.invalid_indexes, 1);
        tracing::warn!(
            stream = %stream.id,
            seq,
            session = %stream.session.rel_dir.display(),
            "index entry refused: {m}"
        );
        NativeError::Refused(format!("packet {seq}: {m}"))
    })
}

/// A batch being received.
pub(super) struct Batch {
    stream: Arc<Stream>,
    packets: Vec<PacketMeta>,
    /// The packet whose content comes now.
    at: usize,
    /// Content bytes of it received so far.
    got: u64,
    /// Where it goes (`None` while skipped or not begun).
    slot: Option<PacketSlot>,
    /// The next sequence number the stream takes.
    next: u64,
}

impl Batch {
    pub(super) fn new(
        stream: Arc<Stream>,
        packets: Vec<PacketMeta>,
        max_packet: u64,
    ) -> Result<Batch, NativeError> {
        if stream.is_metadata {
            return Err(NativeError::Protocol(
                "packets for a metadata stream".into(),
            ));
        }
        let indexed = stream.index_version.is_some();
        for p in &packets {
            if p.content == 0 {
                return Err(NativeError::Protocol(format!("packet {} is empty", p.seq)));
            }
            let total = u64::from(p.content).saturating_add(u64::from(p.padding));
            if total > max_packet {
                return Err(NativeError::Refused(format!(
                    "packet {} of {total} bytes exceeds max_packet_size ({max_packet})",
                    p.seq
                )));
            }
            if let Some(i) = &p.index {
                check_index(&stream, p.seq, i, total)?;
            }
            if p.index.is_some() != indexed {
                return Err(NativeError::Protocol(format!(
                    "packet {}: index fields {}",
                    p.seq,
                    if indexed {
                        "missing"
                    } else {
                        "for a stream without index"
                    }
                )));
            }
        }
        let next = next_seq(&stream);
        Ok(Batch {
            stream,
            packets,
            at: 0,
            got: 0,
            slot: None,
            next,
        })
    }

    /// The batch's mean packet content size in bytes.
    pub(super) fn mean_content(&self) -> u64 {
        let total: u64 = self.packets.iter().map(|p| u64::from(p.content)).sum();
        total / (self.packets.len().max(1) as u64)
    }

    /// The packet whose content comes now, and whether the relay already has it (a resend).
    fn current(&self) -> Result<(PacketMeta, bool), NativeError> {
        let Some(p) = self.packets.get(self.at).copied() else {
            return Err(NativeError::Protocol(
                "more data than the batch announced".into(),
            ));
        };
        let skip = p.seq < self.next;
        if !skip && p.seq > self.next {
            return Err(NativeError::Protocol(format!(
                "packet {} after {}: a gap in the stream",
                p.seq,
                self.next.saturating_sub(1)
            )));
        }
        Ok((p, skip))
    }

    /// Reserves packet `p`'s place in its file, once (waiting for space on a full disk).
    async fn begin(
        &mut self,
        registry: &Registry,
        shutdown: &CancellationToken,
        p: PacketMeta,
    ) -> Result<(), NativeError> {
        if self.slot.is_some() {
            return Ok(());
        }
        let content = u64::from(p.content);
        let total = content.saturating_add(u64::from(p.padding));
        let stream = self.stream.clone();
        let slot = with_room(registry, &stream, shutdown, || {
            match stream.begin_packet(NetSeq(p.seq), content, total) {
                Ok(slot) => Ok(Ok(slot)),
                Err(IngestError::Storage(_, e)) => Err(e),
                Err(e) => Ok(Err(e)),
            }
        })
        .await?
        .map_err(|e| NativeError::Protocol(e.to_string()))?;
        self.slot = Some(slot);
        Ok(())
    }

    /// Takes the next data bytes of the batch.
    pub(super) async fn feed(
        &mut self,
        registry: &Registry,
        shutdown: &CancellationToken,
        mut bytes: &[u8],
    ) -> Result<(), NativeError> {
        while !bytes.is_empty() {
            let (p, skip) = self.current()?;
            let content = u64::from(p.content);
            if !skip {
                self.begin(registry, shutdown, p).await?;
            }
            let n = usize::try_from(content.saturating_sub(self.got))
                .unwrap_or(usize::MAX)
                .min(bytes.len());
            let (now, rest) = bytes.split_at(n);
            // The usual case: the whole content is here; it goes with its padding in one write.
            let whole = self.got == 0 && n as u64 == content;
            if let Some(slot) = &self.slot {
                let at = slot.offset.saturating_add(self.got);
                let file = slot.file.clone();
                let padding = if whole { u64::from(p.padding) } else { 0 };
                with_room(registry, &self.stream, shutdown, || {
                    file.write_padded(at, now, padding)
                })
                .await?;
            }
            self.got = self.got.saturating_add(n as u64);
            bytes = rest;
            if self.got == content {
                self.end_packet(registry, shutdown, p, whole).await?;
            }
        }
        Ok(())
    }

    async fn end_packet(
        &mut self,
        registry: &Registry,
        shutdown: &CancellationToken,
        p: PacketMeta,
        padded: bool,
    ) -> Result<(), NativeError> {
        self.at = self.at.saturating_add(1);
        self.got = 0;
        let Some(slot) = self.slot.take() else {
            return Ok(()); // skipped: the relay had it
        };
        let content = u64::from(p.content);
        let padding = u64::from(p.padding);
        if padding > 0 && !padded {
            let file = slot.file.clone();
            let at = slot.offset.saturating_add(content);
            let zeros = with_room(registry, &self.stream, shutdown, || {
                file.write_zeros(at, padding)
            })
            .await;
            if let Err(e) = zeros {
                self.stream.abort_packet(&slot);
                return Err(e);
            }
        }
        let stream = &self.stream;
        let session = &stream.session;
        let seq = NetSeq(p.seq);
        let fx = stream
            .end_packet(seq, slot, content.saturating_add(padding))
            .map_err(|e| NativeError::Protocol(e.to_string()))?;
        session.counters.packet(content.saturating_add(padding));
        stream.packet_received();
        self.next = p.seq.saturating_add(1);
        let mut commit = fx.rotated || (fx.completed && session.params.live_timer > 0);
        let mut close = fx.close_ready;
        if fx.first_packet {
            session.lock().new_streams = true;
        }
        if let Some(i) = p.index {
            let half = IndexHalf {
                packet_size: i.packet_size_bits,
                content_size: i.content_size_bits,
                timestamp_begin: i.timestamp_begin,
                timestamp_end: i.timestamp_end,
                events_discarded: i.events_discarded,
                stream_id: i.stream_id,
                stream_instance_id: i.stream_instance_id,
                packet_seq_num: i.packet_seq_num,
            };
            let fx = stream
                .add_index(seq, half)
                .map_err(|e| NativeError::Protocol(e.to_string()))?;
            commit |= fx.rotated || (fx.completed && session.params.live_timer > 0);
            close |= fx.close_ready;
        }
        if commit {
            registry.request_commit(session, [stream.clone()]);
        }
        if close {
            let aborted = session.lock().aborted;
            registry.try_close_stream(stream, aborted);
        }
        Ok(())
    }

    /// Takes the next `len` data bytes of the batch straight from `sock`: the kernel moves a
    /// packet's content into its file through `splicer`'s pipe; resent packets the relay has
    /// are read and dropped.
    pub(super) async fn splice(
        &mut self,
        registry: &Registry,
        shutdown: &CancellationToken,
        sock: &mut tokio::net::TcpStream,
        splicer: &mut crate::server::splice::Splicer,
        mut len: u64,
    ) -> Result<(), NativeError> {
        use crate::server::splice::CopyError;
        let mut scratch = [0u8; 16 << 10];
        while len > 0 {
            let (p, skip) = self.current()?;
            let content = u64::from(p.content);
            let mut n = content.saturating_sub(self.got).min(len);
            let step = n;
            if skip {
                while n > 0 {
                    let k = usize::try_from(n).unwrap_or(usize::MAX).min(scratch.len());
                    let buf = scratch.get_mut(..k).unwrap_or_default();
                    tokio::io::AsyncReadExt::read_exact(sock, buf).await?;
                    n -= k as u64;
                }
            } else {
                self.begin(registry, shutdown, p).await?;
                let Some(slot) = &self.slot else {
                    return Err(NativeError::Protocol("no packet slot".into()));
                };
                let mut at = slot.offset.saturating_add(self.got);
                let file = slot.file.clone();
                let room = Room {
                    registry,
                    session: &self.stream.session,
                    shutdown,
                };
                let mut attempt = 0;
                loop {
                    match splicer.copy(sock, &file, &mut at, &mut n).await {
                        Ok(()) => break,
                        Err(CopyError::Net(e)) => return Err(NativeError::Io(e)),
                        Err(CopyError::Storage(e)) if e.is_no_space() => {
                            room.wait(e, attempt)
                                .await
                                .map_err(|g| NativeError::Storage(g.to_string()))?;
                            attempt = attempt.saturating_add(1);
                        }
                        Err(CopyError::Storage(e)) => {
                            self.stream.session.fail(e.to_string());
                            return Err(NativeError::Storage(e.to_string()));
                        }
                    }
                }
                if attempt > 0 {
                    room.cleared();
                }
            }
            self.got = self.got.saturating_add(step);
            len -= step;
            if self.got == content {
                self.end_packet(registry, shutdown, p, false).await?;
            }
        }
        Ok(())
    }

    /// The batch's data ended: every packet must be whole.
    pub(super) fn finish(self) -> Result<(), NativeError> {
        if self.at != self.packets.len() {
            let missing = self.packets.len().saturating_sub(self.at);
            self.abort();
            return Err(NativeError::Protocol(format!(
                "the batch's data ended {missing} packet(s) early"
            )));
        }
        Ok(())
    }

    /// Gives up a packet begun and not finished (its partial bytes are cut off).
    pub(super) fn abort(self) {
        if let Some(slot) = &self.slot {
            self.stream.abort_packet(slot);
        }
    }
}

/// Metadata bytes being gathered.
pub(super) struct MetadataIn {
    stream: Arc<Stream>,
    offset: u64,
    len: u32,
    bytes: Vec<u8>,
    _budget: tokio::sync::OwnedSemaphorePermit,
}

impl MetadataIn {
    pub(super) async fn new(
        registry: &Registry,
        stream: Arc<Stream>,
        offset: u64,
        len: u32,
    ) -> Result<MetadataIn, NativeError> {
        if !stream.is_metadata {
            return Err(NativeError::Protocol("metadata for a data stream".into()));
        }
        let cap = registry.settings.max_metadata_chunk;
        if u64::from(len) > cap {
            return Err(NativeError::Refused(format!(
                "metadata of {len} bytes exceeds max_metadata_chunk ({cap})"
            )));
        }
        let Some(permit) = registry.gate.reserve_metadata(u64::from(len)).await else {
            return Err(NativeError::Refused(
                "the relay-wide metadata budget stays full".into(),
            ));
        };
        Ok(MetadataIn {
            stream,
            offset,
            len,
            bytes: Vec::with_capacity(len as usize),
            _budget: permit,
        })
    }

    pub(super) fn feed(&mut self, bytes: &[u8]) -> Result<(), NativeError> {
        if self.bytes.len().saturating_add(bytes.len()) > self.len as usize {
            return Err(NativeError::Protocol("more metadata than announced".into()));
        }
        self.bytes.extend_from_slice(bytes);
        Ok(())
    }

    /// Appends what the relay does not have yet.
    pub(super) async fn finish(
        self,
        registry: &Registry,
        shutdown: &CancellationToken,
    ) -> Result<(), NativeError> {
        if self.bytes.len() != self.len as usize {
            return Err(NativeError::Protocol("metadata ended early".into()));
        }
        let have = self.stream.lock().metadata_received();
        let end = self.offset.saturating_add(u64::from(self.len));
        if self.offset > have {
            return Err(NativeError::Protocol(format!(
                "metadata at {} but the relay has {have} bytes",
                self.offset
            )));
        }
        if end <= have {
            return Ok(()); // a resend of what the relay has
        }
        let skip = usize::try_from(have.saturating_sub(self.offset)).unwrap_or(usize::MAX);
        let new = self.bytes.get(skip..).unwrap_or_default();
        let stream = &self.stream;
        with_room(registry, stream, shutdown, || {
            stream.append_metadata(new, 0).map_err(|e| match e {
                crate::session::MetadataError::Storage(_, s) => s,
                other => StorageError::corruption(
                    crate::storage::Op::Write,
                    std::path::Path::new(&stream.name),
                    &other.to_string(),
                ),
            })
        })
        .await?;
        let session = &stream.session;
        registry.request_commit(session, [stream.clone()]);
        Ok(())
    }
}
