//! The storage layer: every file operation of the relay, behind one seam.
//!
//! (The on-disk design is documented at the end of this module's docs, see below.)

pub mod error;
pub mod fault;
pub mod file;
pub mod fs;
pub mod index;
pub mod layout;
pub mod lock;
pub mod loss;
pub mod output_lock;
pub mod recovery;
pub mod retention;
pub mod space;
pub mod tree;

pub use error::{StorageError, StorageErrorKind};
pub use file::StorageFile;
pub use fs::{FileSystem, Fs, Op, RealFs};
pub use index::IndexFile;
