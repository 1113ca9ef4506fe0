//! Receiving: GET_METADATA until there is no more (the trace's clock and word size are read
//! from what arrived), and a fetched packet handed to the sink with its index entry — only once
//! the trace's metadata says how its times convert.

use trelay_proto::ctf::index::IndexEntry;
use trelay_proto::ctf::packet::{PacketHeader, WordSize};
use trelay_proto::lttng::live::{GetMetadataStatus, IndexReply, ViewerReply, ViewerRequest};
use trelay_proto::{CtfTraceId, Decoded, StreamId};

use std::time::{Duration, Instant};

use super::{Client, Packet, Sink};
use crate::live::LiveError;
use crate::tsdl::Metadata;

impl<S: Sink> Client<'_, S> {
    pub(super) fn fetch_metadata(&mut self, id: CtfTraceId) -> Result<(), LiveError> {
        let Some(t) = self.traces.get_mut(&id) else {
            return Ok(());
        };
        t.needs_fetch = false;
        let (Some(sid), false) = (t.metadata_stream, t.closed) else {
            return Ok(());
        };
        let mut changed = false;
        loop {
            let reply = self
                .conn
                .call(&ViewerRequest::GetMetadata { stream_id: sid })?;
            let ViewerReply::Metadata { status, data } = reply else {
                return Err(LiveError::Protocol(format!(
                    "GET_METADATA answered {reply:?}"
                )));
            };
            match status {
                GetMetadataStatus::Ok if !data.is_empty() => {
                    self.sink.metadata(&t.dir, t.bytes.len() as u64, data)?;
                    t.bytes.extend_from_slice(data);
                    self.stats.metadata_bytes += data.len() as u64;
                    changed = true;
                }
                GetMetadataStatus::Ok | GetMetadataStatus::NoNewMetadata => break,
                GetMetadataStatus::Error => {
                    t.closed = true;
                    break;
                }
            }
        }
        if changed {
            if let Ok(md) = Metadata::from_file_bytes(&t.bytes) {
                t.clock = md.clock().cloned();
                t.timing_known = md.timing_known();
                t.word = md.word_size();
            }
        }
        Ok(())
    }

    /// Fetches trace `id`'s metadata until it tells how to place packets in time (at most
    /// the session wait, one poll apart): packet times are never converted through a clock
    /// not received yet (a relay may serve a packet before the metadata describing it).
    /// A trace whose metadata stream closed or was never announced has nothing more to wait
    /// for. Returns false on a stop request.
    pub(super) fn await_timing(&mut self, id: CtfTraceId) -> Result<bool, LiveError> {
        let start = Instant::now();
        loop {
            let ready = |c: &Self| {
                c.traces
                    .get(&id)
                    .is_none_or(|t| t.timing_known || t.closed || t.metadata_stream.is_none())
            };
            if ready(self) {
                return Ok(true);
            }
            self.fetch_metadata(id)?;
            if ready(self) {
                return Ok(true);
            }
            if self.stopping() {
                return Ok(false);
            }
            let waited = start.elapsed();
            if waited >= self.settings().wait {
                return Err(LiveError::Protocol(format!(
                    "trace {id}: its metadata declares no clock nor stream class after {waited:?}"
                )));
            }
            std::thread::sleep(self.settings().poll.max(Duration::from_millis(1)));
        }
    }

    pub(super) fn deliver(
        &mut self,
        id: StreamId,
        trace: CtfTraceId,
        ix: &IndexReply,
    ) -> Result<(), LiveError> {
        if !self.await_timing(trace)? {
            return Ok(());
        }
        let (clock, word) = self
            .traces
            .get(&trace)
            .map(|t| (t.clock.as_ref(), t.word))
            .unwrap_or((None, WordSize::Bits64));
        let (instance, seq) = match PacketHeader::decode(&self.packet, word) {
            Ok(Decoded::Done { msg, .. }) => (msg.stream_instance_id, msg.packet_seq_num),
            _ => (u64::MAX, u64::MAX),
        };
        let entry = IndexEntry {
            offset: ix.offset,
            packet_size: ix.packet_size,
            content_size: ix.content_size,
            timestamp_begin: ix.timestamp_begin,
            timestamp_end: ix.timestamp_end,
            events_discarded: ix.events_discarded,
            stream_id: ix.stream_id,
            stream_instance_id: instance,
            packet_seq_num: seq,
        };
        let Some(s) = self.streams.get_mut(&id) else {
            return Ok(());
        };
        let p = Packet {
            stream: id,
            dir: &s.dir,
            channel: &s.channel,
            label: &s.label,
            bytes: &self.packet,
            entry,
            clock,
            prev_discarded: s.prev_discarded,
        };
        let new = self.sink.packet(&p)?;
        s.prev_discarded = Some(entry.events_discarded);
        if new {
            self.stats.packets += 1;
            self.stats.bytes += self.packet.len() as u64;
        }
        Ok(())
    }
}
