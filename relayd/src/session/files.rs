//! Which files a stream writes and where: the data file and index file names of each tracefile
//! inside the stream's chunk. The files themselves are [`crate::storage`]'s ([`StorageFile`],
//! [`IndexFile`]): created with mode 0660 (subject to the umask), replacing an existing file of
//! the same name (unlinked first, so a reader holding it keeps the old content).

use super::chunk::Chunk;
use crate::storage::layout::stream_file_name;
use crate::storage::{IndexFile, StorageError, StorageFile};
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
    let file = chunk.with_trace_dir(path, |dir| StorageFile::create(&fs, dir.join(&file_name)))?;
    crate::storage::lock::hold_from(file.file(), 0);
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
    chunk.with_dir(&dir, |d| {
        IndexFile::create(&fs, d.join(&file_name), data, version)
    })
}
