//! What the relay counts while it works, for the Prometheus exposition ([`crate::ops`]).
//!
//! A leaf module: the data path only bumps atomics here (one relaxed add per packet, no lock, no
//! allocation) and records commit latencies into histograms. Everything that is a state rather
//! than an event (sessions open, pending merge halves, disk free) is read at scrape time by
//! [`crate::ops::metrics`], so nothing here needs to be kept in step with the registry.
//!
//! Series carry at most a `port` or a `session` label: never a stream id or a packet number, so
//! the number of series grows with listeners and sessions only. A session's series disappear
//! [`SESSION_SERIES_IDLE`] after it stopped changing (closed sessions), so a relay that has seen
//! many sessions over weeks keeps exposing only recent ones.

use metrics::{Counter, Gauge, Histogram, Key, Label, Recorder, Unit};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use metrics_util::MetricKindMask;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long the series of a session that stopped changing stay exposed.
pub const SESSION_SERIES_IDLE: Duration = Duration::from_secs(300);

/// Bucket bounds (seconds) of the commit and fdatasync latency histograms.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Every family the relay exposes: name, unit, help. The README's metrics table lists them.
pub const FAMILIES: &[(&str, Option<Unit>, &str)] = &[
    (
        "trelay_connections",
        None,
        "Connections open, by port (control, data, live) and state.",
    ),
    (
        "trelay_connections_accepted_total",
        None,
        "Connections accepted, by port.",
    ),
    (
        "trelay_sessions",
        None,
        "Relay sessions open (sender connected or not yet closed).",
    ),
    ("trelay_streams", None, "Streams open, all sessions."),
    ("trelay_session_streams", None, "Streams open, per session."),
    (
        "trelay_received_bytes_total",
        Some(Unit::Bytes),
        "Data bytes received, per session.",
    ),
    (
        "trelay_received_packets_total",
        None,
        "Data packets received, per session.",
    ),
    (
        "trelay_lost_packets_total",
        None,
        "Packets indexed by the sender whose data never arrived, per session.",
    ),
    (
        "trelay_unindexed_packets_total",
        None,
        "Packets received whose index never arrived, per session.",
    ),
    (
        "trelay_invalid_index_total",
        None,
        "Index entries refused because their sizes disagree with their packet, per session.",
    ),
    (
        "trelay_sequence_gaps_total",
        None,
        "Packets the tracer's sequence numbers skipped, per session.",
    ),
    (
        "trelay_discarded_events_total",
        None,
        "Events the tracer discarded (ring buffer full), per session.",
    ),
    (
        "trelay_uncommitted_packets",
        None,
        "Packets complete but not committed yet (committed-frontier lag), per session.",
    ),
    (
        "trelay_disk_full",
        None,
        "1 while a session waits for disk space, per session.",
    ),
    (
        "trelay_merge_pending_halves",
        None,
        "Index or data halves waiting for their partner.",
    ),
    ("trelay_commits_total", None, "Commit groups run."),
    (
        "trelay_commit_failures_total",
        None,
        "Commit groups that failed or were postponed by a full disk.",
    ),
    (
        "trelay_commit_duration_seconds",
        Some(Unit::Seconds),
        "Duration of a commit group.",
    ),
    (
        "trelay_fdatasync_duration_seconds",
        Some(Unit::Seconds),
        "Duration of the fdatasync phases of a commit group.",
    ),
    (
        "trelay_live_viewers",
        None,
        "Live viewer connections attached to a session.",
    ),
    (
        "trelay_live_sent_bytes_total",
        Some(Unit::Bytes),
        "Bytes sent to live viewers.",
    ),
    (
        "trelay_disk_free_bytes",
        Some(Unit::Bytes),
        "Free space under the output folder.",
    ),
    (
        "trelay_open_fds",
        None,
        "File descriptors the process has open.",
    ),
    (
        "trelay_max_fds",
        None,
        "The process's file descriptor limit.",
    ),
    (
        "trelay_refused_total",
        None,
        "Connections and requests refused (allowlist, limits, deadlines), by port and reason.",
    ),
    (
        "trelay_pool_open_files",
        None,
        "Stream files holding a descriptor (bounded by max_open_files).",
    ),
    (
        "trelay_pool_max_open_files",
        None,
        "The open-file pool's bound (max_open_files).",
    ),
    (
        "trelay_pool_evictions_total",
        None,
        "Descriptors the open-file pool closed (reopened on next use).",
    ),
    (
        "trelay_forward_sessions",
        None,
        "Sessions being forwarded to the core relay (not all acknowledged yet).",
    ),
    (
        "trelay_forward_connected",
        None,
        "Forwarding jobs whose connection to the core is up.",
    ),
    (
        "trelay_forward_backlog_bytes",
        Some(Unit::Bytes),
        "Committed packet bytes read for the core and not acknowledged by it yet.",
    ),
    (
        "trelay_forward_acked_bytes_total",
        Some(Unit::Bytes),
        "Packet bytes the core acknowledged as committed.",
    ),
    (
        "trelay_spliced_bytes_total",
        Some(Unit::Bytes),
        "Data bytes moved from sockets into stream files by splice, never copied through the relay.",
    ),
    (
        "trelay_archive_uploaded_bytes_total",
        Some(Unit::Bytes),
        "Bytes uploaded to the archive and verified there.",
    ),
    (
        "trelay_archive_failures_total",
        None,
        "Archive attempts of a unit that failed (retried with backoff).",
    ),
    (
        "trelay_archive_units_total",
        None,
        "Closed chunks and sessions archived (uploaded, verified, marked).",
    ),
    (
        "trelay_archive_pending_units",
        None,
        "Closed chunks and sessions waiting for their archive.",
    ),
];

/// A listening port kind, the `port` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// The control port (LTTng control connections).
    Control,
    /// The data port.
    Data,
    /// The live (viewer) port.
    Live,
}

impl Port {
    /// Every port, in label order.
    pub const ALL: [Port; 3] = [Port::Control, Port::Data, Port::Live];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Port::Control => "control",
            Port::Data => "data",
            Port::Live => "live",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Event counts of one relay session (read at scrape time).
#[derive(Debug, Default)]
pub struct SessionCounters {
    /// Payload bytes received on the data port (padding included).
    pub bytes: AtomicU64,
    /// Data packets received.
    pub packets: AtomicU64,
    /// Index halves that never got their data.
    pub lost_packets: AtomicU64,
    /// Data halves that never got their index.
    pub unindexed_packets: AtomicU64,
    /// Packets the tracer's sequence numbers skipped (lost before the relay).
    pub sequence_gaps: AtomicU64,
    /// Events the tracer discarded (its ring buffer was full), from the index entries.
    pub discarded_events: AtomicU64,
    /// Index entries refused because their sizes disagree with the packet they describe.
    pub invalid_indexes: AtomicU64,
}

impl SessionCounters {
    /// One data packet of `bytes` bytes was received.
    pub fn packet(&self, bytes: u64) {
        self.packets.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Adds `n` to `counter`.
    pub fn add(counter: &AtomicU64, n: u64) {
        if n > 0 {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Reads `counter`.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// The relay's metric registry and the handles the data path records into.
pub struct Telemetry {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// Commit groups run.
    pub commits: Counter,
    /// Commit groups that failed (session failed) or were postponed (disk full).
    pub commit_failures: Counter,
    /// Duration of a whole commit group.
    pub commit_seconds: Histogram,
    /// Duration of the fdatasync phases of a commit group (data files, then index files).
    pub fdatasync_seconds: Histogram,
    /// Bytes sent to live viewers (packets and metadata).
    pub live_sent_bytes: Counter,
    /// Data bytes spliced from sockets into stream files.
    pub spliced_bytes: Counter,
    /// Bytes uploaded to the archive and verified.
    pub archive_uploaded_bytes: Counter,
    /// Failed archive attempts.
    pub archive_failures: Counter,
    /// Units archived.
    pub archive_units: Counter,
    /// Units waiting for their archive.
    pub archive_pending: Gauge,
    open: [Gauge; 3],
    open_now: Arc<[AtomicU64; 3]>,
    accepted: [Counter; 3],
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry").finish_non_exhaustive()
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl Telemetry {
    /// A fresh registry with every relay-wide family described.
    pub fn new() -> Telemetry {
        let recorder = PrometheusBuilder::new()
            .idle_timeout(
                MetricKindMask::COUNTER | MetricKindMask::GAUGE,
                Some(SESSION_SERIES_IDLE),
            )
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
            .map(PrometheusBuilder::build_recorder)
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let handle = recorder.handle();
        for (name, unit, help) in FAMILIES {
            describe(&recorder, name, *unit, help);
        }
        let counter = |name: &'static str, labels: Vec<Label>| {
            recorder.register_counter(&Key::from_parts(name, labels), &metadata())
        };
        let gauge = |name: &'static str, labels: Vec<Label>| {
            recorder.register_gauge(&Key::from_parts(name, labels), &metadata())
        };
        let port = |p: Port| vec![Label::new("port", p.label())];
        Telemetry {
            commits: counter("trelay_commits_total", vec![]),
            commit_failures: counter("trelay_commit_failures_total", vec![]),
            commit_seconds: recorder.register_histogram(
                &Key::from_name("trelay_commit_duration_seconds"),
                &metadata(),
            ),
            fdatasync_seconds: recorder.register_histogram(
                &Key::from_name("trelay_fdatasync_duration_seconds"),
                &metadata(),
            ),
            live_sent_bytes: counter("trelay_live_sent_bytes_total", vec![]),
            spliced_bytes: counter("trelay_spliced_bytes_total", vec![]),
            archive_uploaded_bytes: counter("trelay_archive_uploaded_bytes_total", vec![]),
            archive_failures: counter("trelay_archive_failures_total", vec![]),
            archive_units: counter("trelay_archive_units_total", vec![]),
            archive_pending: gauge("trelay_archive_pending_units", vec![]),
            open: Port::ALL.map(|p| {
                let mut l = port(p);
                l.push(Label::new("state", "open"));
                gauge("trelay_connections", l)
            }),
            open_now: Arc::new([const { AtomicU64::new(0) }; 3]),
            accepted: Port::ALL.map(|p| counter("trelay_connections_accepted_total", port(p))),
            recorder,
            handle,
        }
    }

    /// A connection was accepted on `port`; the guard counts it open until dropped.
    pub fn connection(&self, port: Port) -> ConnectionGuard {
        self.accepted[port.index()].increment(1);
        let gauge = self.open[port.index()].clone();
        gauge.increment(1.0);
        self.open_now[port.index()].fetch_add(1, Ordering::Relaxed);
        ConnectionGuard {
            gauge,
            open_now: self.open_now.clone(),
            port: port.index(),
        }
    }

    /// Connections open on `port` now (the status page).
    pub fn open_connections(&self, port: Port) -> u64 {
        self.open_now[port.index()].load(Ordering::Relaxed)
    }

    /// Sets the gauge `name` (with `labels`) to `value`: scrape-time states.
    pub fn set_gauge(&self, name: &'static str, labels: &[(&'static str, String)], value: f64) {
        self.recorder
            .register_gauge(&key(name, labels), &metadata())
            .set(value);
    }

    /// Sets the counter `name` (with `labels`) to `value`: totals kept elsewhere.
    pub fn set_counter(&self, name: &'static str, labels: &[(&'static str, String)], value: u64) {
        self.recorder
            .register_counter(&key(name, labels), &metadata())
            .absolute(value);
    }

    /// The exposition, in the Prometheus text format.
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// Drains histogram samples into their buckets and forgets idle series; call every second
    /// or so, scraped or not, so memory stays bounded.
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }
}

/// Counts one open connection (see [`Telemetry::connection`]).
#[derive(Debug)]
pub struct ConnectionGuard {
    gauge: Gauge,
    open_now: Arc<[AtomicU64; 3]>,
    port: usize,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.gauge.decrement(1.0);
        if let Some(n) = self.open_now.get(self.port) {
            n.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

fn key(name: &'static str, labels: &[(&'static str, String)]) -> Key {
    Key::from_parts(
        name,
        labels
            .iter()
            .map(|(k, v)| Label::new(*k, v.clone()))
            .collect::<Vec<_>>(),
    )
}

fn metadata() -> metrics::Metadata<'static> {
    metrics::Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()))
}

fn describe(
    recorder: &PrometheusRecorder,
    name: &'static str,
    unit: Option<Unit>,
    help: &'static str,
) {
    // The family's type comes from the name: counters end in `_total`, histograms in
    // `_seconds`, the rest are gauges.
    if name.ends_with("_total") {
        recorder.describe_counter(name.into(), unit, help.into());
    } else if name.ends_with("_seconds") {
        recorder.describe_histogram(name.into(), unit, help.into());
    } else {
        recorder.describe_gauge(name.into(), unit, help.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_counted_open_until_their_guard_goes() {
        let t = Telemetry::new();
        let a = t.connection(Port::Data);
        let _b = t.connection(Port::Data);
        let text = t.render();
        assert!(
            text.contains("trelay_connections{port=\"data\",state=\"open\"} 2"),
            "{text}"
        );
        drop(a);
        let text = t.render();
        assert!(
            text.contains("trelay_connections{port=\"data\",state=\"open\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("trelay_connections_accepted_total{port=\"data\"} 2"),
            "{text}"
        );
    }

    #[test]
    fn latencies_land_in_buckets() {
        let t = Telemetry::new();
        t.commit_seconds.record(0.003);
        t.upkeep();
        let text = t.render();
        assert!(
            text.contains("trelay_commit_duration_seconds_bucket{le=\"0.005\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("trelay_commit_duration_seconds_count 1"),
            "{text}"
        );
    }
}
