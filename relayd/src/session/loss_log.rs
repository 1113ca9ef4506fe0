//! Log lines for halves that left the merge table without their partner, under a budget: a
//! sender that never sends indexes (or never sends the data it indexed) would otherwise make the
//! relay write a line per packet. The first [`PER_SECOND`] lines of each second are written;
//! the next one that is written says how many were left out meanwhile. The full account is in
//! each stream's counters and loss sidecar, never in the log alone.

use crate::merge::Expired;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Lines written per second at most.
pub const PER_SECOND: u32 = 10;

/// A per-second line budget.
#[derive(Debug)]
pub struct LogBudget {
    state: Mutex<Window>,
}

#[derive(Debug)]
struct Window {
    start: Option<Instant>,
    used: u32,
    skipped: u64,
}

impl LogBudget {
    /// A fresh budget.
    pub const fn new() -> LogBudget {
        LogBudget {
            state: Mutex::new(Window {
                start: None,
                used: 0,
                skipped: 0,
            }),
        }
    }

    /// Whether a line may be written at `now`: `Some(n)` with the number of lines left out
    /// since the last one written, `None` when this one is left out too.
    pub fn admit(&self, now: Instant) -> Option<u64> {
        let mut w = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let fresh = w
            .start
            .is_none_or(|s| now.saturating_duration_since(s) >= Duration::from_secs(1));
        if fresh {
            w.start = Some(now);
            w.used = 0;
        }
        if w.used >= PER_SECOND {
            w.skipped = w.skipped.saturating_add(1);
            return None;
        }
        w.used += 1;
        Some(std::mem::take(&mut w.skipped))
    }
}

impl Default for LogBudget {
    fn default() -> Self {
        LogBudget::new()
    }
}

static BUDGET: LogBudget = LogBudget::new();

/// Logs a half that left the merge table without its partner (within the relay's budget).
pub fn log_expired(e: &Expired) {
    let Some(skipped) = BUDGET.admit(Instant::now()) else {
        return;
    };
    if e.is_lost() {
        tracing::warn!(stream = %e.stream, seq = e.seq.0, reason = ?e.reason, waited = ?e.waited, similar_lines_left_out = skipped, "lost packet: its index came, its data never did");
    } else {
        tracing::warn!(stream = %e.stream, seq = e.seq.0, reason = ?e.reason, waited = ?e.waited, similar_lines_left_out = skipped, "unindexed packet: its data came, its index never did");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_cut_to_the_budget_and_the_next_line_counts_what_was_left_out() {
        let b = LogBudget::new();
        let t0 = Instant::now();
        for _ in 0..PER_SECOND {
            assert_eq!(b.admit(t0), Some(0));
        }
        for _ in 0..25 {
            assert_eq!(b.admit(t0 + Duration::from_millis(500)), None);
        }
        assert_eq!(b.admit(t0 + Duration::from_secs(1)), Some(25));
        assert_eq!(b.admit(t0 + Duration::from_secs(1)), Some(0));
    }
}
