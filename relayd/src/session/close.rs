//! Closing a stream (CLOSE_STREAM, or the close of its session's connections).
//!
//! A close waits until the data file holds the last packet the sender says it sent; when the
//! sender gave no number (connection closed without CLOSE_STREAM), packets that have data but no
//! index are given up (the consumer died between the two) and the highest packet whose index
//! arrived becomes the last one. Once closed, the stream leaves the registry, its pending half
//! entries are dropped (and counted), its remaining complete entries go with the final commit, and
//! its chunk is released.

use super::stream::{seq_before, Stream};
use trelay_proto::NetSeq;

impl Stream {
    /// Requests the close with the sender's last packet number (`UNSET` when unknown).
    pub fn request_close(&self, last: NetSeq) {
        let mut st = self.lock();
        if !last.is_unset() {
            st.last_net_seq = last;
        }
        st.close_requested = true;
    }

    /// Closes the stream if its data is complete (or `aborted`); returns whether it is closed now
    /// (true only for the call that closed it).
    pub fn try_close(&self, aborted: bool) -> bool {
        let mut st = self.lock();
        if st.closed {
            return false;
        }
        st.close_requested = true;
        if st.writing && !aborted {
            return false;
        }
        if st.last_net_seq.is_unset() {
            let data_only: Vec<u64> = st
                .pending
                .iter()
                .filter(|(_, p)| p.data_only())
                .map(|(k, _)| *k)
                .collect();
            for k in &data_only {
                st.pending.remove(k);
            }
            st.unindexed_packets = st.unindexed_packets.saturating_add(data_only.len() as u64);
            if let Some((&k, _)) = st.pending.last_key_value() {
                st.last_net_seq = NetSeq(k);
            }
        }
        let last = st.last_net_seq;
        if !aborted
            && !last.is_unset()
            && (st.prev_data_seq.is_unset() || seq_before(st.prev_data_seq, last))
        {
            return false;
        }
        st.closed = true;
        let (mut lost, mut unindexed) = (0u64, 0u64);
        for p in std::mem::take(&mut st.pending).into_values() {
            if p.data.is_none() {
                lost += 1;
            } else if p.index.is_none() {
                unindexed += 1;
            }
        }
        st.lost_packets = st.lost_packets.saturating_add(lost);
        st.unindexed_packets = st.unindexed_packets.saturating_add(unindexed);
        if let Some(d) = st.data.take() {
            if !st.unsynced.iter().any(|f| std::sync::Arc::ptr_eq(f, &d)) {
                st.unsynced.push(d);
            }
        }
        st.index = None;
        st.rotation = None;
        st.switch_chunk(None);
        if st.lost_packets + st.unindexed_packets > 0 {
            tracing::warn!(
                stream = %self.id,
                name = %self.name,
                lost = st.lost_packets,
                unindexed = st.unindexed_packets,
                "stream closed with packets missing a half"
            );
        }
        tracing::debug!(stream = %self.id, name = %self.name, path = %self.path, "stream closed");
        true
    }
}
