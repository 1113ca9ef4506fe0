//! Refused connections and requests: counted per port and reason, logged at most once a second
//! per reason (the next line says how many were left out), so a flood of attempts cannot flood
//! the log.

use super::Refusal;
use crate::telemetry::Port;
use dashmap::DashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Refusal counts and the log budget.
#[derive(Debug, Default)]
pub struct Refusals {
    counts: DashMap<(&'static str, &'static str), AtomicU64>,
    last_log: DashMap<&'static str, (Option<Instant>, u64)>,
}

impl Refusals {
    /// A connection from `ip` refused at accept on `port`.
    pub fn refused(&self, port: Port, why: Refusal, ip: IpAddr) {
        self.count(port.label(), why.label());
        if let Some(skipped) = self.admit_line(why.label()) {
            tracing::warn!(
                port = port.label(),
                reason = why.label(),
                %ip,
                skipped,
                "connection refused"
            );
        }
    }

    /// A request refused on an admitted connection (limits on sessions, streams, budgets,
    /// handshake deadline); logged by the caller when [`Refusals::admit_line`] allows.
    pub fn count(&self, port: &'static str, reason: &'static str) {
        self.counts
            .entry((port, reason))
            .or_default()
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Whether a line about `reason` may be logged now: `Some(lines left out since the last)`.
    pub fn admit_line(&self, reason: &'static str) -> Option<u64> {
        let now = Instant::now();
        let mut e = self.last_log.entry(reason).or_insert((None, 0));
        match e.0 {
            Some(t) if now.duration_since(t) < Duration::from_secs(1) => {
                e.1 = e.1.saturating_add(1);
                None
            }
            _ => {
                let skipped = e.1;
                *e = (Some(now), 0);
                Some(skipped)
            }
        }
    }

    /// Every `(port, reason, count)` so far.
    pub fn snapshot(&self) -> Vec<(&'static str, &'static str, u64)> {
        self.counts
            .iter()
            .map(|e| (e.key().0, e.key().1, e.value().load(Ordering::Relaxed)))
            .collect()
    }
}
