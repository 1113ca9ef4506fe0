//! Property tests: random interleavings of data and index halves, losses, time, expiry, caps and
//! stream removal. Every half leaves exactly once, completions per stream are in order, caps
//! hold after every step, nothing expires early or lingers past its deadline plus a tick, and
//! the counters match a model.

use super::*;
use proptest::prelude::*;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use trelay_proto::{NetSeq, StreamId};

#[derive(Debug, Clone)]
enum Op {
    /// Next data half of a stream (`lost`: the sender never sends it).
    Data(u64, bool),
    /// Next index half of a stream.
    Index(u64, bool),
    /// Resend the last half of a stream (must be refused).
    Again(u64, bool),
    Advance(u64),
    Expire,
    DropDataOnly(u64),
    Remove(u64),
}

fn op() -> impl Strategy<Value = Op> {
    let s = 1u64..4;
    prop_oneof![
        6 => (s.clone(), prop::bool::weighted(0.15)).prop_map(|(s, l)| Op::Data(s, l)),
        6 => (s.clone(), prop::bool::weighted(0.15)).prop_map(|(s, l)| Op::Index(s, l)),
        1 => (s.clone(), any::<bool>()).prop_map(|(s, d)| Op::Again(s, d)),
        2 => (0u64..4_000).prop_map(Op::Advance),
        2 => Just(Op::Expire),
        1 => s.clone().prop_map(Op::DropDataOnly),
        1 => s.prop_map(Op::Remove),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    D,
    I,
}

#[derive(Default)]
struct Model {
    next: HashMap<(u64, Kind), u64>,
    last_sent: HashMap<(u64, Kind), u64>,
    /// Pending halves: key -> insertion time.
    pending: HashMap<(u64, u64, Kind), Instant>,
    last_completed: HashMap<u64, u64>,
    counters: HashMap<u64, LossCounters>,
}

impl Model {
    fn resolve(&mut self, stream: u64, seq: u64, kind: Kind) -> Result<Instant, TestCaseError> {
        self.pending
            .remove(&(stream, seq, kind))
            .ok_or_else(|| TestCaseError::fail(format!("{stream}/{seq}/{kind:?} left twice")))
    }

    fn expired(
        &mut self,
        e: &Expired,
        cfg: &MergeConfig,
        now: Instant,
    ) -> Result<(), TestCaseError> {
        let kind = if e.is_lost() { Kind::I } else { Kind::D };
        let since = self.resolve(e.stream.0, e.seq.0, kind)?;
        prop_assert_eq!(e.waited, now.saturating_duration_since(since));
        if e.reason == ExpiryReason::Deadline {
            prop_assert!(e.waited >= cfg.deadline, "expired early: {:?}", e);
        }
        self.counters.entry(e.stream.0).or_default().record(e);
        Ok(())
    }
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let cfg = MergeConfig {
        deadline: Duration::from_secs(5),
        tick: Duration::from_millis(100),
        max_per_stream: 6,
        max_total: 14,
    };
    let t0 = Instant::now();
    let table = MergeTable::new(cfg, t0);
    let mut m = Model::default();
    let mut now = t0;
    let mut out = Vec::new();
    for op in ops {
        match op {
            Op::Data(s, lost) | Op::Index(s, lost) => {
                let kind = if matches!(op, Op::Data(..)) {
                    Kind::D
                } else {
                    Kind::I
                };
                let seq = *m.next.entry((s, kind)).or_default();
                m.next.insert((s, kind), seq + 1);
                if lost {
                    continue;
                }
                let r = match kind {
                    Kind::D => table.insert_data(
                        StreamId(s),
                        NetSeq(seq),
                        DataHalf {
                            file_index: 0,
                            offset: seq * 100,
                            size: 100,
                        },
                        now,
                    ),
                    Kind::I => table.insert_index(
                        StreamId(s),
                        NetSeq(seq),
                        IndexHalf {
                            packet_seq_num: seq,
                            packet_size: 800,
                            ..IndexHalf::default()
                        },
                        now,
                    ),
                }
                .map_err(|e| TestCaseError::fail(format!("refused in-order half: {e}")))?;
                m.last_sent.insert((s, kind), seq);
                if let Some(e) = &r.evicted {
                    prop_assert!(e.reason.is_early());
                    m.expired(e, &cfg, now)?;
                }
                match r.completed {
                    Some(c) => {
                        prop_assert_eq!(c.seq, NetSeq(seq));
                        prop_assert_eq!(c.entry.offset, seq * 100);
                        prop_assert_eq!(c.entry.packet_seq_num, seq);
                        let other = if kind == Kind::D { Kind::I } else { Kind::D };
                        m.resolve(s, seq, other)?;
                        if let Some(prev) = m.last_completed.insert(s, seq) {
                            prop_assert!(prev < seq, "completion {} after {}", seq, prev);
                        }
                    }
                    None => {
                        m.pending.insert((s, seq, kind), now);
                    }
                }
            }
            Op::Again(s, is_data) => {
                let kind = if is_data { Kind::D } else { Kind::I };
                if let Some(&seq) = m.last_sent.get(&(s, kind)) {
                    let r = if is_data {
                        table.insert_data(StreamId(s), NetSeq(seq), DataHalf::default(), now)
                    } else {
                        table.insert_index(StreamId(s), NetSeq(seq), IndexHalf::default(), now)
                    };
                    prop_assert!(r.is_err(), "resent half accepted");
                }
            }
            Op::Advance(ms) => now += Duration::from_millis(ms),
            Op::Expire => {
                out.clear();
                let n = table.expire(now, &mut out);
                prop_assert_eq!(n, out.len());
                for e in out.clone() {
                    prop_assert_eq!(e.reason, ExpiryReason::Deadline);
                    m.expired(&e, &cfg, now)?;
                }
                // Nothing due a whole tick ago is still pending.
                for (k, since) in &m.pending {
                    prop_assert!(
                        *since + cfg.deadline + cfg.tick > now,
                        "{:?} lingers past its deadline",
                        k
                    );
                }
            }
            Op::DropDataOnly(s) => {
                for e in table.drop_data_only(StreamId(s), now) {
                    prop_assert!(!e.is_lost());
                    m.expired(&e, &cfg, now)?;
                }
            }
            Op::Remove(s) => {
                let removed = table.remove_stream(StreamId(s), now);
                for e in &removed.expired {
                    m.expired(e, &cfg, now)?;
                }
                let model = m.counters.remove(&s).unwrap_or_default();
                prop_assert_eq!(removed.counters, model);
                prop_assert_eq!(table.counters(StreamId(s)), LossCounters::default());
                // The stream's order restarts with its bookkeeping.
                m.last_sent.retain(|(st, _), _| *st != s);
            }
        }
        // Caps and bookkeeping agree with the model after every step.
        prop_assert!(table.len() <= cfg.max_total);
        prop_assert_eq!(table.len(), m.pending.len());
        for s in 1..4u64 {
            let n = m.pending.keys().filter(|k| k.0 == s).count();
            prop_assert!(n <= cfg.max_per_stream);
            prop_assert_eq!(table.pending_len(StreamId(s)), n);
            let idx = m
                .pending
                .keys()
                .filter(|k| k.0 == s && k.2 == Kind::I)
                .count();
            prop_assert_eq!(table.index_pending(StreamId(s)), idx);
            prop_assert_eq!(
                table.counters(StreamId(s)),
                m.counters.get(&s).copied().unwrap_or_default()
            );
        }
    }
    // Every half still pending leaves with its stream.
    for s in 1..4u64 {
        for e in table.remove_stream(StreamId(s), now).expired {
            m.expired(&e, &cfg, now)?;
        }
    }
    prop_assert!(m.pending.is_empty());
    prop_assert!(table.is_empty());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_half_leaves_exactly_once(ops in prop::collection::vec(op(), 0..300)) {
        run(ops)?;
    }
}
