//! Archive to object storage: closed trace chunks and closed sessions go to an S3-compatible
//! store (`[archive]`, [`settings`]), are verified there, and only then count as archived.
//!
//! The archiver runs on a thread of its own with its own small runtime ([`Archiver::spawn`]):
//! it never runs on the ingest path and takes no stream or session lock. Every `interval_ms` it
//! scans the output folder for closed units ([`scan`]: chunks moved to `archives/` by a rotation,
//! sessions no connection holds), and for each unit not archived yet:
//!
//! 1. uploads every file (streamed in bounded pieces, [`upload`]) under
//!    `PREFIX/<unit directory relative to the output root>/<file>` — the local layout, e.g.
//!    `PREFIX/HOST/SESSION-DATE/archives/CHUNK/ust/uid/1000/64-bit/chan_0` ([`key`]);
//! 2. verifies each object: its size (HEAD) and its SHA-256 read back (GET) against the one
//!    computed while uploading;
//! 3. writes the unit's manifest object (every file with size and SHA-256), verified the same
//!    way, then the local marker `.trelay-archived` (synced) — the unit is archived
//!    ([`manifest`]);
//! 4. with `keep_local = false`, deletes the unit's local directory.
//!
//! A unit that fails is retried with exponential backoff (`retry_initial_ms` doubling up to
//! `retry_max_ms`); a restart uploads unmarked units again from the start and skips marked
//! ones. Retention never deletes a unit that is configured for archive and not archived yet
//! ([`crate::storage::retention::apply_guarded`]). Each archived unit is logged once; the
//! metrics are `trelay_archive_uploaded_bytes_total`, `trelay_archive_failures_total`,
//! `trelay_archive_units_total` and `trelay_archive_pending_units`.

pub mod key;
pub mod manifest;
pub mod scan;
pub mod settings;
pub mod upload;
mod worker;

pub use manifest::{is_archived, Manifest, MANIFEST, MARKER};
pub use settings::{ArchiveSettings, ArchiveUrl};
pub use worker::{Archiver, PassReport};

/// Why archiving (a unit, or the archive's setup) failed.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The archive URL is unusable.
    #[error("bad archive url {0}")]
    Url(String),
    /// The object store refused or failed.
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    /// A local file could not be read or written.
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    /// A local directory could not be listed.
    #[error("cannot list {path}: {source}")]
    List {
        /// The directory.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// A name cannot be part of an object key.
    #[error("bad name: {0}")]
    Key(#[from] key::KeyError),
    /// An object does not hold what was uploaded.
    #[error("verification of {key} failed: {what}")]
    Verify {
        /// The object.
        key: String,
        /// What differs.
        what: String,
    },
    /// The relay is shutting down.
    #[error("shutting down")]
    Cancelled,
}
