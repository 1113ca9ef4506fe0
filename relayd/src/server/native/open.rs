//! Opening (or resuming) a trelay:// session and adding its streams: the relay session and its
//! chunk, the manifest that lets it survive a restart, and where each stream resumes.

use super::conn::{Bound, Conn};
use super::NativeError;
use crate::session::manifest::{self, Manifest, ManifestStream};
use crate::session::resumable::Resumable;
use crate::session::{Registry, SessionParams, Stream};
use crate::storage::layout;
use std::sync::Arc;
use trelay_proto::trelay::message::{AddStream, Message, Open, Opened, Resume};
use trelay_proto::TraceFormat;

/// The manifest of `r`'s session as it stands (streams sorted by the sender's numbers).
fn manifest_of(r: &Resumable) -> Manifest {
    let s = &r.session;
    let mut streams: Vec<ManifestStream> = crate::session::chunk::lock(&r.streams)
        .iter()
        .map(|(n, st)| ManifestStream {
            n: *n,
            channel: st.name.clone(),
            path: st.path.clone(),
        })
        .collect();
    streams.sort_by_key(|m| m.n);
    Manifest {
        name: s.params.name.clone(),
        hostname: s.params.hostname.clone(),
        live_timer_us: s.params.live_timer,
        creation_time: s.params.creation_time,
        peer: s.params.peer.clone(),
        trace_format: s.params.trace_format,
        streams,
    }
}

/// What names a trelay:// session, from its `Open` or its manifest.
struct Identity {
    name: String,
    hostname: String,
    live_timer: u32,
    creation_time: u64,
    peer: String,
    trace_format: TraceFormat,
}

/// The parameters of a trelay:// session (protocol minor 13, one chunk, no snapshot).
fn params(uuid: &[u8; 16], id: Identity) -> SessionParams {
    let Identity {
        name,
        hostname,
        live_timer,
        creation_time,
        peer,
        trace_format,
    } = id;
    SessionParams {
        name,
        hostname,
        base_path: String::new(),
        live_timer,
        snapshot: false,
        name_has_time: false,
        minor: 13,
        sessiond_uuid: *uuid,
        sessiond_session_id: 0,
        creation_time,
        peer,
        trace_format,
    }
}

/// Creates the relay session with its chunk 0 (the session directory) and registers it under
/// `uuid`.
fn start_session(registry: &Registry, uuid: [u8; 16], params: SessionParams) -> Arc<Resumable> {
    let creation_time = params.creation_time;
    let session = registry.create_session(params);
    session.lock().data_connection = Some(crate::session::NATIVE_DATA);
    let (chunk, _) = registry.chunks.publish(
        session.chunk_key(0),
        creation_time,
        &session.abs_dir,
        None,
        String::new,
    );
    session.lock().current_chunk = Some(chunk);
    registry.resumables.insert(uuid, session)
}

impl Conn<'_> {
    pub(super) fn open(&mut self, o: Open, format: TraceFormat) -> Result<(), NativeError> {
        if self.bound.is_some() {
            return Err(NativeError::Protocol("a second Open".into()));
        }
        let refuse = |e: layout::NameError| NativeError::Refused(e.to_string());
        let name = layout::component("session name", &o.name)
            .map_err(refuse)?
            .to_owned();
        let mut hostname = layout::component("hostname", &o.hostname)
            .map_err(refuse)?
            .to_owned();
        if let Some(n) = &self.identity.name {
            hostname = n.clone();
        }
        let registry = self.registry;
        let (r, resumed) = match registry.resumables.get(&o.session) {
            Some(r) => (r, true),
            None => match manifest::read(&registry.fs, &registry.output, &o.session) {
                // The relay restarted since: reopen the session from its manifest.
                Some(m) => {
                    let r = self.revive(&o, m)?;
                    registry.pins.resumed(&o.session);
                    (r, true)
                }
                None => {
                    let key = self.identity.key();
                    registry.admit_session(&key).map_err(NativeError::Refused)?;
                    let params = params(
                        &o.session,
                        Identity {
                            name,
                            hostname,
                            live_timer: o.live_timer_us,
                            creation_time: o.creation_time,
                            peer: key,
                            trace_format: format,
                        },
                    );
                    let r = start_session(registry, o.session, params);
                    self.save_manifest(&o.session, &r)?;
                    (r, false)
                }
            },
        };
        if resumed && r.session.params.peer != self.identity.key() {
            // Only the peer that opened a session may resume it.
            registry.gate.refusals.count("control", "resume_other_peer");
            return Err(NativeError::Refused(
                "that session belongs to another peer".into(),
            ));
        }
        if r.session.params.trace_format != format {
            return Err(NativeError::Refused(format!(
                "that session is {}, not {}",
                r.session.params.trace_format.name(),
                format.name()
            )));
        }
        if let Some(why) = r.session.lock().failed.clone() {
            return Err(NativeError::Storage(format!("the session failed: {why}")));
        }
        let generation = r.take_over();
        let session = r.session.clone();
        tracing::info!(
            peer = %self.peer,
            session = %session.id,
            name = %session.params.name,
            resumed,
            ack = ?o.ack,
            trace_format = %format.cli_name(),
            "trelay:// session opened"
        );
        self.bound = Some(Bound {
            uuid: o.session,
            r,
            generation,
            ack: o.ack,
        });
        self.reply(&Message::Opened(Opened {
            session_id: session.id.0,
            path: session.rel_dir.to_string_lossy().into_owned(),
            resumed,
        }))
    }

    fn save_manifest(&self, uuid: &[u8; 16], r: &Resumable) -> Result<(), NativeError> {
        manifest::write(
            &self.registry.fs,
            &self.registry.output,
            uuid,
            &manifest_of(r),
        )
        .map_err(|e| NativeError::Storage(format!("cannot record the session: {e}")))
    }

    /// Reopens the session of `o` from its manifest after a restart of the relay.
    fn revive(&self, o: &Open, m: Manifest) -> Result<Arc<Resumable>, NativeError> {
        let registry = self.registry;
        if m.peer != self.identity.key() {
            registry.gate.refusals.count("control", "resume_other_peer");
            return Err(NativeError::Refused(
                "that session belongs to another peer".into(),
            ));
        }
        let params = params(
            &o.session,
            Identity {
                name: m.name.clone(),
                hostname: m.hostname.clone(),
                live_timer: m.live_timer_us,
                creation_time: m.creation_time,
                peer: m.peer.clone(),
                trace_format: m.trace_format,
            },
        );
        let r = start_session(registry, o.session, params);
        let session = r.session.clone();
        let chunk = session
            .lock()
            .current_chunk
            .clone()
            .ok_or_else(|| NativeError::Storage("the session has no chunk".into()))?;
        for ms in &m.streams {
            let trace = registry.trace_id(&session, &ms.path);
            let s = Stream::reopen(
                registry.next_stream_id(),
                session.clone(),
                trace,
                ms.channel.clone(),
                ms.path.clone(),
                chunk.clone(),
                registry.merge.clone(),
            );
            let s = match s {
                Ok(s) => s,
                Err(e) => {
                    registry.resumables.remove(&o.session);
                    registry.close_session(&session, true, true);
                    return Err(NativeError::Storage(format!(
                        "cannot reopen stream {}/{}: {e}",
                        ms.path, ms.channel
                    )));
                }
            };
            registry.insert_stream(s.clone());
            crate::session::chunk::lock(&r.streams).insert(ms.n, s);
        }
        tracing::info!(session = %session.id, path = %session.rel_dir.display(), streams = m.streams.len(), "trelay:// session reopened after a restart");
        Ok(r)
    }

    pub(super) fn add_stream(&mut self, a: AddStream) -> Result<(), NativeError> {
        let registry = self.registry;
        let b = self.bound()?;
        let r = b.r.clone();
        let stream = match r.stream(a.stream) {
            Some(s) => s,
            None => {
                let refuse = |e: layout::NameError| NativeError::Refused(e.to_string());
                let name = layout::component("channel name", &a.channel)
                    .map_err(refuse)?
                    .to_owned();
                let path = layout::relative_path("stream path", &a.path, false).map_err(refuse)?;
                let session = r.session.clone();
                registry
                    .admit_stream(&session.params.peer)
                    .map_err(NativeError::Refused)?;
                let chunk = session
                    .lock()
                    .current_chunk
                    .clone()
                    .ok_or_else(|| NativeError::Storage("the session has no chunk".into()))?;
                let id = registry.next_stream_id();
                let trace = registry.trace_id(&session, &path);
                let s = Stream::new(
                    id,
                    session,
                    trace,
                    name,
                    path,
                    a.tracefile_size,
                    a.tracefile_count,
                    chunk,
                    registry.merge.clone(),
                )
                .map_err(|e| NativeError::Storage(format!("cannot create the stream: {e}")))?;
                registry.insert_stream(s.clone());
                crate::session::chunk::lock(&r.streams).insert(a.stream, s.clone());
                self.save_manifest(&b.uuid, &r)?;
                s
            }
        };
        let resume = resume_of(&stream);
        self.reply(&Message::StreamAdded {
            stream: a.stream,
            resume,
        })
    }
}

/// Where the relay's committed copy of `stream` ends: the sender resends from there (what the
/// relay received beyond it is dropped again as it comes, and committed with the rest), so a
/// sender never forgets data the relay could still lose.
fn resume_of(stream: &Stream) -> Resume {
    let st = stream.lock();
    Resume {
        // Sequence numbers of trelay:// streams start at 0 with no gap, one entry each.
        next_seq: st.entries_committed(),
        metadata: st.metadata_committed(),
    }
}
