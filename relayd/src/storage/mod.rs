//! The storage layer: every file operation of the relay, behind one seam.
//!
//! `session/` decides *what* to write (which packet, at which offset, in which file, when to
//! commit); this module does it. Every call that touches the output folder goes through a
//! [`FileSystem`] ([`fs`]): [`RealFs`] in production, [`fault::FaultFs`] in tests, which fails the
//! operations its rules choose (ENOSPC, EIO, short writes, failed fdatasync or rename) while the
//! relay runs. Errors are [`StorageError`]s: the operation, the path, the bytes still needed, and
//! a kind ([`StorageErrorKind`]: no space, I/O, corruption) that callers decide on.
//!
//! | module | owns |
//! | --- | --- |
//! | [`fs`], [`fault`] | the seam, its real and fault-injecting implementations |
//! | [`file`](mod@file) | one open stream, index or metadata file: positional writes, splice, fdatasync |
//! | [`index`] | index files: header, appends that are cut back when they fail |
//! | [`layout`] | where things go, and the validation of every name a peer sends |
//! | [`tree`] | chunk directories: create, move (rotation), archive, delete; released chunks |
//! | [`lock`], [`output_lock`] | committed-frontier byte-range locks; one relay per output folder |
//! | [`loss`] | per-stream loss sidecars |
//! | [`json_seq`] | where the whole units of a metadata stream end (CTF 2: whole JSON records) |
//! | [`recovery`] | the open-trace markers and the cut of torn tails at start |
//! | [`space`] | disk-full episodes and their backoff |
//! | [`pool`] | the bound on open stream files (`max_open_files`): close idle ones, reopen on use |
//! | [`retention`] | quotas and maximum age for closed chunks and sessions |
//!
//! # On-disk design
//!
//! **Layout.** The output root holds one directory per session (`HOST/NAME-DATE` by default, see
//! [`layout`]), which holds the current trace chunk's trace directories (`ust/uid/UID/64-bit`,
//! `kernel`, ...) and, once the session rotated, `archives/START-END-ID/` per closed chunk. A trace
//! directory holds per stream a data file (`channel0_0`, or `channel0_0_N` with tracefile
//! rotation), `index/channel0_0.idx` (LTTng index v1.0/v1.1, only complete entries),
//! `index/channel0_0.loss.json` when packets were lost, and `metadata`. This is the layout
//! lttng-relayd writes; babeltrace2 reads it unchanged.
//!
//! **Commit order.** Payloads are written where their data half says (pwritev or splice) as
//! they arrive; nothing is visible yet. A commit ([`crate::session::commit`]) then, for a group of
//! streams: (1) fdatasyncs every data file written since the last commit, (2) appends the
//! completed index entries, (3) fdatasyncs the index files, (4) publishes the new frontier to
//! live viewers and moves the byte-range locks that keep local readers off uncommitted bytes. An
//! index entry therefore never reaches the disk before its packet; with `durability = "none"`
//! steps 1 and 3 are skipped. A failed fdatasync fails the session: its pages may be gone, so it
//! is not retried, and nothing past the last good commit is published. When an append fails
//! after others of the same commit succeeded, every touched index file is cut back to its length
//! before the commit and the entries return to their streams.
//!
//! **Recovery.** Each directory being written holds a `.trelay-open` marker until its chunk is
//! released. At start [`recovery::recover`] cuts, in every marked directory, index files to whole
//! entries whose packets lie inside their data, data files to the end of their last indexed
//! packet, packetized metadata to whole packets and CTF 2 metadata to whole JSON records; then
//! removes the marker. A session that
//! failed (a failed fdatasync, an I/O error) gets the same cut when its chunk is released, so
//! the bytes it received after its last commit never stay behind unindexed.
//!
//! **No I/O under a lock.** File creation for a tracefile switch, the move of a rotation's tail
//! into the next chunk, metadata writes and chunk renames run with the stream and session locks
//! released (the stream is claimed meanwhile, so no packet or close interleaves); archiving and
//! deleting released chunks run on the commit thread. `Drop` only queues a release.
//!
//! **Disk full.** A write that finds no space (ENOSPC or EDQUOT) keeps its bytes (in the
//! connection's receive buffer or splice pipe), starts the session's disk-full episode — one
//! error line naming the file and the bytes needed, listed by `Registry::disk_full` — and retries
//! with backoff (20 ms doubling to 1 s). Meanwhile the session's connections read nothing more,
//! so TCP pushes back on the sender; merge halves are not expired; a commit that finds no space
//! gives its entries back and is retried at the next commit interval. The first write that
//! succeeds ends the episode (logged once). An episode longer than `disk_full_timeout_s` (600 by
//! default, 0 for never) fails the session. Other sessions go on as long as their writes succeed.
//!
//! **Retention.** `[retention]` (`max_bytes` for the output folder, `max_session_bytes`,
//! `max_age_s`, checked every `interval_s`) deletes, oldest first: whole sessions that are
//! closed (no connection, no marker), and archived chunks of any session. It never deletes an
//! open session's current chunk, data a live viewer holds, or uncommitted data, nor (with
//! `[archive]`) a chunk or session not archived yet ([`crate::archive`]). Every deletion is
//! logged with its size; a quota that cannot be met with what may be deleted is logged too.

pub mod error;
pub mod fault;
pub mod file;
pub mod fs;
pub mod index;
pub mod json;
pub mod json_seq;
pub mod layout;
pub mod lock;
pub mod loss;
pub mod output_lock;
pub mod pool;
pub mod recovery;
pub mod retention;
pub mod space;
pub mod tree;

pub use error::{StorageError, StorageErrorKind};
pub use file::StorageFile;
pub use fs::{FileSystem, Fs, Op, RealFs};
pub use index::IndexFile;
