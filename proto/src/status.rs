//! The status API of trelayd's operations listener (`/api/v1/…`), schema version
//! [`SCHEMA_VERSION`]: the JSON documents the relay serves and `trelay-viewer status` reads.
//!
//! `docs/status-api.md` describes every field with an example. Within one schema version fields
//! are only ever added (readers ignore fields they do not know); a removal or a change of meaning
//! bumps the version, and the path's `v1` with it.

use serde::{Deserialize, Serialize};

/// The schema version these types describe (the `schema` field of every document).
pub const SCHEMA_VERSION: u32 = 1;

/// `GET /api/v1/status`: the relay as a whole and its recent notable events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusDoc {
    /// [`SCHEMA_VERSION`].
    pub schema: u32,
    /// The relay.
    pub relay: RelayStatus,
    /// Sums over the sessions.
    pub totals: Totals,
    /// The last notable events (at most 100), newest first.
    pub events: Vec<Event>,
}

/// `GET /api/v1/sessions`: every session the relay holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionsDoc {
    /// [`SCHEMA_VERSION`].
    pub schema: u32,
    /// When the figures were read (milliseconds since the Unix epoch).
    pub time_ms: u64,
    /// The sessions, by id.
    pub sessions: Vec<SessionRow>,
}

/// `GET /api/v1/sessions/ID`: one session with its streams, viewers and chunks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionDoc {
    /// [`SCHEMA_VERSION`].
    pub schema: u32,
    /// When the figures were read (milliseconds since the Unix epoch).
    pub time_ms: u64,
    /// The session's row, as in [`SessionsDoc`].
    pub session: SessionRow,
    /// Its streams (open, or closed and waiting for a viewer), by id.
    pub streams: Vec<StreamRow>,
    /// Live viewers attached to it.
    pub viewers: Vec<ViewerRow>,
    /// Its trace chunks.
    pub chunks: Chunks,
}

/// The relay process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelayStatus {
    /// trelayd's version.
    pub version: String,
    /// Start time (seconds since the Unix epoch).
    pub started_at: u64,
    /// Seconds since start.
    pub uptime_s: u64,
    /// Durability mode: `beacon` or `none`.
    pub durability: String,
    /// Output folder.
    pub output: String,
    /// Free bytes under the output folder (absent when it cannot be read).
    pub disk_free_bytes: Option<u64>,
    /// Retention quota for the whole output folder (`[retention] max_bytes`, 0: none).
    pub retention_max_bytes: u64,
    /// Bytes under the output folder when retention last ran (absent before its first run, and
    /// without `[retention]`).
    pub retention_used_bytes: Option<u64>,
    /// Listening ports.
    pub listeners: Listeners,
    /// Connections open, per port.
    pub connections: Connections,
    /// Files and descriptors.
    pub files: Files,
    /// Edge → core forwarding.
    pub forward: ForwardStatus,
    /// Archive to object storage.
    pub archive: ArchiveStatus,
}

/// The ports the relay listens on (the port numbers actually bound).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listeners {
    /// Control port.
    pub control: u16,
    /// Data port.
    pub data: u16,
    /// Live port.
    pub live: u16,
    /// Operations port (this API).
    pub ops: Option<u16>,
    /// trelay:// over TLS.
    pub tls: Option<u16>,
    /// Live protocol over TLS.
    pub tls_live: Option<u16>,
}

/// Connections open per port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connections {
    /// Control connections (LTTng and trelay://).
    pub control: u64,
    /// Data connections.
    pub data: u64,
    /// Live viewer connections.
    pub live: u64,
}

/// Open files against their bounds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Files {
    /// Stream files holding a descriptor.
    pub pool_open: u64,
    /// The pool's bound (`max_open_files`).
    pub pool_max: u64,
    /// File descriptors the process has open.
    pub fds_open: Option<u64>,
    /// The process's descriptor limit.
    pub fds_max: Option<u64>,
}

/// Forwarding to a core relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardStatus {
    /// The core's URL, when forwarding is configured.
    pub url: Option<String>,
    /// Sessions not fully acknowledged by the core yet.
    pub sessions: u64,
    /// Forwarding jobs whose connection is up.
    pub connected: u64,
    /// Committed bytes read for the core, not acknowledged yet.
    pub backlog_bytes: u64,
    /// Bytes the core acknowledged.
    pub acked_bytes: u64,
}

/// Archive to object storage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveStatus {
    /// The archive URL, when `[archive]` is configured.
    pub url: Option<String>,
}

/// Sums over all sessions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Sessions.
    pub sessions: u64,
    /// Streams.
    pub streams: u64,
    /// Viewers attached.
    pub viewers: u64,
    /// Data bytes received.
    pub bytes: u64,
    /// Current ingest rate (bytes per second, over the last second sampled).
    pub rate_bps: f64,
    /// Packets lost (indexed, data never came).
    pub lost_packets: u64,
}

/// One session, as the sessions table shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRow {
    /// The relay's session id (the `ID` of `/api/v1/sessions/ID`).
    pub id: u64,
    /// The host name the sender claimed.
    pub host: String,
    /// The sending peer: its configured name or certificate name, else its address.
    pub peer: String,
    /// The session name.
    pub name: String,
    /// The session directory under the output folder.
    pub dir: String,
    /// How it was sent: `lttng 2.MINOR` or `trelay`.
    pub format: String,
    /// The trace format: `CTF 1.8` or `CTF 2` (absent in documents of relays before it).
    #[serde(default)]
    pub trace_format: String,
    /// A live session (live timer set).
    pub live: bool,
    /// The live timer (µs, 0: not live).
    pub live_timer_us: u32,
    /// A snapshot session.
    pub snapshot: bool,
    /// `streaming`, `closed`, `failed` or `disk-full`.
    pub state: String,
    /// Streams open.
    pub streams: u64,
    /// Data bytes received.
    pub bytes: u64,
    /// Data packets received.
    pub packets: u64,
    /// Current rate (bytes per second, over the last second sampled).
    pub rate_bps: f64,
    /// Bytes per second, one sample a second, oldest first (at most the last 300).
    pub history: Vec<u64>,
    /// Packets indexed whose data never arrived.
    pub lost_packets: u64,
    /// Packets whose index never arrived.
    pub unindexed_packets: u64,
    /// Packets the tracer's sequence numbers skipped.
    pub sequence_gaps: u64,
    /// Events the tracer discarded.
    pub discarded_events: u64,
    /// Packets complete but not committed yet (committed-frontier lag).
    pub uncommitted_packets: u64,
    /// Live viewers attached.
    pub viewers: u64,
    /// Forwarding to the core relay, while a job forwards the session (`None` otherwise).
    pub forward: Option<SessionForward>,
    /// Its archive state, once the archiver's first pass saw it (`None` without `[archive]`).
    #[serde(default)]
    pub archive: Option<SessionArchive>,
}

/// Where the archiving of one session stands (as of the archiver's last pass).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionArchive {
    /// Closed chunks under its `archives/` folder.
    pub chunks: u64,
    /// Of them, uploaded to the archive and verified.
    pub uploaded_chunks: u64,
    /// The closed session's own files were uploaded and verified (false while it streams).
    pub session_uploaded: bool,
}

/// Where the forwarding of one session to the core relay stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionForward {
    /// The job's connection to the core is up.
    pub connected: bool,
    /// Committed bytes read for the core and not acknowledged yet.
    pub backlog_bytes: u64,
    /// Bytes the core acknowledged.
    pub acked_bytes: u64,
}

/// One stream of a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamRow {
    /// The relay's stream id.
    pub id: u64,
    /// Channel name (the file name's stem).
    pub name: String,
    /// Path under the session directory.
    pub path: String,
    /// The metadata stream.
    pub metadata: bool,
    /// Bytes in its current data file (metadata: bytes received).
    pub bytes: u64,
    /// Packets completed (index entries).
    pub packets: u64,
    /// Packets committed (what viewers and local readers may read).
    pub committed: u64,
    /// Current tracefile number.
    pub tracefile: u64,
    /// Packets indexed whose data never arrived.
    pub lost_packets: u64,
    /// Packets whose index never arrived.
    pub unindexed_packets: u64,
    /// Closed (waiting for viewers to take it).
    pub closed: bool,
    /// When its last data packet was received (milliseconds since the Unix epoch; `None`
    /// before the first, and for metadata streams).
    #[serde(default)]
    pub last_packet_ms: Option<u64>,
}

/// One live viewer attached to a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewerRow {
    /// Its address (`IP:PORT`), or its certificate name on the TLS live port.
    pub peer: String,
    /// The viewer session id the relay gave it.
    pub viewer: u64,
    /// When it attached (seconds since the Unix epoch).
    pub attached_at: u64,
    /// Data streams of the session it has asked an index for.
    #[serde(default)]
    pub streams: u64,
    /// Its position lag: over those streams, the committed packets (index entries) it has not
    /// been sent yet, summed (0: caught up with the committed frontier).
    #[serde(default)]
    pub lag_packets: u64,
}

/// A session's trace chunks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunks {
    /// The chunk new streams go into (its path under the session directory).
    pub current: Option<String>,
    /// The previous chunk, while a rotation closes it.
    pub closing: Option<String>,
    /// The session has archived at least one chunk (`lttng rotate`).
    pub rotated: bool,
    /// The archived chunks (the folders under its `archives/`, by name, at most
    /// [`ARCHIVED_LISTED`]).
    #[serde(default)]
    pub archived: Vec<ArchivedChunk>,
}

/// At most this many archived chunks are listed in [`Chunks::archived`].
pub const ARCHIVED_LISTED: usize = 1000;

/// One chunk a rotation archived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchivedChunk {
    /// Its folder under the session's `archives/`.
    pub name: String,
    /// Uploaded to the archive and verified (`None` without `[archive]`).
    pub uploaded: Option<bool>,
}

/// A notable event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// When (milliseconds since the Unix epoch).
    pub time_ms: u64,
    /// What kind: `session-opened`, `session-closed`, `session-failed`, `loss`,
    /// `disk-full`, `disk-recovered`, `viewer-attached`, `viewer-detached`, `refused`,
    /// `forward-connected`, `forward-disconnected`.
    pub kind: String,
    /// The session directory it concerns, if any.
    pub session: Option<String>,
    /// What happened, in words.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_row_round_trips_through_json() {
        let row = SessionRow {
            id: 3,
            host: "h".into(),
            peer: "127.0.0.1".into(),
            name: "<script>".into(),
            dir: "h/<script>-20260101-000000".into(),
            format: "lttng 2.4".into(),
            trace_format: "CTF 1.8".into(),
            live: true,
            live_timer_us: 1000,
            snapshot: false,
            state: "streaming".into(),
            streams: 2,
            bytes: 10,
            packets: 1,
            rate_bps: 1.5,
            history: vec![0, 10],
            lost_packets: 1,
            unindexed_packets: 0,
            sequence_gaps: 0,
            discarded_events: 0,
            uncommitted_packets: 0,
            viewers: 1,
            forward: None,
            archive: Some(SessionArchive {
                chunks: 2,
                uploaded_chunks: 1,
                session_uploaded: false,
            }),
        };
        let text = serde_json::to_string(&row).unwrap();
        assert!(text.contains(r#""name":"<script>""#), "{text}");
        let back: SessionRow = serde_json::from_str(&text).unwrap();
        assert_eq!(back, row);
    }

    #[test]
    fn documents_without_the_added_fields_still_read() {
        let v: ViewerRow =
            serde_json::from_str(r#"{"peer":"p","viewer":1,"attached_at":2}"#).unwrap();
        assert_eq!((v.streams, v.lag_packets), (0, 0));
        let c: Chunks =
            serde_json::from_str(r#"{"current":null,"closing":null,"rotated":false}"#).unwrap();
        assert!(c.archived.is_empty());
    }
}
