//! The k-way merge of the multi-relay `tail`: packets from every relay, released in timestamp
//! order, holding a bounded amount per relay.
//!
//! Each relay reports a *watermark*: no packet it sends later begins before it (the least, over
//! its open streams, of the end of the stream's last packet or the time of its last
//! inactivity beacon; a stream with neither holds it at the start of time). A held packet is
//! released when it is the earliest held and begins no later than the watermark of every relay
//! that is still *live*. A relay stops holding the merge back when:
//!
//! - its session ended, or it was given up ([`Merger::done`]);
//! - it said nothing (no packet, no watermark) for `max_lag` — a relay that is behind, down
//!   or reconnecting holds the others back by at most that much wall time. Its packets that
//!   arrive later still come out, at once, flagged late;
//! - or some relay holds `max_held` packets: then the earliest held packet is released anyway
//!   (the memory bound wins over the order).
//!
//! This is the rule babeltrace2's live muxing follows with inactivity beacons, plus the wall-time
//! bound. Time is passed in (`now`), so the rule is tested on virtual time.

use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// One held item, ordered by time, then arrival.
#[derive(Debug)]
struct Held<T> {
    ns: i128,
    seq: u64,
    item: T,
}

impl<T> PartialEq for Held<T> {
    fn eq(&self, o: &Self) -> bool {
        (self.ns, self.seq) == (o.ns, o.seq)
    }
}
impl<T> Eq for Held<T> {}
impl<T> PartialOrd for Held<T> {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl<T> Ord for Held<T> {
    // Reversed: BinaryHeap is a max-heap and the earliest must come first.
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (o.ns, o.seq).cmp(&(self.ns, self.seq))
    }
}

#[derive(Debug)]
struct Source<T> {
    held: BinaryHeap<Held<T>>,
    watermark: i128,
    heard: Instant,
    done: bool,
}

/// A released item.
#[derive(Debug, PartialEq, Eq)]
pub struct Released<T> {
    /// The relay it came from.
    pub relay: usize,
    /// Its time (ns since the Epoch, or clock cycles when the trace declares no clock).
    pub ns: i128,
    /// Whether an item with a later time was released before it.
    pub late: bool,
    /// The item.
    pub item: T,
}

/// The merge state.
#[derive(Debug)]
pub struct Merger<T> {
    sources: Vec<Source<T>>,
    max_held: usize,
    max_lag: Duration,
    arrivals: u64,
    last_ns: Option<i128>,
    /// Items released out of order.
    pub late: u64,
}

impl<T> Merger<T> {
    /// A merge of `relays` sources holding at most `max_held` (≥ 1) each, waiting at most
    /// `max_lag` for a silent one.
    pub fn new(relays: usize, max_held: usize, max_lag: Duration, now: Instant) -> Self {
        Merger {
            sources: (0..relays)
                .map(|_| Source {
                    held: BinaryHeap::new(),
                    watermark: i128::MIN,
                    heard: now,
                    done: false,
                })
                .collect(),
            max_held: max_held.max(1),
            max_lag,
            arrivals: 0,
            last_ns: None,
            late: 0,
        }
    }

    /// An item from `relay` at time `ns`.
    pub fn push(&mut self, relay: usize, ns: i128, item: T, now: Instant) {
        let seq = self.arrivals;
        self.arrivals = self.arrivals.wrapping_add(1);
        if let Some(s) = self.sources.get_mut(relay) {
            s.heard = now;
            s.held.push(Held { ns, seq, item });
        }
    }

    /// `relay`'s new watermark.
    pub fn watermark(&mut self, relay: usize, ns: i128, now: Instant) {
        if let Some(s) = self.sources.get_mut(relay) {
            s.heard = now;
            s.watermark = ns;
        }
    }

    /// `relay` sends nothing more.
    pub fn done(&mut self, relay: usize) {
        if let Some(s) = self.sources.get_mut(relay) {
            s.done = true;
        }
    }

    /// Whether every relay is done and nothing is held.
    pub fn finished(&self) -> bool {
        self.sources.iter().all(|s| s.done && s.held.is_empty())
    }

    /// The next item that may be released now, if any.
    pub fn pop(&mut self, now: Instant) -> Option<Released<T>> {
        let (relay, head) = self
            .sources
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.held.peek().map(|h| (i, (h.ns, h.seq))))
            .min_by_key(|&(_, k)| k)?;
        let forced = self.sources.iter().any(|s| s.held.len() >= self.max_held);
        let max_lag = self.max_lag;
        let bound = self
            .sources
            .iter()
            .filter(|s| !s.done && now.saturating_duration_since(s.heard) < max_lag)
            .map(|s| s.watermark)
            .min();
        if !forced && bound.is_some_and(|b| head.0 > b) {
            return None;
        }
        self.take(relay)
    }

    /// Releases everything held, earliest first (at the end).
    pub fn drain(&mut self) -> Option<Released<T>> {
        let (relay, _) = self
            .sources
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.held.peek().map(|h| (i, (h.ns, h.seq))))
            .min_by_key(|&(_, k)| k)?;
        self.take(relay)
    }

    fn take(&mut self, relay: usize) -> Option<Released<T>> {
        let h = self.sources.get_mut(relay)?.held.pop()?;
        let late = self.last_ns.is_some_and(|l| h.ns < l);
        if late {
            self.late += 1;
        } else {
            self.last_ns = Some(h.ns);
        }
        Some(Released {
            relay,
            ns: h.ns,
            late,
            item: h.item,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain_ready(m: &mut Merger<&'static str>, now: Instant) -> Vec<&'static str> {
        std::iter::from_fn(|| m.pop(now)).map(|r| r.item).collect()
    }

    #[test]
    fn waits_for_every_watermark_then_releases_in_order() {
        let t0 = Instant::now();
        let mut m = Merger::new(2, 100, Duration::from_secs(1), t0);
        m.push(0, 20, "a20", t0);
        m.push(0, 10, "a10", t0);
        m.watermark(0, 30, t0);
        assert!(
            drain_ready(&mut m, t0).is_empty(),
            "relay 1 said nothing yet"
        );
        m.push(1, 15, "b15", t0);
        m.watermark(1, 16, t0);
        assert_eq!(drain_ready(&mut m, t0), ["a10", "b15"]);
        m.watermark(1, 40, t0);
        assert_eq!(drain_ready(&mut m, t0), ["a20"]);
        m.done(0);
        m.done(1);
        assert!(m.finished());
        assert_eq!(m.late, 0);
    }

    #[test]
    fn a_silent_relay_holds_back_only_up_to_the_lag() {
        let t0 = Instant::now();
        let lag = Duration::from_millis(500);
        let mut m = Merger::new(2, 100, lag, t0);
        m.push(0, 10, "a10", t0);
        m.watermark(0, 10, t0);
        assert!(drain_ready(&mut m, t0 + lag / 2).is_empty());
        assert_eq!(drain_ready(&mut m, t0 + lag), ["a10"]);
        // The late relay's packet still comes out, flagged.
        m.push(1, 5, "b5", t0 + lag);
        m.watermark(1, 5, t0 + lag);
        let r = m.pop(t0 + lag).unwrap();
        assert!(r.late && r.item == "b5" && m.late == 1);
    }

    #[test]
    fn the_memory_bound_forces_release() {
        let t0 = Instant::now();
        let mut m = Merger::new(2, 2, Duration::from_secs(60), t0);
        m.push(0, 3, "a3", t0);
        assert!(m.pop(t0).is_none());
        m.push(0, 1, "a1", t0);
        assert_eq!(m.pop(t0).map(|r| r.item), Some("a1"));
        assert!(m.pop(t0).is_none());
        m.done(0);
        m.done(1);
        assert_eq!(drain_ready(&mut m, t0), ["a3"]);
        assert!(m.drain().is_none() && m.finished());
    }
}
