//! Which streams a viewer learns about: at ATTACH_SESSION (seek as asked), with GET_NEW_STREAMS
//! (from the beginning, so nothing written between attach and discovery is lost), and the
//! viewer's own NEW_STREAM flag.
//!
//! A data stream is offered only together with (or after) its trace's metadata stream. Each
//! stream is offered once per viewer; a stream that closed with nothing left to read from the
//! requested position is skipped (and never offered later).

use super::source::{Source, StreamInfo};
use super::viewer::{record, Attachment, ViewerStream};
use super::Viewer;
use std::collections::HashSet;
use trelay_proto::lttng::live::{NewStreamsStatus, Seek, StreamRecord};
use trelay_proto::SessionId;

impl<S: Source> Viewer<S> {
    /// Announced streams `att` has not been offered yet and may be offered now (metadata
    /// streams first), with the announcement generation.
    fn candidates(src: &S, att: &Attachment<S>) -> (u64, Vec<(S::Stream, StreamInfo)>) {
        let ann = src.announced(&att.session);
        let mut all: Vec<(S::Stream, StreamInfo)> = ann
            .streams
            .into_iter()
            .map(|st| {
                let info = src.stream_info(&st);
                (st, info)
            })
            .filter(|(_, info)| !att.known.contains(&info.id))
            .collect();
        let mut traces: HashSet<_> = att.traces.clone();
        traces.extend(
            all.iter()
                .filter(|(_, i)| i.is_metadata)
                .map(|(_, i)| i.trace),
        );
        all.retain(|(_, i)| i.is_metadata || traces.contains(&i.trace));
        all.sort_by_key(|(_, i)| !i.is_metadata);
        (ann.generation, all)
    }

    /// Creates viewer streams for every candidate of session `id`, positioned by `seek`, and
    /// returns their records.
    pub(super) fn take_new_streams(
        &mut self,
        src: &S,
        id: SessionId,
        seek: Seek,
    ) -> Vec<StreamRecord> {
        let Some(att) = self.attached.get(&id) else {
            return Vec::new();
        };
        let (generation, candidates) = Self::candidates(src, att);
        // Data streams first: a closed metadata stream is only worth sending with data to read.
        let mut taken: Vec<(S::Stream, StreamInfo, u64)> = Vec::new();
        let mut skipped = Vec::new();
        for (st, info) in candidates.iter().filter(|(_, i)| !i.is_metadata) {
            let view = src.view(st);
            let next = match seek {
                Seek::Last => view.entries,
                Seek::Beginning => view.oldest,
            };
            if view.finished() && next >= view.entries {
                skipped.push(info.id);
            } else {
                taken.push((st.clone(), info.clone(), next));
            }
        }
        let mut metadata = Vec::new();
        for (st, info) in candidates.iter().filter(|(_, i)| i.is_metadata) {
            let needed = !src.view(st).finished()
                || taken.iter().any(|(_, i, _)| i.trace == info.trace)
                || self
                    .streams
                    .values()
                    .any(|vs| vs.session == id && vs.info.trace == info.trace);
            if needed {
                metadata.push((st.clone(), info.clone(), 0));
            } else {
                skipped.push(info.id);
            }
        }
        let mut records = Vec::new();
        for (st, info, next) in metadata.into_iter().chain(taken) {
            let Some(rec) = record(&info) else {
                tracing::warn!(stream = %info.id, "stream not offered: path or name too long for the live protocol");
                skipped.push(info.id);
                continue;
            };
            records.push(rec);
            if info.is_metadata {
                self.metadata_of.insert(info.trace, info.id);
            }
            self.streams.insert(
                info.id,
                ViewerStream {
                    stream: st,
                    info,
                    session: id,
                    next,
                    packet: None,
                    metadata_sent: 0,
                },
            );
        }
        if let Some(att) = self.attached.get_mut(&id) {
            for r in &records {
                att.known.insert(r.id);
                if r.is_metadata() {
                    att.traces.insert(r.ctf_trace_id);
                }
            }
            att.known.extend(skipped);
            att.seen_generation = Some(generation);
            att.has_new = false;
            src.scanned(&att.ticket, generation);
        }
        records
    }

    /// GET_NEW_STREAMS.
    pub(super) fn new_streams(
        &mut self,
        src: &S,
        id: SessionId,
    ) -> (NewStreamsStatus, Vec<StreamRecord>) {
        let Some(att) = self.attached.get(&id) else {
            tracing::warn!(peer = %self.peer, viewer = %self.id, session = %id, "GET_NEW_STREAMS for a session not attached");
            return (NewStreamsStatus::Error, Vec::new());
        };
        let closed = src.session_info(&att.session).closed;
        let records = self.take_new_streams(src, id, Seek::Beginning);
        if records.is_empty() && closed && self.drained(src, id) {
            return (NewStreamsStatus::Hup, Vec::new());
        }
        (NewStreamsStatus::Ok, records)
    }

    /// Every viewer stream of session `id` has nothing left to read and never will.
    fn drained(&self, src: &S, id: SessionId) -> bool {
        self.streams
            .values()
            .filter(|vs| vs.session == id)
            .all(|vs| {
                let view = src.view(&vs.stream);
                view.finished()
                    && if vs.info.is_metadata {
                        vs.metadata_sent >= view.metadata
                    } else {
                        vs.next >= view.entries
                    }
            })
    }

    /// Whether a session this viewer attached to has a stream to offer (the NEW_STREAM flag).
    /// Recomputed only when the session's announcements changed.
    pub(super) fn has_new_streams(&mut self, src: &S) -> bool {
        let mut any = false;
        for att in self.attached.values_mut() {
            let generation = src.generation(&att.session);
            if att.seen_generation != Some(generation) {
                let (g, candidates) = Self::candidates(src, att);
                att.has_new = !candidates.is_empty();
                att.seen_generation = Some(g);
            }
            any |= att.has_new;
        }
        any
    }
}
