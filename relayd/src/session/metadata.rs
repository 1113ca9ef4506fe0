//! Metadata streams: SEND_METADATA appends, RESET_METADATA truncates.
//!
//! Every append also feeds the stream's [`Units`](crate::storage::json_seq::Units), which tells
//! where the last whole unit ends: a commit publishes metadata up to there only (for CTF 1.8
//! every SEND_METADATA unit is whole; for CTF 2, whose non-live senders cut the JSON text
//! sequence anywhere, up to the end of the last whole record).

use super::stream::Stream;
use crate::storage::StorageError;
use std::sync::Arc;

/// Why a metadata operation was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetadataError {
    /// Not a metadata stream.
    #[error("stream {0} is not a metadata stream")]
    NotMetadata(trelay_proto::StreamId),
    /// The stream has no open file (closed, or rotated into no chunk).
    #[error("stream {0} has no open metadata file")]
    NoFile(trelay_proto::StreamId),
    /// Size overflow.
    #[error("stream {0}: metadata size overflow")]
    Overflow(trelay_proto::StreamId),
    /// Write failed (on a full disk the caller waits for space and tries again: nothing was
    /// recorded).
    #[error("stream {0}: {1}")]
    Storage(trelay_proto::StreamId, #[source] StorageError),
}

impl MetadataError {
    /// The storage failure behind this error, if that is what it is.
    pub fn storage(&self) -> Option<&StorageError> {
        match self {
            MetadataError::Storage(_, e) => Some(e),
            _ => None,
        }
    }
}

impl Stream {
    /// Appends `bytes` then `padding` zero bytes to the metadata file.
    pub fn append_metadata(&self, bytes: &[u8], padding: u64) -> Result<(), MetadataError> {
        let id = self.id;
        if !self.is_metadata {
            return Err(MetadataError::NotMetadata(id));
        }
        // Reserve under the lock, write without it (`writing` keeps the commit from counting
        // the range as whole meanwhile), record under it again.
        let (file, offset, total) = {
            let mut st = self.lock();
            let file = st.data.clone().ok_or(MetadataError::NoFile(id))?;
            let total = (bytes.len() as u64)
                .checked_add(padding)
                .ok_or(MetadataError::Overflow(id))?;
            let offset = st.size_current;
            offset
                .checked_add(total)
                .ok_or(MetadataError::Overflow(id))?;
            st.writing = true;
            (file, offset, total)
        };
        let written = file.write_padded(offset, bytes, padding);
        let mut st = self.lock();
        st.writing = false;
        written.map_err(|e| MetadataError::Storage(id, e))?;
        if !st.data.as_ref().is_some_and(|d| Arc::ptr_eq(d, &file)) || st.size_current != offset {
            // Only the control connection writes metadata, so nothing moved meanwhile.
            tracing::warn!(stream = %id, "metadata file changed during a write");
        }
        st.size_current = offset.saturating_add(total);
        st.metadata_received = st.metadata_received.saturating_add(total);
        st.metadata_units.unit(bytes, padding);
        if !st.unsynced.iter().any(|f| Arc::ptr_eq(f, &file)) {
            st.unsynced.push(file);
        }
        Ok(())
    }

    /// Truncates the metadata file (`lttng regenerate metadata`).
    pub fn reset_metadata(&self) -> Result<(), MetadataError> {
        let id = self.id;
        if !self.is_metadata {
            return Err(MetadataError::NotMetadata(id));
        }
        let file = self.lock().data.clone().ok_or(MetadataError::NoFile(id))?;
        file.set_len(0).map_err(|e| MetadataError::Storage(id, e))?;
        let mut st = self.lock();
        st.size_current = 0;
        st.metadata_received = 0;
        st.metadata_committed = 0;
        st.metadata_units = Default::default();
        Ok(())
    }
}
