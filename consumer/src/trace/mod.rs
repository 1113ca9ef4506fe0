//! Reading local LTTng trace directories: where the traces and streams are ([`walk`](mod@walk)), the
//! packets of each stream with their index entries ([`packets`]) and the metadata ([`metadata`]).

pub mod metadata;
pub mod packets;
pub mod walk;

use std::io;
use std::path::{Path, PathBuf};

pub use metadata::{MetadataChunk, MetadataSource};
pub use packets::PacketSource;
pub use walk::{walk, StreamFile, TraceDir};

/// Why a trace directory cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// A file or directory could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The given path is not a directory.
    #[error("{0}: not a directory")]
    NotADirectory(PathBuf),
    /// A directory or file name that cannot be sent to a relay.
    #[error("{0}: name not usable on a relay (empty, hidden, too long or with '/')")]
    BadName(String),
    /// An index file contradicts its data file or itself.
    #[error("{path}: {reason}")]
    Index {
        /// The index file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A packet header is not a valid LTTng packet header.
    #[error("{path} at offset {offset}: {reason}")]
    Packet {
        /// The data or metadata file.
        path: PathBuf,
        /// Offset of the packet.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
}

impl TraceError {
    /// An I/O error on `path`.
    pub fn io(path: impl AsRef<Path>, source: io::Error) -> Self {
        TraceError::Io {
            path: path.as_ref().to_owned(),
            source,
        }
    }
}
