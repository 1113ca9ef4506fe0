//! What each peer holds open, for the per-peer limits ([`crate::identity::Limits`]).

use super::Registry;

impl Registry {
    /// Sessions open for `peer` ([`super::SessionParams::peer`]).
    pub fn sessions_of_peer(&self, peer: &str) -> usize {
        self.sessions
            .iter()
            .filter(|s| s.params.peer == peer)
            .count()
    }

    /// Streams open in the sessions of `peer`.
    pub fn streams_of_peer(&self, peer: &str) -> usize {
        self.streams
            .iter()
            .filter(|s| s.session.params.peer == peer)
            .count()
    }
}
