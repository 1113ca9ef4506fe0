//! The index/data merge table and its expiry.
//!
//! Every data packet has two halves that reach the relay on different sockets: the **data half**
//! (where the data connection wrote the packet: tracefile, offset, size) and the **index half**
//! (SEND_INDEX on the control connection: sizes, timestamps, discarded events, CTF ids). An index
//! entry exists once both met. [`MergeTable`] holds the halves still waiting for their partner,
//! keyed by `(StreamId, NetSeq)`; pure code, no I/O, no tokio, time passed in as `now`.
//!
//! # API for the server
//!
//! ```text
//! let table = Arc::new(MergeTable::new(MergeConfig { deadline, tick, max_per_stream, max_total }, Instant::now()));
//! // data connection, after the payload is in the file:
//! let r = table.insert_data(stream, seq, DataHalf { file_index, offset, size }, now)?;
//! // control connection, SEND_INDEX with packet_size > 0 (beacons never enter the table):
//! let r = table.insert_index(stream, seq, IndexHalf { .. }, now)?;
//! // r.completed: Some(Completed { entry, file_index, .. }) -> Stream::on_completed (queued for the next commit)
//! // r.evicted:   Some(Expired) -> a half expired early by a cap: log it, record it (below)
//! // housekeeping tick (every `tick`), with a reused Vec:
//! table.expire(now, &mut expired);     // each Expired: log + Stream::record_loss(&e)
//! // close (session/close.rs): table.drop_data_only(stream, now) when no last seq is known,
//! //               table.highest_index_only(stream) = the last packet to wait for,
//! //               table.remove_stream(stream, now) once closed (returns what was pending).
//! // beacons: accept only when table.index_pending(stream) == 0.
//! ```
//!
//! Errors ([`MergeError`]): a second half of the same kind for a pending key is
//! [`MergeError::Duplicate`]; a half whose net_seq_num is not above the previous half of the
//! same kind is [`MergeError::OutOfOrder`]. Both are protocol errors: reply with an error and
//! drop the offending connection. A refused half changes nothing in the table.
//!
//! # Invariants
//!
//! - Each side of a stream arrives in net_seq_num order (one TCP connection, one sender thread
//!   per stream), and the table enforces it (`OutOfOrder`). Hence **entries of a stream complete
//!   in increasing net_seq_num order**: if `k2 < k1`, both halves of `k2` arrived before the
//!   matching halves of `k1`, so `k2` completed first (or expired). Entries can be appended to the
//!   index file in completion order.
//! - Every half inserted leaves exactly once: completed with its partner, or expired
//!   ([`Expired`], with an [`ExpiryReason`]). Nothing is dropped silently.
//! - Memory is bounded: at most `max_per_stream` halves per stream and `max_total` in the table.
//!   An insert past a cap first expires the stream's oldest half (lowest net_seq_num) or the
//!   table's oldest half (first inserted), returned in [`Inserted::evicted`]. A hostile sender
//!   sending SEND_INDEX for 0..∞ without data plateaus at the per-stream cap. The per-stream
//!   bookkeeping (counters, last numbers) lives until [`MergeTable::remove_stream`]; the server
//!   calls it when the stream closes.
//!
//! # Expiry
//!
//! Each pending half has a deadline (`now + deadline`) in a hashed [`wheel::TimerWheel`]: O(1)
//! insert and cancel, [`MergeTable::expire`] costs the ticks elapsed plus the halves fired. A
//! half never expires before its deadline and at most one tick (plus the caller's tick period)
//! after. An expired index half is a **lost packet** (described by the sender, its data never
//! came); an expired data half is an **unindexed packet** (in the data file, no entry points to
//! it). Both are counted per stream in [`LossCounters`] (`early_expired` counts those a cap
//! expired before their deadline).
//!
//! # Recording losses for readers (decision)
//!
//! Primary mechanism: a JSON sidecar per stream next to its index files,
//! `index/<stream name>.loss.json` (see `storage::loss`), rewritten at each commit
//! that changed the counters. Index files keep holding only complete entries, exactly like
//! lttng-relayd's, so babeltrace2 and every lttng-relayd-compatible reader (including live
//! viewers, which count entries) read the trace unchanged.
//!
//! The index files never carry lost-packet markers: a live viewer would be served such a marker
//! as a packet. [`IndexHalf::lost_marker`] builds one (offset `u64::MAX`) for tools that want it.

pub mod half;
pub mod table;
pub mod wheel;

pub use half::{
    Completed, DataHalf, Expired, ExpiryReason, Half, HalfKind, IndexHalf, IndexMismatch,
    LossCounters,
};
pub use table::{Inserted, MergeConfig, MergeError, MergeTable, RemovedStream};

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
