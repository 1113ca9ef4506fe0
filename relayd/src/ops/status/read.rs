//! The status API's documents ([`trelay_proto::status`]), read from the registry and the
//! [`super::Book`]: atomics, and a few counters copied under each session's and stream's own
//! short lock. [`status`] also stats the output folder: callers run it off the async workers.

use super::book::now_ms;
use crate::config::Durability;
use crate::ops::state::BoundPorts;
use crate::session::{Registry, Session};
use crate::telemetry::{Port, SessionCounters};
use std::collections::HashMap;
use std::sync::Arc;
use trelay_proto::status::{
    ArchiveStatus, ArchivedChunk, Chunks, Connections, Files, ForwardStatus, Listeners,
    RelayStatus, SessionDoc, SessionForward, SessionRow, SessionsDoc, StatusDoc, StreamRow, Totals,
    ARCHIVED_LISTED, SCHEMA_VERSION,
};
use trelay_proto::SessionId;

/// `/api/v1/status`.
pub fn status(registry: &Registry, ports: Option<BoundPorts>) -> StatusDoc {
    let rows = rows(registry);
    let (started_at, uptime_s) = registry.status.started();
    let t = &registry.telemetry;
    let pool = crate::storage::pool::pool();
    let f = &registry.forwards;
    let forwarding = registry.settings.forward.as_ref();
    let relay = RelayStatus {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        started_at,
        uptime_s,
        durability: match registry.settings.durability {
            Durability::Beacon => "beacon",
            Durability::None => "none",
        }
        .to_owned(),
        output: registry.output.display().to_string(),
        disk_free_bytes: registry.fs.free_space(&registry.output).ok(),
        retention_max_bytes: registry.settings.retention.max_bytes,
        retention_used_bytes: registry.status.retention_used(),
        listeners: Listeners {
            control: ports.map_or(0, |p| p.control),
            data: ports.map_or(0, |p| p.data),
            live: ports.map_or(0, |p| p.live),
            ops: ports.and_then(|p| p.metrics),
            tls: ports.and_then(|p| p.tls),
            tls_live: ports.and_then(|p| p.tls_live),
        },
        connections: Connections {
            control: t.open_connections(Port::Control),
            data: t.open_connections(Port::Data),
            live: t.open_connections(Port::Live),
        },
        files: Files {
            pool_open: pool.open() as u64,
            pool_max: pool.max() as u64,
            fds_open: super::super::fds::open_count().map(|n| n as u64),
            fds_max: super::super::fds::limit(),
        },
        forward: ForwardStatus {
            url: forwarding.map(|s| s.url.clone()),
            sessions: if forwarding.is_some() {
                f.pending() as u64
            } else {
                0
            },
            connected: if forwarding.is_some() {
                f.connected() as u64
            } else {
                0
            },
            backlog_bytes: if forwarding.is_some() { f.backlog() } else { 0 },
            acked_bytes: if forwarding.is_some() { f.acked() } else { 0 },
        },
        archive: ArchiveStatus {
            url: registry.settings.archive.as_ref().map(|a| a.url.clone()),
        },
    };
    let totals = Totals {
        sessions: rows.len() as u64,
        streams: rows.iter().map(|r| r.streams).sum(),
        viewers: rows.iter().map(|r| r.viewers).sum(),
        bytes: rows.iter().map(|r| r.bytes).sum(),
        rate_bps: rows.iter().map(|r| r.rate_bps).sum(),
        lost_packets: rows.iter().map(|r| r.lost_packets).sum(),
    };
    StatusDoc {
        schema: SCHEMA_VERSION,
        relay,
        totals,
        events: registry.status.events(),
    }
}

/// `/api/v1/sessions`.
pub fn sessions(registry: &Registry) -> SessionsDoc {
    SessionsDoc {
        schema: SCHEMA_VERSION,
        time_ms: now_ms(),
        sessions: rows(registry),
    }
}

/// `/api/v1/sessions/ID`, `None` when the relay holds no such session.
pub fn session(registry: &Registry, id: u64) -> Option<SessionDoc> {
    let s = registry.session(SessionId(id))?;
    let handles = registry.session_streams(&s);
    let streams = handles
        .iter()
        .map(|st| {
            let (figures, closed) = {
                let g = st.lock();
                (g.figures(), g.is_closed())
            };
            let [bytes, packets, committed, tracefile, lost, unindexed] = figures;
            // Until the stream closes its losses are in the session's loss book (the sidecar's).
            let book = s.commit.losses.counts(st.id);
            let lost = lost.max(book.lost_packets);
            let unindexed = unindexed.max(book.unindexed_packets);
            StreamRow {
                id: st.id.0,
                name: st.name.clone(),
                path: st.path.clone(),
                metadata: st.is_metadata,
                bytes,
                packets,
                committed,
                tracefile,
                lost_packets: lost,
                unindexed_packets: unindexed,
                closed,
                last_packet_ms: st.last_packet_ms(),
            }
        })
        .collect();
    let committed: HashMap<u64, u64> = handles
        .iter()
        .filter(|st| !st.is_metadata)
        .map(|st| (st.id.0, st.frontier.entries().0))
        .collect();
    let viewers = registry
        .status
        .viewers(s.id)
        .into_iter()
        .map(|(mut row, positions)| {
            let known: Vec<u64> = positions
                .list()
                .into_iter()
                .filter_map(|(id, next)| committed.get(&id).map(|c| c.saturating_sub(next)))
                .collect();
            row.streams = known.len() as u64;
            row.lag_packets = known.iter().fold(0u64, |a, n| a.saturating_add(*n));
            row
        })
        .collect();
    let chunks = {
        let st = s.lock();
        Chunks {
            current: st.current_chunk.as_ref().map(|c| c.path()),
            closing: st.pending_closure.as_ref().map(|c| c.path()),
            rotated: st.has_rotated,
            archived: Vec::new(),
        }
    };
    let chunks = Chunks {
        archived: archived_chunks(registry, &s),
        ..chunks
    };
    Some(SessionDoc {
        schema: SCHEMA_VERSION,
        time_ms: now_ms(),
        session: row(registry, &s),
        streams,
        viewers,
        chunks,
    })
}

/// The folders under the session's `archives/` (read from the disk: callers are off the async
/// workers), each with its upload state when `[archive]` is configured.
fn archived_chunks(registry: &Registry, s: &Session) -> Vec<ArchivedChunk> {
    let dir = registry.output.join(&s.rel_dir).join("archives");
    let mut names: Vec<String> = registry
        .fs
        .read_dir(&dir)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.meta.is_dir && !e.name.starts_with('.'))
        .map(|e| e.name)
        .collect();
    names.sort();
    names.truncate(ARCHIVED_LISTED);
    let archiving = registry.settings.archive.is_some();
    names
        .into_iter()
        .map(|name| ArchivedChunk {
            uploaded: archiving
                .then(|| crate::archive::manifest::is_archived(&registry.fs, &dir.join(&name))),
            name,
        })
        .collect()
}

fn rows(registry: &Registry) -> Vec<SessionRow> {
    let mut sessions = registry.sessions();
    sessions.sort_by_key(|s| s.id);
    sessions.iter().map(|s| row(registry, s)).collect()
}

fn row(registry: &Registry, s: &Arc<Session>) -> SessionRow {
    let c = &s.counters;
    let get = SessionCounters::get;
    let streams = registry.session_streams(s);
    let uncommitted = streams.iter().map(|st| st.lock().uncommitted()).sum();
    let (failed, closed) = {
        let st = s.lock();
        (st.failed.is_some(), st.connection_closed || st.aborted)
    };
    let state = if failed {
        "failed"
    } else if s.disk_full.is_full() {
        "disk-full"
    } else if closed {
        "closed"
    } else {
        "streaming"
    };
    let format = if registry.resumables.get(&s.params.sessiond_uuid).is_some() {
        "trelay".to_owned()
    } else {
        format!("lttng 2.{}", s.minor)
    };
    let (rate_bps, history) = registry.status.track(s.id);
    SessionRow {
        id: s.id.0,
        host: s.params.hostname.clone(),
        peer: s.params.peer.clone(),
        name: s.params.name.clone(),
        dir: s.rel_dir.to_string_lossy().into_owned(),
        format,
        trace_format: s.params.trace_format.name().to_owned(),
        live: s.params.live_timer > 0,
        live_timer_us: s.params.live_timer,
        snapshot: s.params.snapshot,
        state: state.to_owned(),
        streams: streams.len() as u64,
        bytes: get(&c.bytes),
        packets: get(&c.packets),
        rate_bps,
        history,
        lost_packets: get(&c.lost_packets),
        unindexed_packets: get(&c.unindexed_packets),
        sequence_gaps: get(&c.sequence_gaps),
        discarded_events: get(&c.discarded_events),
        uncommitted_packets: uncommitted,
        viewers: s.live.viewers() as u64,
        forward: registry.forwards.job_for(&s.rel_dir).map(
            |(connected, backlog_bytes, acked_bytes)| SessionForward {
                connected,
                backlog_bytes,
                acked_bytes,
            },
        ),
        archive: registry
            .settings
            .archive
            .as_ref()
            .and_then(|_| registry.status.archive_state(&s.rel_dir.to_string_lossy())),
    }
}
