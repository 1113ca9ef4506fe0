//! The merge table: pending halves keyed by (stream, net_seq_num), each with a deadline in the
//! timer wheel, under per-stream and total caps.

use super::half::{
    Completed, DataHalf, Expired, ExpiryReason, Half, HalfKind, IndexHalf, LossCounters,
};
use super::wheel::{TimerId, TimerWheel};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use trelay_proto::{NetSeq, StreamId};

/// Limits of a [`MergeTable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MergeConfig {
    /// How long a half waits for its partner before it expires.
    pub deadline: Duration,
    /// Resolution of the timer wheel (at least 1 ms): expiry happens at most one tick late.
    pub tick: Duration,
    /// Most halves pending per stream (at least 1); past it the stream's oldest half expires.
    pub max_per_stream: usize,
    /// Most halves pending in the table (at least 1); past it the table's oldest half expires.
    pub max_total: usize,
}

impl Default for MergeConfig {
    fn default() -> Self {
        MergeConfig {
            deadline: Duration::from_secs(30),
            tick: Duration::from_millis(100),
            max_per_stream: 4096,
            max_total: 1 << 20,
        }
    }
}

/// Why a half was refused (the relay answers with an error and drops the connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    /// The same half of this packet is already pending.
    #[error("stream {stream}: duplicate {half} half for packet {seq}")]
    Duplicate {
        /// The stream.
        stream: StreamId,
        /// The packet.
        seq: NetSeq,
        /// Which half.
        half: HalfKind,
    },
    /// A half whose number is not above the previous half of the same kind (each side of a
    /// stream arrives in net_seq_num order on its own socket).
    #[error("stream {stream}: {half} half for packet {seq} arrived after packet {last}")]
    OutOfOrder {
        /// The stream.
        stream: StreamId,
        /// The packet.
        seq: NetSeq,
        /// The previous half of the same kind.
        last: NetSeq,
        /// Which half.
        half: HalfKind,
    },
}

/// What an insert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[must_use = "a completed entry must be queued and an evicted half accounted"]
pub struct Inserted {
    /// The entry this half completed (its partner was waiting), if any.
    pub completed: Option<Completed>,
    /// A half expired early to keep the table under its caps, if any (at most one per insert).
    pub evicted: Option<Expired>,
}

/// What [`MergeTable::remove_stream`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemovedStream {
    /// The halves that were still waiting (reason [`ExpiryReason::StreamRemoved`]).
    pub expired: Vec<Expired>,
    /// The stream's final counters (those halves included).
    pub counters: LossCounters,
}

#[derive(Debug)]
struct Slot {
    half: Half,
    timer: TimerId,
    since: Instant,
}

#[derive(Debug, Default)]
struct Book {
    pending: BTreeMap<u64, Slot>,
    last_data: Option<u64>,
    last_index: Option<u64>,
    index_only: usize,
    counters: LossCounters,
}

#[derive(Debug)]
struct Inner {
    books: HashMap<StreamId, Book>,
    wheel: TimerWheel<(StreamId, u64)>,
    total: usize,
}

/// The merge table (see the [module docs](super)). `Sync`: share it in an `Arc`.
#[derive(Debug)]
pub struct MergeTable {
    config: MergeConfig,
    inner: Mutex<Inner>,
    /// Halves of other streams that an insert evicted ([`MergeTable::defer`]), waiting for
    /// the periodic expiry to account them in their own stream's loss log.
    deferred: Mutex<Vec<Expired>>,
}

impl MergeTable {
    /// An empty table; `origin` is the wheel's time origin (any instant at or before the first
    /// `now` passed in).
    pub fn new(config: MergeConfig, origin: Instant) -> Self {
        let config = MergeConfig {
            tick: config.tick.max(Duration::from_millis(1)),
            max_per_stream: config.max_per_stream.max(1),
            max_total: config.max_total.clamp(1, (u32::MAX - 1) as usize),
            ..config
        };
        let laps = config.deadline.as_nanos() / config.tick.as_nanos().max(1);
        let buckets = usize::try_from(laps)
            .unwrap_or(usize::MAX)
            .clamp(1, 1 << 16)
            + 1;
        MergeTable {
            config,
            inner: Mutex::new(Inner {
                books: HashMap::new(),
                wheel: TimerWheel::new(origin, config.tick, buckets),
                total: 0,
            }),
            deferred: Mutex::new(Vec::new()),
        }
    }

    /// Keeps `e` (a half of another stream than the inserting one, pushed out by the
    /// relay-wide cap) until [`MergeTable::take_deferred`]; at most `max_total` wait, beyond
    /// that `e` is returned (it stays counted in its stream's counters).
    pub fn defer(&self, e: Expired) -> Result<(), Expired> {
        let mut d = self
            .deferred
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if d.len() >= self.config.max_total {
            return Err(e);
        }
        d.push(e);
        Ok(())
    }

    /// Moves the deferred halves into `out`.
    pub fn take_deferred(&self, out: &mut Vec<Expired>) {
        let mut d = self
            .deferred
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        out.append(&mut d);
    }

    /// The limits in force (after clamping).
    pub fn config(&self) -> MergeConfig {
        self.config
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records the data half of packet `seq` (written by the data connection).
    pub fn insert_data(
        &self,
        stream: StreamId,
        seq: NetSeq,
        half: DataHalf,
        now: Instant,
    ) -> Result<Inserted, MergeError> {
        self.insert(stream, seq, Half::Data(half), now)
    }

    /// Records the index half of packet `seq` (SEND_INDEX with `packet_size > 0`; live beacons
    /// never enter the table).
    pub fn insert_index(
        &self,
        stream: StreamId,
        seq: NetSeq,
        half: IndexHalf,
        now: Instant,
    ) -> Result<Inserted, MergeError> {
        self.insert(stream, seq, Half::Index(half), now)
    }

    fn insert(
        &self,
        stream: StreamId,
        seq: NetSeq,
        half: Half,
        now: Instant,
    ) -> Result<Inserted, MergeError> {
        let kind = half.kind();
        let mut guard = self.lock();
        let inner = &mut *guard;
        let book = inner.books.entry(stream).or_default();
        let last = match kind {
            HalfKind::Data => book.last_data,
            HalfKind::Index => book.last_index,
        };
        if let Some(slot) = book.pending.get(&seq.0) {
            if slot.half.kind() == kind {
                return Err(MergeError::Duplicate {
                    stream,
                    seq,
                    half: kind,
                });
            }
        }
        if let Some(last) = last.filter(|l| seq.0 <= *l) {
            return Err(MergeError::OutOfOrder {
                stream,
                seq,
                last: NetSeq(last),
                half: kind,
            });
        }
        match kind {
            HalfKind::Data => book.last_data = Some(seq.0),
            HalfKind::Index => book.last_index = Some(seq.0),
        }
        if let Some(partner) = book.pending.remove(&seq.0) {
            if partner.half.kind() == HalfKind::Index {
                book.index_only = book.index_only.saturating_sub(1);
            }
            inner.wheel.cancel(partner.timer);
            inner.total = inner.total.saturating_sub(1);
            let (data, index) = match (half, partner.half) {
                (Half::Data(d), Half::Index(i)) | (Half::Index(i), Half::Data(d)) => (d, i),
                // Same kinds were refused as duplicates above.
                _ => return Ok(Inserted::default()),
            };
            return Ok(Inserted {
                completed: Some(Completed {
                    stream,
                    seq,
                    file_index: data.file_index,
                    size: data.size,
                    entry: index.entry(data.offset),
                }),
                evicted: None,
            });
        }
        let evicted = self.make_room(inner, stream, now);
        let deadline = now.checked_add(self.config.deadline).unwrap_or(now);
        let timer = match inner.wheel.insert(deadline, (stream, seq.0)) {
            Some(t) => t,
            // Unreachable: max_total is clamped below the wheel's capacity.
            None => return Ok(Inserted::default()),
        };
        let book = inner.books.entry(stream).or_default();
        if kind == HalfKind::Index {
            book.index_only = book.index_only.saturating_add(1);
        }
        book.pending.insert(
            seq.0,
            Slot {
                half,
                timer,
                since: now,
            },
        );
        inner.total = inner.total.saturating_add(1);
        Ok(Inserted {
            completed: None,
            evicted,
        })
    }

    /// Makes room for one more half of `stream`: expires the stream's oldest (lowest net_seq_num)
    /// half if the stream is at its cap, else the table's oldest half if the table is at its cap.
    fn make_room(&self, inner: &mut Inner, stream: StreamId, now: Instant) -> Option<Expired> {
        let stream_oldest = inner
            .books
            .get(&stream)
            .filter(|b| b.pending.len() >= self.config.max_per_stream)
            .and_then(|b| b.pending.iter().next())
            .map(|(seq, slot)| (*seq, slot.timer));
        if let Some((seq, timer)) = stream_oldest {
            inner.wheel.cancel(timer);
            let Inner { books, total, .. } = inner;
            return take(books, total, stream, seq, ExpiryReason::StreamCap, now);
        }
        if inner.total >= self.config.max_total {
            let (victim, seq) = inner.wheel.pop_oldest()?;
            let Inner { books, total, .. } = inner;
            return take(books, total, victim, seq, ExpiryReason::TotalCap, now);
        }
        None
    }

    /// Expires every half whose deadline passed at `now`, appending them to `out` (reused by
    /// the caller), and accounts them in their stream's counters. Returns how many expired.
    pub fn expire(&self, now: Instant, out: &mut Vec<Expired>) -> usize {
        let mut guard = self.lock();
        let Inner {
            books,
            wheel,
            total,
        } = &mut *guard;
        wheel.expire(now, |(stream, seq)| {
            if let Some(e) = take(books, total, stream, seq, ExpiryReason::Deadline, now) {
                out.push(e);
            }
        })
    }

    /// Forgets a stream (closed): its pending halves are returned (reason
    /// [`ExpiryReason::StreamRemoved`], counted) with its final counters.
    pub fn remove_stream(&self, stream: StreamId, now: Instant) -> RemovedStream {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let Some(mut book) = inner.books.remove(&stream) else {
            return RemovedStream::default();
        };
        let mut expired = Vec::with_capacity(book.pending.len());
        for (seq, slot) in std::mem::take(&mut book.pending) {
            inner.wheel.cancel(slot.timer);
            inner.total = inner.total.saturating_sub(1);
            let e = Expired {
                stream,
                seq: NetSeq(seq),
                half: slot.half,
                reason: ExpiryReason::StreamRemoved,
                waited: now.saturating_duration_since(slot.since),
            };
            book.counters.record(&e);
            expired.push(e);
        }
        RemovedStream {
            expired,
            counters: book.counters,
        }
    }

    /// Drops every data-only half of `stream` (close without a last sequence number: the
    /// sender died between data and index, wire doc §4.6 step 2), counted as unindexed.
    pub fn drop_data_only(&self, stream: StreamId, now: Instant) -> Vec<Expired> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let keys: Vec<u64> = match inner.books.get(&stream) {
            Some(b) => b
                .pending
                .iter()
                .filter(|(_, s)| s.half.kind() == HalfKind::Data)
                .map(|(k, _)| *k)
                .collect(),
            None => return Vec::new(),
        };
        keys.into_iter()
            .filter_map(|seq| {
                let timer = inner.books.get(&stream)?.pending.get(&seq)?.timer;
                inner.wheel.cancel(timer);
                let Inner { books, total, .. } = &mut *inner;
                let reason = ExpiryReason::DataOnlyDropped;
                take(books, total, stream, seq, reason, now)
            })
            .collect()
    }

    /// The highest net_seq_num of `stream` whose index half waits for its data (§4.6 step 2:
    /// the last packet a close must wait for).
    pub fn highest_index_only(&self, stream: StreamId) -> Option<NetSeq> {
        let guard = self.lock();
        let book = guard.books.get(&stream)?;
        book.pending
            .iter()
            .rev()
            .find(|(_, s)| s.half.kind() == HalfKind::Index)
            .map(|(k, _)| NetSeq(*k))
    }

    /// Halves of `stream` pending (both kinds).
    pub fn pending_len(&self, stream: StreamId) -> usize {
        self.lock()
            .books
            .get(&stream)
            .map_or(0, |b| b.pending.len())
    }

    /// Index halves of `stream` waiting for their data (a live beacon is accepted only when 0).
    pub fn index_pending(&self, stream: StreamId) -> usize {
        self.lock().books.get(&stream).map_or(0, |b| b.index_only)
    }

    /// Halves pending in the whole table.
    pub fn len(&self) -> usize {
        self.lock().total
    }

    /// Whether no half is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Loss counters of `stream` so far (zero for an unknown stream).
    pub fn counters(&self, stream: StreamId) -> LossCounters {
        self.lock()
            .books
            .get(&stream)
            .map_or_else(LossCounters::default, |b| b.counters)
    }
}

/// Removes pending half `seq` of `stream` whose timer is already gone (fired, popped or
/// cancelled by the caller), accounts it (in its book and the table's `total`) and describes it.
fn take(
    books: &mut HashMap<StreamId, Book>,
    total: &mut usize,
    stream: StreamId,
    seq: u64,
    reason: ExpiryReason,
    now: Instant,
) -> Option<Expired> {
    let book = books.get_mut(&stream)?;
    let slot = book.pending.remove(&seq)?;
    *total = total.saturating_sub(1);
    if slot.half.kind() == HalfKind::Index {
        book.index_only = book.index_only.saturating_sub(1);
    }
    let e = Expired {
        stream,
        seq: NetSeq(seq),
        half: slot.half,
        reason,
        waited: now.saturating_duration_since(slot.since),
    };
    book.counters.record(&e);
    Some(e)
}
