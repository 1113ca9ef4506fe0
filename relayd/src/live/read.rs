//! Reading committed data: GET_NEXT_INDEX, GET_PACKET and GET_METADATA.
//!
//! GET_NEXT_INDEX for viewer stream V (next entry number `n`, committed view of its stream):
//! 1. V unknown to this viewer → ERR (no flags); a metadata stream → HUP.
//! 2. Flags: NEW_METADATA when the trace's committed metadata exceeds what this viewer was
//!    sent or none is committed yet, NEW_STREAM when a session it attached to has a stream it
//!    was not offered yet. While the trace has no committed metadata → RETRY: a packet or an
//!    inactivity time is meaningless to a viewer that cannot have the trace's clock yet.
//! 3. `n` behind the oldest readable entry (tracefile overwritten) → moved up to it.
//! 4. Nothing new (`n ≥ committed`):
//!    a. the stream (or its session) ended and everything it received is committed → HUP, and
//!    V is forgotten;
//!    b. a beacon arrived after every entry → INACTIVE with its timestamp, so one idle stream
//!    never holds back a viewer muxing several;
//!    c. otherwise RETRY — or, with `retry_hold_ms`, hold the reply until the stream's next
//!    commit (or the hold expires) and decide again.
//! 5. Otherwise read committed entry `n` → OK with its fields; V may now read that packet.
//!
//! GET_PACKET is only served inside the packet of the last entry sent for the stream, and only
//! when the data file holds those bytes; GET_METADATA sends every committed metadata byte not
//! sent yet (whole SEND_METADATA units, since commits happen between them).

use super::source::{EntryError, Source};
use super::viewer::{reply, FileSlice, Packet, Step};
use super::Viewer;
use std::time::Instant;
use trelay_proto::lttng::live::{
    GetMetadataStatus, GetPacketStatus, IndexReply, MetadataReplyHead, NextIndexStatus,
    PacketReplyHead, ViewerFlags, ViewerReply,
};
use trelay_proto::StreamId;

impl<S: Source> Viewer<S> {
    /// GET_NEXT_INDEX.
    pub(super) fn next_index(
        &mut self,
        src: &S,
        id: StreamId,
        now: Instant,
        may_hold: bool,
        out: &mut Vec<u8>,
    ) -> Step<S> {
        let viewer = self.id;
        let index = |out: &mut Vec<u8>, r: IndexReply| {
            tracing::trace!(%viewer, stream = %id, status = ?r.status, flags = r.flags.0, "GET_NEXT_INDEX");
            reply::<S>(out, ViewerReply::NextIndex(r))
        };
        let Some(vs) = self.streams.get(&id) else {
            tracing::warn!(peer = %self.peer, viewer = %self.id, stream = %id, "GET_NEXT_INDEX for a stream not sent to this viewer");
            return index(
                out,
                IndexReply::bare(NextIndexStatus::Error, ViewerFlags::NONE),
            );
        };
        if vs.info.is_metadata {
            return index(
                out,
                IndexReply::bare(NextIndexStatus::Hup, ViewerFlags::NONE),
            );
        }
        let trace = vs.info.trace;
        let mut flags = ViewerFlags::NONE;
        let no_metadata = self.metadata_committed(src, trace) == Some(0);
        if no_metadata || self.new_metadata(src, trace) {
            flags = flags.with(ViewerFlags::NEW_METADATA);
        }
        if self.has_new_streams(src) {
            flags = flags.with(ViewerFlags::NEW_STREAM);
        }
        let Some(vs) = self.streams.get_mut(&id) else {
            return index(
                out,
                IndexReply::bare(NextIndexStatus::Error, ViewerFlags::NONE),
            );
        };
        if no_metadata {
            return index(out, IndexReply::bare(NextIndexStatus::Retry, flags));
        }
        let view = src.view(&vs.stream);
        if vs.next < view.oldest {
            tracing::info!(viewer = %self.id, stream = %id, skipped = view.oldest - vs.next, "viewer behind an overwritten tracefile: moved forward");
            vs.next = view.oldest;
        }
        if let Some(a) = self.attached.get(&vs.session) {
            src.position(&a.ticket, &vs.stream, vs.next);
        }
        if vs.next >= view.entries {
            if view.finished() {
                self.streams.remove(&id);
                return index(out, IndexReply::bare(NextIndexStatus::Hup, flags));
            }
            if let Some(ts) = view.beacon {
                return index(out, IndexReply::inactive(ts, view.ctf_stream_id, flags));
            }
            if let (true, Some(hold)) = (may_hold, self.settings.retry_hold()) {
                if let Some(until) = now.checked_add(hold) {
                    return Step::Hold {
                        stream: vs.stream.clone(),
                        generation: view.generation,
                        until,
                    };
                }
            }
            return index(out, IndexReply::bare(NextIndexStatus::Retry, flags));
        }
        match src.read_entry(&vs.stream, vs.next) {
            Ok((entry, file)) => {
                vs.next += 1;
                if let Some(a) = self.attached.get(&vs.session) {
                    src.position(&a.ticket, &vs.stream, vs.next);
                }
                vs.packet = Some(Packet {
                    file,
                    offset: entry.offset,
                    len: entry.packet_size / 8,
                });
                index(out, IndexReply::from_entry(&entry, flags))
            }
            Err(EntryError::Gone(n)) => {
                tracing::debug!(viewer = %self.id, stream = %id, entry = n, "entry no longer readable; retry");
                index(out, IndexReply::bare(NextIndexStatus::Retry, flags))
            }
            Err(e) => {
                tracing::error!(viewer = %self.id, stream = %id, "GET_NEXT_INDEX: {e}");
                index(out, IndexReply::bare(NextIndexStatus::Error, flags))
            }
        }
    }

    /// Trace `trace`'s committed metadata bytes, when this viewer has its metadata stream.
    fn metadata_committed(&self, src: &S, trace: trelay_proto::CtfTraceId) -> Option<u64> {
        self.metadata_of
            .get(&trace)
            .and_then(|m| self.streams.get(m))
            .map(|m| src.view(&m.stream).metadata)
    }

    /// Whether trace `trace`'s committed metadata exceeds what this viewer was sent.
    fn new_metadata(&self, src: &S, trace: trelay_proto::CtfTraceId) -> bool {
        self.metadata_of
            .get(&trace)
            .and_then(|m| self.streams.get(m))
            .is_some_and(|m| src.view(&m.stream).metadata > m.metadata_sent)
    }

    /// GET_PACKET.
    pub(super) fn packet(
        &mut self,
        src: &S,
        id: StreamId,
        offset: u64,
        len: u32,
        out: &mut Vec<u8>,
    ) -> Step<S> {
        let err = |out: &mut Vec<u8>, why: &str| {
            tracing::warn!(peer = %self.peer, viewer = %self.id, stream = %id, offset, len, "GET_PACKET refused: {why}");
            PacketReplyHead {
                status: GetPacketStatus::Error,
                len: 0,
                flags: ViewerFlags::NONE,
            }
            .encode(out);
            Step::Reply(None)
        };
        let Some(vs) = self.streams.get(&id) else {
            return err(out, "stream not sent to this viewer");
        };
        let Some(p) = vs.packet.as_ref() else {
            return err(out, "no index was sent for this stream");
        };
        let want_end = offset.checked_add(u64::from(len));
        let packet_end = p.offset.checked_add(p.len);
        let inside =
            matches!((want_end, packet_end), (Some(w), Some(e)) if offset >= p.offset && w <= e);
        if !inside {
            return err(out, "range outside the packet of the last index sent");
        }
        match src.file_len(&p.file) {
            Ok(size) if want_end.is_some_and(|w| w <= size) => {}
            Ok(_) => return err(out, "the data file is shorter than the packet"),
            Err(e) => return err(out, &format!("data file: {e}")),
        }
        PacketReplyHead {
            status: GetPacketStatus::Ok,
            len,
            flags: ViewerFlags::NONE,
        }
        .encode(out);
        Step::Reply((len > 0).then(|| FileSlice {
            file: p.file.clone(),
            offset,
            len: u64::from(len),
        }))
    }

    /// GET_METADATA.
    pub(super) fn metadata(&mut self, src: &S, id: StreamId, out: &mut Vec<u8>) -> Step<S> {
        let head = |out: &mut Vec<u8>, status, len| {
            MetadataReplyHead { len, status }.encode(out);
        };
        let Some(vs) = self.streams.get_mut(&id) else {
            tracing::debug!(peer = %self.peer, viewer = %self.id, stream = %id, "GET_METADATA for a stream not sent to this viewer (or closed)");
            head(out, GetMetadataStatus::Error, 0);
            return Step::Reply(None);
        };
        if !vs.info.is_metadata {
            tracing::warn!(peer = %self.peer, viewer = %self.id, stream = %id, "GET_METADATA on a data stream");
            head(out, GetMetadataStatus::Error, 0);
            return Step::Reply(None);
        }
        let view = src.view(&vs.stream);
        if vs.metadata_sent >= view.metadata {
            if view.finished() && vs.metadata_sent > 0 {
                // Said once; the next request learns the metadata stream is gone (ERR).
                let trace = vs.info.trace;
                self.streams.remove(&id);
                self.metadata_of.remove(&trace);
            }
            head(out, GetMetadataStatus::NoNewMetadata, 0);
            return Step::Reply(None);
        }
        let Some(file) = src.metadata_file(&vs.stream) else {
            head(out, GetMetadataStatus::NoNewMetadata, 0);
            return Step::Reply(None);
        };
        let len = view.metadata - vs.metadata_sent;
        match src.file_len(&file) {
            Ok(size) if view.metadata <= size => {}
            _ => {
                // Truncated under us (clear): let the viewer ask again.
                head(out, GetMetadataStatus::Ok, 0);
                return Step::Reply(None);
            }
        }
        let offset = vs.metadata_sent;
        vs.metadata_sent = view.metadata;
        head(out, GetMetadataStatus::Ok, len);
        Step::Reply(Some(FileSlice { file, offset, len }))
    }
}
