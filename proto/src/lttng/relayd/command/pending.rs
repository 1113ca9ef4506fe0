//! The data-pending family: DATA_PENDING, QUIESCENT_CONTROL, BEGIN_DATA_PENDING and
//! END_DATA_PENDING.
//!
//! - DATA_PENDING (16): `stream_id u64`, `last_net_seq_num u64`.
//! - QUIESCENT_CONTROL (8): `stream_id u64`.
//! - BEGIN_DATA_PENDING, END_DATA_PENDING (8): `session_id u64` (the relay session id).

use crate::id::{NetSeq, StreamId};

/// DATA_PENDING request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DataPending {
    /// Stream handle.
    pub stream_id: StreamId,
    /// Last data packet the sender sent on the stream.
    pub last_net_seq: NetSeq,
}
