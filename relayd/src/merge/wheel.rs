//! A hashed timer wheel: O(1) insert, O(1) cancel, expiry in time proportional to the ticks
//! elapsed plus the timers fired.
//!
//! Time is passed in (`now`, a [`std::time::Instant`]) and converted to ticks of a fixed
//! resolution counted from the wheel's origin. A timer with deadline `d` lands in bucket
//! `ceil(d / tick) mod buckets`; [`TimerWheel::expire`] walks the buckets of the ticks elapsed
//! since the previous call (at most one lap) and fires every timer whose deadline tick has passed,
//! leaving timers of later laps in place. A timer never fires before its deadline, and at most one
//! tick after it (plus however late the caller calls `expire`).
//!
//! Timers live in a slab (`Vec` of nodes with a free list); each node is linked into its bucket's
//! list and into an insertion-order list, so the oldest timer is found in O(1)
//! ([`TimerWheel::pop_oldest`], used to enforce memory caps). Cancelling takes the [`TimerId`]
//! handed out at insert; a stale id (timer already fired, cancelled, slot reused) is ignored
//! thanks to a per-slot generation. The slab never shrinks: its size is the largest number of
//! timers held at once, which the owner bounds.

use std::time::{Duration, Instant};

const NIL: u32 = u32::MAX;

/// Handle of a timer in a [`TimerWheel`], for [`TimerWheel::cancel`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimerId {
    slot: u32,
    generation: u32,
}

#[derive(Debug)]
struct Node<T> {
    value: Option<T>,
    deadline: u64,
    generation: u32,
    bucket_prev: u32,
    bucket_next: u32,
    age_prev: u32,
    age_next: u32,
}

/// A hashed timer wheel holding values of type `T`.
#[derive(Debug)]
pub struct TimerWheel<T> {
    origin: Instant,
    tick_nanos: u128,
    buckets: Vec<u32>,
    nodes: Vec<Node<T>>,
    free: u32,
    len: usize,
    /// Next tick `expire` has to look at.
    cursor: u64,
    oldest: u32,
    newest: u32,
}

impl<T> TimerWheel<T> {
    /// A wheel counting ticks of `tick` (at least 1 ms) from `origin`, with `buckets` buckets
    /// (at least 1). Make `buckets * tick` cover the usual deadline so most timers fire on their
    /// first lap.
    pub fn new(origin: Instant, tick: Duration, buckets: usize) -> Self {
        let tick_nanos = tick.as_nanos().max(1_000_000);
        TimerWheel {
            origin,
            tick_nanos,
            buckets: vec![NIL; buckets.clamp(1, 1 << 20)],
            nodes: Vec::new(),
            free: NIL,
            len: 0,
            cursor: 0,
            oldest: NIL,
            newest: NIL,
        }
    }

    /// Number of timers held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no timer is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The tick `t` falls in (rounded down); instants before the origin are tick 0.
    fn tick_floor(&self, t: Instant) -> u64 {
        let n = t.saturating_duration_since(self.origin).as_nanos() / self.tick_nanos;
        u64::try_from(n).unwrap_or(u64::MAX)
    }

    /// The first tick boundary at or after `t`.
    fn tick_ceil(&self, t: Instant) -> u64 {
        let nanos = t.saturating_duration_since(self.origin).as_nanos();
        let n = nanos.div_ceil(self.tick_nanos);
        u64::try_from(n).unwrap_or(u64::MAX)
    }

    fn bucket_of(&self, tick: u64) -> usize {
        // The bucket count fits in usize and the remainder is below it.
        (tick % self.buckets.len() as u64) as usize
    }

    fn node(&self, slot: u32) -> Option<&Node<T>> {
        self.nodes.get(slot as usize)
    }

    fn node_mut(&mut self, slot: u32) -> Option<&mut Node<T>> {
        self.nodes.get_mut(slot as usize)
    }

    /// Adds a timer firing `value` at `deadline`. Returns `None` only when the wheel already
    /// holds `u32::MAX - 1` timers.
    pub fn insert(&mut self, deadline: Instant, value: T) -> Option<TimerId> {
        let tick = self.tick_ceil(deadline).max(self.cursor);
        let slot = if self.free != NIL {
            let slot = self.free;
            let node = self.node_mut(slot)?;
            let next_free = node.bucket_next;
            node.value = Some(value);
            node.deadline = tick;
            self.free = next_free;
            slot
        } else {
            let slot = u32::try_from(self.nodes.len()).ok().filter(|s| *s != NIL)?;
            self.nodes.push(Node {
                value: Some(value),
                deadline: tick,
                generation: 0,
                bucket_prev: NIL,
                bucket_next: NIL,
                age_prev: NIL,
                age_next: NIL,
            });
            slot
        };
        let bucket = self.bucket_of(tick);
        let head = self.buckets.get(bucket).copied().unwrap_or(NIL);
        let newest = self.newest;
        let generation = {
            let node = self.node_mut(slot)?;
            node.bucket_prev = NIL;
            node.bucket_next = head;
            node.age_prev = newest;
            node.age_next = NIL;
            node.generation
        };
        if let Some(h) = self.node_mut(head) {
            h.bucket_prev = slot;
        }
        if let Some(b) = self.buckets.get_mut(bucket) {
            *b = slot;
        }
        match self.node_mut(newest) {
            Some(n) => n.age_next = slot,
            None => self.oldest = slot,
        }
        self.newest = slot;
        self.len += 1;
        Some(TimerId { slot, generation })
    }

    /// Removes the timer `id` and returns its value; `None` if it already fired or was cancelled.
    pub fn cancel(&mut self, id: TimerId) -> Option<T> {
        let live = self
            .node(id.slot)
            .is_some_and(|n| n.generation == id.generation && n.value.is_some());
        if !live {
            return None;
        }
        self.remove_slot(id.slot)
    }

    /// Unlinks a live slot from both lists, frees it and returns its value.
    fn remove_slot(&mut self, slot: u32) -> Option<T> {
        let (bp, bn, ap, an, deadline) = {
            let n = self.node(slot)?;
            (
                n.bucket_prev,
                n.bucket_next,
                n.age_prev,
                n.age_next,
                n.deadline,
            )
        };
        match self.node_mut(bp) {
            Some(p) => p.bucket_next = bn,
            None => {
                let b = self.bucket_of(deadline);
                if let Some(head) = self.buckets.get_mut(b) {
                    *head = bn;
                }
            }
        }
        if let Some(n) = self.node_mut(bn) {
            n.bucket_prev = bp;
        }
        match self.node_mut(ap) {
            Some(p) => p.age_next = an,
            None => self.oldest = an,
        }
        match self.node_mut(an) {
            Some(n) => n.age_prev = ap,
            None => self.newest = ap,
        }
        let free = self.free;
        let node = self.node_mut(slot)?;
        let value = node.value.take();
        node.generation = node.generation.wrapping_add(1);
        node.bucket_prev = NIL;
        node.bucket_next = free;
        node.age_prev = NIL;
        node.age_next = NIL;
        self.free = slot;
        self.len = self.len.saturating_sub(1);
        value
    }

    /// Removes and returns the oldest timer (by insertion), whatever its deadline.
    pub fn pop_oldest(&mut self) -> Option<T> {
        if self.oldest == NIL {
            return None;
        }
        self.remove_slot(self.oldest)
    }

    /// Fires every timer whose deadline is at or before `now`, calling `fire` with each value.
    /// Returns how many fired. Calls with a `now` earlier than a previous one fire nothing new.
    pub fn expire(&mut self, now: Instant, mut fire: impl FnMut(T)) -> usize {
        let now_tick = self.tick_floor(now);
        if now_tick < self.cursor || self.len == 0 {
            self.cursor = self.cursor.max(now_tick.saturating_add(1));
            return 0;
        }
        let span = now_tick.saturating_sub(self.cursor).saturating_add(1);
        let steps = span.min(self.buckets.len() as u64);
        let mut fired = 0;
        for i in 0..steps {
            let bucket = self.bucket_of(self.cursor.wrapping_add(i));
            let mut slot = self.buckets.get(bucket).copied().unwrap_or(NIL);
            while let Some(node) = self.node(slot) {
                let next = node.bucket_next;
                if node.deadline <= now_tick {
                    if let Some(v) = self.remove_slot(slot) {
                        fire(v);
                        fired += 1;
                    }
                }
                slot = next;
            }
        }
        self.cursor = now_tick.saturating_add(1);
        fired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn fires_at_deadline_never_before() {
        let t0 = Instant::now();
        let mut w = TimerWheel::new(t0, ms(10), 16);
        w.insert(t0 + ms(25), 'a');
        w.insert(t0 + ms(30), 'b');
        let mut out = Vec::new();
        assert_eq!(w.expire(t0 + ms(24), |v| out.push(v)), 0);
        // Tick 2 covers [20, 30): 'a' (deadline 25, ceil tick 3) must not fire yet.
        assert_eq!(w.expire(t0 + ms(29), |v| out.push(v)), 0);
        w.expire(t0 + ms(30), |v| out.push(v));
        out.sort();
        assert_eq!(out, vec!['a', 'b']);
        assert!(w.is_empty());
    }

    #[test]
    fn later_laps_stay_until_due() {
        let t0 = Instant::now();
        let mut w = TimerWheel::new(t0, ms(10), 4); // one lap = 40 ms
        w.insert(t0 + ms(10), 1);
        w.insert(t0 + ms(130), 2); // same bucket as tick 1 on a later lap... tick 13 -> bucket 1
        let mut out = Vec::new();
        w.expire(t0 + ms(15), |v| out.push(v));
        assert_eq!(out, vec![1]);
        w.expire(t0 + ms(125), |v| out.push(v));
        assert_eq!(out, vec![1]);
        w.expire(t0 + ms(131), |v| out.push(v));
        assert_eq!(out, vec![1, 2]);
    }

    #[test]
    fn big_jump_walks_one_lap() {
        let t0 = Instant::now();
        let mut w = TimerWheel::new(t0, ms(1), 8);
        for i in 0..100u64 {
            w.insert(t0 + ms(i * 3), i);
        }
        let mut out = Vec::new();
        w.expire(t0 + Duration::from_secs(3600), |v| out.push(v));
        out.sort();
        assert_eq!(out, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn cancel_is_exact_and_stale_ids_are_ignored() {
        let t0 = Instant::now();
        let mut w = TimerWheel::new(t0, ms(10), 8);
        let a = w.insert(t0 + ms(50), "a").unwrap();
        let b = w.insert(t0 + ms(50), "b").unwrap();
        assert_eq!(w.cancel(a), Some("a"));
        assert_eq!(w.cancel(a), None);
        // Slot of `a` is reused; the old id must not cancel the new timer.
        let c = w.insert(t0 + ms(60), "c").unwrap();
        assert_eq!(w.cancel(a), None);
        assert_eq!(w.len(), 2);
        let mut out = Vec::new();
        w.expire(t0 + ms(100), |v| out.push(v));
        out.sort();
        assert_eq!(out, vec!["b", "c"]);
        assert_eq!(w.cancel(b), None);
        assert_eq!(w.cancel(c), None);
    }

    #[test]
    fn pop_oldest_follows_insertion_order() {
        let t0 = Instant::now();
        let mut w = TimerWheel::new(t0, ms(10), 8);
        let ids: Vec<_> = (0..5).map(|i| w.insert(t0 + ms(500), i).unwrap()).collect();
        w.cancel(ids[0]);
        w.cancel(ids[3]);
        assert_eq!(w.pop_oldest(), Some(1));
        assert_eq!(w.pop_oldest(), Some(2));
        w.insert(t0 + ms(1), 9);
        assert_eq!(w.pop_oldest(), Some(4));
        assert_eq!(w.pop_oldest(), Some(9));
        assert_eq!(w.pop_oldest(), None);
        assert!(w.is_empty());
    }

    #[test]
    fn slab_is_reused() {
        let t0 = Instant::now();
        let mut w = TimerWheel::new(t0, ms(10), 8);
        for round in 0..100u64 {
            let ids: Vec<_> = (0..10)
                .map(|i| w.insert(t0 + ms(round + i), i).unwrap())
                .collect();
            for id in ids {
                assert!(w.cancel(id).is_some());
            }
        }
        assert_eq!(w.nodes.len(), 10);
        assert!(w.is_empty());
    }

    #[test]
    fn past_deadline_fires_on_next_expire() {
        let t0 = Instant::now();
        let mut w = TimerWheel::new(t0, ms(10), 8);
        let mut out = Vec::new();
        w.expire(t0 + ms(1000), |v: u8| out.push(v));
        w.insert(t0 + ms(5), 7u8); // already past: lands on the cursor tick
        w.expire(t0 + ms(1010), |v| out.push(v));
        assert_eq!(out, vec![7]);
    }
}
