//! What a trelay:// session needs to be resumed after the relay restarts: its creation
//! parameters and its streams, in `OUTPUT/.trelay-sessions/<identity>.json` (replaced
//! atomically whenever a stream is added, removed when the session closes). Crash recovery cuts
//! the session's files to what was committed; the next Open of the same identity reopens them
//! and the sender resends from there.

use crate::storage::{Fs, StorageError};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Directory of the manifests under the output root.
pub const DIR: &str = ".trelay-sessions";

/// One stream of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestStream {
    /// The sender's number for it.
    pub n: u32,
    /// Channel name.
    pub channel: String,
    /// Trace directory.
    pub path: String,
}

/// A resumable session on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Session name (validated when it was opened).
    pub name: String,
    /// Host directory name.
    pub hostname: String,
    /// Live timer in µs.
    pub live_timer_us: u32,
    /// Creation time, which names the session directory.
    pub creation_time: u64,
    /// The peer that owns it.
    pub peer: String,
    /// Its trace format (manifests written before formats were recorded are CTF 1.8).
    #[serde(default)]
    pub trace_format: trelay_proto::ctf::format::TraceFormat,
    /// Its streams.
    pub streams: Vec<ManifestStream>,
}

/// `uuid` as 32 lowercase hex digits (a manifest or ledger file name).
pub fn hex(uuid: &[u8; 16]) -> String {
    uuid.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where the manifest of `uuid` lives.
pub fn path(output: &Path, uuid: &[u8; 16]) -> PathBuf {
    output.join(DIR).join(format!("{}.json", hex(uuid)))
}

/// Writes (replaces) the manifest of `uuid`.
pub fn write(fs: &Fs, output: &Path, uuid: &[u8; 16], m: &Manifest) -> Result<(), StorageError> {
    crate::storage::json::write(fs, &path(output, uuid), m)
}

/// Reads the manifest of `uuid`, if there is a valid one.
pub fn read(fs: &Fs, output: &Path, uuid: &[u8; 16]) -> Option<Manifest> {
    crate::storage::json::read(fs, &path(output, uuid), "session manifest")
}

/// Removes the manifest of `uuid` (the session closed).
pub fn remove(fs: &Fs, output: &Path, uuid: &[u8; 16]) {
    crate::storage::json::remove(fs, &path(output, uuid), "session manifest");
}
