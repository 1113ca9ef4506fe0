//! Clock cycles and wall-clock time.
//!
//! A CTF timestamp is a cycle count of a clock; the clock's metadata says how fast it ticks
//! (`freq`, Hz) and where its origin is relative to the Epoch (`offset_s` seconds plus `offset`
//! cycles). Wall-clock nanoseconds since the Epoch are then
//! `offset_s * 10^9 + (offset + cycles) * 10^9 / freq` (rounded down). Times are printed in
//! RFC 3339 with nanoseconds, in UTC.

use chrono::{DateTime, SecondsFormat, Utc};

use crate::tsdl::Clock;

const NS_PER_S: i128 = 1_000_000_000;

impl Clock {
    /// Nanoseconds since the Epoch of `cycles` (rounded down).
    pub fn to_epoch_ns(&self, cycles: u64) -> i128 {
        let total = i128::from(self.offset) + i128::from(cycles);
        i128::from(self.offset_s) * NS_PER_S + (total * NS_PER_S).div_euclid(i128::from(self.freq))
    }

    /// The cycle count of the first tick at or after `ns` (`ceil`) or at or before it
    /// (`!ceil`), clamped to the `u64` range.
    pub fn cycles_at(&self, ns: i128, ceil: bool) -> u64 {
        let since_origin_ns = ns - i128::from(self.offset_s) * NS_PER_S;
        let scaled = since_origin_ns * i128::from(self.freq);
        let total = if ceil {
            let q = scaled.div_euclid(NS_PER_S);
            if scaled.rem_euclid(NS_PER_S) == 0 {
                q
            } else {
                q + 1
            }
        } else {
            scaled.div_euclid(NS_PER_S)
        };
        let cycles = total - i128::from(self.offset);
        u64::try_from(cycles.max(0)).unwrap_or(u64::MAX)
    }

    /// RFC 3339 text (UTC, nanoseconds) of `cycles`.
    pub fn format(&self, cycles: u64) -> String {
        format_epoch_ns(self.to_epoch_ns(cycles))
    }
}

/// RFC 3339 text (UTC, nanoseconds) of nanoseconds since the Epoch; out-of-range values are
/// printed as a number of nanoseconds.
pub fn format_epoch_ns(ns: i128) -> String {
    let secs = ns.div_euclid(NS_PER_S);
    let sub = ns.rem_euclid(NS_PER_S);
    match (i64::try_from(secs), u32::try_from(sub)) {
        (Ok(s), Ok(n)) => match DateTime::<Utc>::from_timestamp(s, n) {
            Some(t) => t.to_rfc3339_opts(SecondsFormat::Nanos, true),
            None => format!("{ns}ns"),
        },
        _ => format!("{ns}ns"),
    }
}

/// A time given on the command line: clock cycles (a plain integer) or a wall-clock time
/// (RFC 3339, e.g. `2026-11-23T06:22:24.8552Z`; a space may replace the `T`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeArg {
    /// Clock cycles.
    Cycles(u64),
    /// Nanoseconds since the Epoch.
    EpochNs(i128),
}

impl std::str::FromStr for TimeArg {
    type Err = String;

    fn from_str(s: &str) -> Result<TimeArg, String> {
        let s = s.trim();
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return s
                .parse::<u64>()
                .map(TimeArg::Cycles)
                .map_err(|e| format!("{s}: {e}"));
        }
        let t = DateTime::parse_from_rfc3339(s).map_err(|e| {
            format!(
                "{s}: not a cycle count nor an RFC 3339 time (like 2026-11-23T06:22:24.5Z): {e}"
            )
        })?;
        let ns = i128::from(t.timestamp()) * NS_PER_S + i128::from(t.timestamp_subsec_nanos());
        Ok(TimeArg::EpochNs(ns))
    }
}

impl TimeArg {
    /// The cycle count this time designates with `clock`: for a lower bound the first tick at or
    /// after it, for an upper bound the last tick at or before it. A wall-clock time needs a
    /// clock.
    pub fn to_cycles(self, clock: Option<&Clock>, lower_bound: bool) -> Result<u64, String> {
        match self {
            TimeArg::Cycles(c) => Ok(c),
            TimeArg::EpochNs(ns) => clock.map(|c| c.cycles_at(ns, lower_bound)).ok_or_else(|| {
                "a wall-clock time needs the trace's clock, and its metadata names none".to_owned()
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn clock(freq: u64, offset_s: i64, offset: i64) -> Clock {
        Clock {
            name: "c".into(),
            freq,
            offset_s,
            offset,
        }
    }

    #[test]
    fn fixture_clock() {
        let c = clock(1_000_000_000, 0, 1_795_411_540_087_266_030);
        // First event of the fixture, per babeltrace2 (06:22:24.855261049 UTC).
        assert_eq!(
            c.format(3_404_767_995_019),
            "2026-11-23T06:22:24.855261049Z"
        );
        assert_eq!(
            c.cycles_at(c.to_epoch_ns(3_404_767_995_019), true),
            3_404_767_995_019
        );
    }

    #[test]
    fn parse_args() {
        assert_eq!("123".parse::<TimeArg>(), Ok(TimeArg::Cycles(123)));
        assert_eq!(
            "1970-01-01T00:00:01.5Z".parse::<TimeArg>(),
            Ok(TimeArg::EpochNs(1_500_000_000))
        );
        assert_eq!(
            "1970-01-01 00:00:01.000000002+00:00".parse::<TimeArg>(),
            Ok(TimeArg::EpochNs(1_000_000_002))
        );
        assert!("yesterday".parse::<TimeArg>().is_err());
        assert!(TimeArg::EpochNs(5).to_cycles(None, true).is_err());
    }

    #[test]
    fn slow_clock_rounding() {
        let c = clock(1000, 10, 0); // 1 ms per cycle, origin at 10 s
        assert_eq!(c.to_epoch_ns(1), 10_001_000_000);
        assert_eq!(c.cycles_at(10_001_500_000, true), 2);
        assert_eq!(c.cycles_at(10_001_500_000, false), 1);
        assert_eq!(c.cycles_at(10_001_000_000, true), 1);
        assert_eq!(c.cycles_at(0, false), 0);
    }

    proptest! {
        #[test]
        fn ceil_of_a_tick_is_the_tick(freq in 1u64..=1_000_000_000, offset_s in -1_000_000i64..2_000_000_000,
                             offset in -1_000_000_000_000i64..1_000_000_000_000_000_000,
                             cycles in 0u64..u64::MAX / 4) {
            let c = clock(freq, offset_s, offset);
            prop_assert_eq!(c.cycles_at(c.to_epoch_ns(cycles), true), cycles);
        }

        #[test]
        fn floor_is_the_last_tick_not_after(freq in 1u64..=10_000_000_000, offset in 0i64..1_000_000_000_000,
                             ns in 0i128..1_000_000_000_000_000_000) {
            let c = clock(freq, 0, offset);
            let b = c.cycles_at(ns, false);
            prop_assume!(b > 0);
            // exact time of tick b is <= ns, of tick b + 1 is > ns
            let exact = |t: u64| (i128::from(offset) + i128::from(t)) * NS_PER_S;
            prop_assert!(exact(b) <= ns * i128::from(freq));
            prop_assert!(exact(b + 1) > ns * i128::from(freq));
        }
    }
}
