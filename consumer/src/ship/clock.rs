//! The trace clock, to date live beacons while following a trace being recorded.
//!
//! LTTng tracers timestamp with a clock named `monotonic` in their TSDL: `CLOCK_MONOTONIC` in
//! nanoseconds scaled by the declared frequency. Only that clock can be read from here; any
//! other clock gives no "now" and the follower falls back to per-stream safe timestamps.

use nix::time::{clock_gettime, ClockId};

/// A clock declared by a trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceClock {
    /// Clock name.
    pub name: String,
    /// Frequency in Hz.
    pub freq: u64,
}

fn field<'a>(block: &'a str, key: &str) -> Option<&'a str> {
    let at = block.find(key)? + key.len();
    let rest = block[at..].trim_start().strip_prefix('=')?;
    let end = rest.find(';')?;
    Some(rest[..end].trim().trim_matches('"'))
}

impl TraceClock {
    /// The first clock declared in `tsdl`, if any.
    pub fn from_tsdl(tsdl: &[u8]) -> Option<Self> {
        let text = String::from_utf8_lossy(tsdl);
        let start = text.find("clock {")?;
        let end = start + text[start..].find("};")?;
        let block = &text[start..end];
        Some(TraceClock {
            name: field(block, "name")?.to_owned(),
            freq: field(block, "freq")
                .and_then(|f| f.parse().ok())
                .unwrap_or(1_000_000_000),
        })
    }

    /// The clock's current value in cycles, when it is the monotonic clock LTTng uses.
    pub fn now(&self) -> Option<u64> {
        if self.name != "monotonic" || self.freq == 0 {
            return None;
        }
        let ts = clock_gettime(ClockId::CLOCK_MONOTONIC).ok()?;
        let ns = u128::try_from(ts.tv_sec()).ok()? * 1_000_000_000
            + u128::try_from(ts.tv_nsec()).ok()?;
        u64::try_from(ns * u128::from(self.freq) / 1_000_000_000).ok()
    }

    /// Converts a duration in µs to clock cycles.
    pub fn cycles(&self, us: u64) -> u64 {
        u64::try_from(u128::from(us) * u128::from(self.freq) / 1_000_000).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lttng_clock() {
        let tsdl = b"trace { }; clock {\n\tname = \"monotonic\";\n\tuuid = \"x\";\n\tfreq = 1000000000; /* Hz */\n\toffset = 5;\n};";
        let c = TraceClock::from_tsdl(tsdl).unwrap();
        assert_eq!(
            c,
            TraceClock {
                name: "monotonic".into(),
                freq: 1_000_000_000
            }
        );
        let a = c.now().unwrap();
        let b = c.now().unwrap();
        assert!(b >= a && a > 0);
        assert_eq!(c.cycles(3), 3000);
        let other = TraceClock {
            name: "realtime".into(),
            freq: 1,
        };
        assert!(other.now().is_none());
        assert!(TraceClock::from_tsdl(b"no clock here").is_none());
    }
}
