//! Settings of the live port, the `[live]` table of trelay's TOML settings file.
//!
//! ```toml
//! [live]
//! idle_timeout_s = 600   # close a viewer connection silent this long (0: never)
//! retry_hold_ms = 0      # hold a RETRY up to this long for the stream's next commit (0: off)
//! ```

use serde::Deserialize;
use std::time::Duration;

/// Largest accepted `retry_hold_ms`: babeltrace2 waits for each reply in turn, so a long hold
/// on one stream delays every other stream of the viewer.
pub const MAX_RETRY_HOLD_MS: u64 = 1000;

/// Live port settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LiveSettings {
    /// A viewer connection that sends nothing for this long is closed (seconds, 0: never).
    pub idle_timeout_s: u64,
    /// Server-side pacing: a GET_NEXT_INDEX that would answer RETRY waits up to this long for
    /// the stream's next commit and answers with what it brought (ms, 0: answer at once).
    pub retry_hold_ms: u64,
}

impl Default for LiveSettings {
    fn default() -> Self {
        LiveSettings {
            idle_timeout_s: 600,
            retry_hold_ms: 0,
        }
    }
}

impl LiveSettings {
    /// The idle timeout, if any.
    pub fn idle_timeout(&self) -> Option<Duration> {
        (self.idle_timeout_s > 0).then(|| Duration::from_secs(self.idle_timeout_s))
    }

    /// The RETRY hold, if any.
    pub fn retry_hold(&self) -> Option<Duration> {
        (self.retry_hold_ms > 0).then(|| Duration::from_millis(self.retry_hold_ms))
    }

    /// Checks ranges; returns what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.retry_hold_ms > MAX_RETRY_HOLD_MS {
            return Err(format!(
                "live.retry_hold_ms must be at most {MAX_RETRY_HOLD_MS}"
            ));
        }
        Ok(())
    }
}
