//! Closing a stream (CLOSE_STREAM, or the close of its session's connections).
//!
//! A close waits until the data file holds the last packet the sender says it sent; when the
//! sender gave no number (connection closed without CLOSE_STREAM), packets that have data but no
//! index are given up (the consumer died between the two) and the highest packet whose index
//! arrived becomes the last one. Once closed, the stream leaves the registry, its pending half
//! entries are dropped (and counted), its remaining complete entries go with the final commit, and
//! its chunk is released.

use super::stream::{seq_before, Stream};
use std::time::Instant;
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
            for e in self.merge.drop_data_only(self.id, Instant::now()) {
                super::ingest::log_expired(&e);
                self.session.commit.losses.record(&e);
            }
            if let Some(k) = self.merge.highest_index_only(self.id) {
                st.last_net_seq = k;
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
        let removed = self.merge.remove_stream(self.id, Instant::now());
        for e in &removed.expired {
            super::ingest::log_expired(e);
            self.session.commit.losses.record(e);
        }
        // Entries held behind a rotation that will not finish now.
        let held = std::mem::take(&mut st.held).len() as u64;
        st.lost_packets = st
            .lost_packets
            .saturating_add(removed.counters.lost_packets);
        st.unindexed_packets = st
            .unindexed_packets
            .saturating_add(removed.counters.unindexed_packets)
            .saturating_add(held);
        st.files.clear();
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
