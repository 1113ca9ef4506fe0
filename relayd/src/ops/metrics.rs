//! The `/metrics` exposition: states read from the registry at scrape time, then every family of
//! [`crate::telemetry::FAMILIES`] rendered by the Prometheus exporter.
//!
//! Per-session series carry one label, `session`: the session's directory under the output
//! folder (`HOST/NAME-DATE`). Cardinality is the number of sessions seen in the last
//! [`crate::telemetry::SESSION_SERIES_IDLE`]; nothing is labelled per stream or per packet.

use crate::session::Registry;
use crate::telemetry::SessionCounters;

/// Refreshes the scrape-time states and renders the exposition.
pub fn render(registry: &Registry) -> String {
    let t = &registry.telemetry;
    let sessions = registry.sessions();
    let mut streams_total = 0usize;
    let mut viewers = 0usize;
    for s in &sessions {
        let label = [("session", s.rel_dir.to_string_lossy().into_owned())];
        let streams = registry.session_streams(s);
        let uncommitted: u64 = streams.iter().map(|st| st.lock().uncommitted()).sum();
        streams_total += streams.len();
        viewers += s.live.viewers();
        let c = &s.counters;
        let counters = [
            ("trelay_received_bytes_total", &c.bytes),
            ("trelay_received_packets_total", &c.packets),
            ("trelay_lost_packets_total", &c.lost_packets),
            ("trelay_unindexed_packets_total", &c.unindexed_packets),
            ("trelay_invalid_index_total", &c.invalid_indexes),
            ("trelay_sequence_gaps_total", &c.sequence_gaps),
            ("trelay_discarded_events_total", &c.discarded_events),
        ];
        for (name, value) in counters {
            t.set_counter(name, &label, SessionCounters::get(value));
        }
        t.set_gauge("trelay_session_streams", &label, streams.len() as f64);
        t.set_gauge("trelay_uncommitted_packets", &label, uncommitted as f64);
        let full = if s.disk_full.is_full() { 1.0 } else { 0.0 };
        t.set_gauge("trelay_disk_full", &label, full);
    }
    t.set_gauge("trelay_sessions", &[], sessions.len() as f64);
    t.set_gauge("trelay_streams", &[], streams_total as f64);
    t.set_gauge("trelay_live_viewers", &[], viewers as f64);
    t.set_gauge(
        "trelay_merge_pending_halves",
        &[],
        registry.merge.len() as f64,
    );
    if let Ok(free) = registry.fs.free_space(&registry.output) {
        t.set_gauge("trelay_disk_free_bytes", &[], free as f64);
    }
    if let Some(n) = super::fds::open_count() {
        t.set_gauge("trelay_open_fds", &[], n as f64);
    }
    if let Some(n) = super::fds::limit() {
        t.set_gauge("trelay_max_fds", &[], n as f64);
    }
    for (port, reason, n) in registry.gate.refusals.snapshot() {
        let labels = [("port", port.to_owned()), ("reason", reason.to_owned())];
        t.set_counter("trelay_refused_total", &labels, n);
    }
    let pool = crate::storage::pool::pool();
    t.set_gauge("trelay_pool_open_files", &[], pool.open() as f64);
    t.set_gauge("trelay_pool_max_open_files", &[], pool.max() as f64);
    t.set_counter("trelay_pool_evictions_total", &[], pool.evicted());
    if registry.settings.forward.is_some() {
        let f = &registry.forwards;
        t.set_gauge("trelay_forward_sessions", &[], f.pending() as f64);
        t.set_gauge("trelay_forward_connected", &[], f.connected() as f64);
        t.set_gauge("trelay_forward_backlog_bytes", &[], f.backlog() as f64);
        t.set_counter("trelay_forward_acked_bytes_total", &[], f.acked());
    }
    t.render()
}
