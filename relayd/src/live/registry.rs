//! [`Source`] over the relay's [`Registry`]: sessions and streams are shared handles (`Arc`), so a
//! viewer keeps reading a stream (and its open files) after the relay closed it or unlisted its
//! session. Each call takes the locks it needs and releases them before returning; the stream
//! lock is taken before the stream's published state, in the order the commit group uses.

use super::source::{Announced, EntryError, SessionInfo, Source, StreamInfo, StreamView};
use crate::session::{Registry, Session, Stream};
use crate::storage::StorageFile;
use std::sync::Arc;
use trelay_proto::ctf::index::IndexEntry;
use trelay_proto::{SessionId, ViewerSessionId};

/// A viewer's registration on a session; dropping it detaches the viewer.
#[derive(Debug)]
pub struct Ticket {
    session: Arc<Session>,
    id: u64,
    listed: crate::ops::status::ViewerRegistration,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.session.live.unregister(self.id);
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Source for Registry {
    type Session = Arc<Session>;
    type Stream = Arc<Stream>;
    type File = Arc<StorageFile>;
    type Ticket = Ticket;

    fn sessions(&self) -> Vec<Arc<Session>> {
        Registry::sessions(self)
    }

    fn session(&self, id: SessionId) -> Option<Arc<Session>> {
        Registry::session(self, id)
    }

    fn session_info(&self, s: &Arc<Session>) -> SessionInfo {
        let viewers = count(s.live.viewers());
        let st = s.lock();
        SessionInfo {
            id: s.id,
            name: s.params.name.clone(),
            hostname: s.params.hostname.clone(),
            live_timer: s.params.live_timer,
            streams: count(st.streams.len()),
            viewers,
            closed: st.connection_closed || st.aborted,
            trace_format: s.params.trace_format,
        }
    }

    fn announced(&self, s: &Arc<Session>) -> Announced<Arc<Stream>> {
        let (generation, streams) = s.live.snapshot();
        Announced {
            generation,
            streams,
        }
    }

    fn generation(&self, s: &Arc<Session>) -> u64 {
        s.live.generation()
    }

    fn attach(&self, s: &Arc<Session>, viewer: ViewerSessionId, peer: &str) -> Ticket {
        tracing::debug!(session = %s.id, viewer = %viewer, "viewer registered");
        let dir = s.rel_dir.to_string_lossy();
        Ticket {
            session: s.clone(),
            id: s.live.register(),
            listed: self.status.viewer_attached(s.id, &dir, peer, viewer.0),
        }
    }

    fn scanned(&self, ticket: &Ticket, generation: u64) {
        ticket.session.live.scanned(ticket.id, generation);
    }

    fn position(&self, ticket: &Ticket, st: &Arc<Stream>, next: u64) {
        ticket.listed.position(st.id.0, next);
    }

    fn stream_info(&self, st: &Arc<Stream>) -> StreamInfo {
        StreamInfo {
            id: st.id,
            trace: st.trace_id,
            is_metadata: st.is_metadata,
            path: st.path.clone(),
            channel: st.name.clone(),
        }
    }

    fn view(&self, st: &Arc<Stream>) -> StreamView {
        let session_closed = {
            let s = st.session.lock();
            s.connection_closed || s.aborted
        };
        let s = st.lock();
        let (entries, oldest) = st.frontier.entries();
        let all_committed = s.all_committed();
        StreamView {
            entries,
            oldest,
            beacon: s.quiet_until(),
            ctf_stream_id: s.ctf_stream_id(),
            all_committed,
            closed: s.is_closed(),
            session_closed,
            metadata: st.frontier.metadata().0,
            generation: st.frontier.generation(),
        }
    }

    fn read_entry(
        &self,
        st: &Arc<Stream>,
        n: u64,
    ) -> Result<(IndexEntry, Arc<StorageFile>), EntryError> {
        let seg = st.frontier.segment(n).ok_or(EntryError::Gone(n))?;
        let entry = seg
            .index
            .read_entry(n - seg.first)
            .map_err(|e| EntryError::Io(n, e.source))?;
        Ok((entry, seg.index.data.clone()))
    }

    fn metadata_file(&self, st: &Arc<Stream>) -> Option<Arc<StorageFile>> {
        st.frontier.metadata().1
    }

    fn file_len(&self, f: &Arc<StorageFile>) -> std::io::Result<u64> {
        f.len().map_err(|e| e.source)
    }
}
