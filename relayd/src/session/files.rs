//! Which files a stream writes and where: the data file and index file names of each tracefile
//! inside the stream's chunk. The files themselves are [`crate::storage`]'s ([`StorageFile`],
//! [`IndexFile`]): created with mode 0660 (subject to the umask), replacing an existing file of
//! the same name (unlinked first, so a reader holding it keeps the old content).

use super::chunk::Chunk;
use crate::storage::layout::stream_file_name;
use crate::storage::pool::Location;
use crate::storage::{IndexFile, StorageError, StorageFile};
use std::path::Path;
use std::sync::Arc;
use trelay_proto::ctf::index::IndexVersion;

/// Creates data file number `file_no` of stream `name` in `chunk`/`path`, and holds its
/// committed-frontier lock from 0.
pub fn create_data(
    chunk: &Chunk,
    path: &str,
    name: &str,
    tracefile_size: u64,
    file_no: u64,
) -> Result<Arc<StorageFile>, StorageError> {
    let file_name = stream_file_name(name, tracefile_size, file_no, "");
    let fs = chunk.fs().clone();
    let location = Location::InChunk {
        root: chunk.root(),
        rel: Path::new(path).join(&file_name),
    };
    let file = chunk.with_trace_dir(path, |_| StorageFile::create_at(&fs, location))?;
    file.hold_from(0);
    Ok(Arc::new(file))
}

/// Creates index file number `file_no` of stream `name` (in `path/index/`) with its header,
/// paired with its data file.
pub fn create_index(
    data: Arc<StorageFile>,
    chunk: &Chunk,
    path: &str,
    name: &str,
    tracefile_size: u64,
    file_no: u64,
    version: IndexVersion,
) -> Result<Arc<IndexFile>, StorageError> {
    let file_name = stream_file_name(name, tracefile_size, file_no, ".idx");
    let dir = crate::storage::loss::index_dir(path);
    let fs = chunk.fs().clone();
    let location = Location::InChunk {
        root: chunk.root(),
        rel: Path::new(&dir).join(&file_name),
    };
    chunk.with_dir(&dir, |_| IndexFile::create(&fs, location, data, version))
}

/// Opens the existing data file of stream `name` (tracefile 0) in `chunk`/`path` to append to it
/// (a trelay:// session resumed after a restart).
pub fn reopen_data(
    chunk: &Chunk,
    path: &str,
    name: &str,
) -> Result<Arc<StorageFile>, StorageError> {
    let file_name = stream_file_name(name, 0, 0, "");
    let fs = chunk.fs().clone();
    let location = Location::InChunk {
        root: chunk.root(),
        rel: Path::new(path).join(&file_name),
    };
    let file = chunk.with_trace_dir(path, |_| StorageFile::reopen_at(&fs, location))?;
    Ok(Arc::new(file))
}

/// Opens the existing index file of stream `name` (tracefile 0); returns it and its entries.
pub fn reopen_index(
    data: Arc<StorageFile>,
    chunk: &Chunk,
    path: &str,
    name: &str,
    version: IndexVersion,
) -> Result<(Arc<IndexFile>, u64), StorageError> {
    let file_name = stream_file_name(name, 0, 0, ".idx");
    let dir = crate::storage::loss::index_dir(path);
    let fs = chunk.fs().clone();
    let location = Location::InChunk {
        root: chunk.root(),
        rel: Path::new(&dir).join(&file_name),
    };
    chunk.with_dir(&dir, |_| IndexFile::reopen(&fs, location, data, version))
}
