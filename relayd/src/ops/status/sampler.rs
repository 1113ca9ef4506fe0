//! The once-a-second sampler: reads every session's counters (atomics) into its [`Track`] and
//! turns what changed into notable events (sessions opening, closing and failing, losses, disk
//! full and recovery, refusals, forwarding connections up and down).

use super::book::{Book, Track};
use crate::session::Registry;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The sampling period.
pub const PERIOD: Duration = Duration::from_secs(1);

/// What the sampler remembers of the relay as a whole between two samples.
#[derive(Debug, Default)]
pub struct RelayPrev {
    refusals: HashMap<(&'static str, &'static str), u64>,
    forward_connected: u64,
}

/// Samples every [`PERIOD`] until `shutdown` fires.
pub async fn run(registry: Arc<Registry>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut prev = RelayPrev::default();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => sample(&registry, &mut prev, Instant::now()),
        }
    }
}

/// Takes one sample at `now`.
pub fn sample(registry: &Registry, prev: &mut RelayPrev, now: Instant) {
    let book: &Book = &registry.status;
    let mut sessions = registry.sessions();
    sessions.sort_by_key(|s| s.id);
    let mut events: Vec<(&'static str, Option<String>, String)> = Vec::new();
    book.with_tracks(|tracks| {
        for s in &sessions {
            let c = &s.counters;
            let get = crate::telemetry::SessionCounters::get;
            let bytes = get(&c.bytes);
            let loss = [
                get(&c.lost_packets),
                get(&c.unindexed_packets),
                get(&c.sequence_gaps),
                get(&c.discarded_events),
            ];
            let disk_full = s.disk_full.is_full();
            let failed = s.lock().failed.clone();
            let dir = s.rel_dir.to_string_lossy().into_owned();
            let t = tracks.entry(s.id).or_insert_with(|| {
                events.push((
                    "session-opened",
                    Some(dir.clone()),
                    format!("session {} from {} opened", s.params.name, s.params.peer),
                ));
                Track {
                    dir: dir.clone(),
                    ..Track::default()
                }
            });
            t.sample(bytes, now);
            let names = ["lost", "unindexed", "sequence gaps", "discarded events"];
            let grown: Vec<String> = names
                .iter()
                .zip(loss.iter().zip(t.loss.iter()))
                .filter(|(_, (now, before))| now > before)
                .map(|(name, (now, before))| format!("+{} {name}", now - before))
                .collect();
            if !grown.is_empty() {
                events.push(("loss", Some(dir.clone()), grown.join(", ")));
            }
            t.loss = loss;
            if disk_full != t.disk_full {
                events.push(if disk_full {
                    (
                        "disk-full",
                        Some(dir.clone()),
                        "waiting for disk space".into(),
                    )
                } else {
                    ("disk-recovered", Some(dir.clone()), "writing again".into())
                });
                t.disk_full = disk_full;
            }
            if let (Some(why), false) = (&failed, t.failed) {
                events.push(("session-failed", Some(dir.clone()), why.clone()));
                t.failed = true;
            }
        }
        tracks.retain(|id, t| {
            let alive = sessions.iter().any(|s| s.id == *id);
            if !alive {
                events.push((
                    "session-closed",
                    Some(t.dir.clone()),
                    "session closed".into(),
                ));
            }
            alive
        });
    });
    for (port, reason, n) in registry.gate.refusals.snapshot() {
        let before = prev.refusals.insert((port, reason), n).unwrap_or(0);
        if n > before {
            events.push((
                "refused",
                None,
                format!("{} refused on the {port} port: {reason}", n - before),
            ));
        }
    }
    if registry.settings.forward.is_some() {
        let up = registry.forwards.connected() as u64;
        if up > prev.forward_connected {
            events.push((
                "forward-connected",
                None,
                format!("{up} forwarding connection(s) up"),
            ));
        } else if up < prev.forward_connected {
            events.push((
                "forward-disconnected",
                None,
                format!(
                    "{} forwarding connection(s) down",
                    prev.forward_connected - up
                ),
            ));
        }
        prev.forward_connected = up;
    }
    for (kind, session, message) in events {
        book.event(kind, session.as_deref(), message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{GroupBy, Settings};
    use crate::session::SessionParams;
    use std::sync::atomic::Ordering;
    use tokio_util::task::TaskTracker;

    #[test]
    fn samples_turn_counters_into_rates_and_changes_into_events() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::new(
            Settings::default(),
            dir.path().to_path_buf(),
            GroupBy::Host,
            TaskTracker::new(),
        );
        let s = registry.create_session(SessionParams {
            name: "<b>s</b>".into(),
            hostname: "h".into(),
            base_path: String::new(),
            live_timer: 0,
            snapshot: false,
            name_has_time: false,
            minor: 13,
            trace_format: trelay_proto::TraceFormat::Ctf1_8,
            sessiond_uuid: [1; 16],
            sessiond_session_id: 1,
            creation_time: 1_795_414_943,
            peer: "10.0.0.1".into(),
        });
        let mut prev = RelayPrev::default();
        let t0 = Instant::now();
        sample(&registry, &mut prev, t0);
        s.counters.packet(2000);
        s.counters.lost_packets.fetch_add(3, Ordering::Relaxed);
        sample(&registry, &mut prev, t0 + Duration::from_secs(2));
        let (rate, history) = registry.status.track(s.id);
        assert_eq!(rate, 1000.0);
        assert_eq!(history, vec![1000]);
        let events = registry.status.events();
        let kinds: Vec<_> = events.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["loss", "session-opened"]);
        assert_eq!(events[0].message, "+3 lost");
        assert!(events[1].message.contains("<b>s</b> from 10.0.0.1"));
        // Nothing changed: no event; the session gone: closed.
        sample(&registry, &mut prev, t0 + Duration::from_secs(3));
        assert_eq!(registry.status.events().len(), 2);
        registry.remove_session(s.id);
        sample(&registry, &mut prev, t0 + Duration::from_secs(4));
        assert_eq!(registry.status.events()[0].kind, "session-closed");
        assert_eq!(registry.status.track(s.id), (0.0, vec![]));
    }
}
