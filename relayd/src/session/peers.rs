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

    /// Whether `peer` may open one more session; the refusal (counted) says why not.
    pub fn admit_session(&self, peer: &str) -> Result<(), String> {
        let max = self.gate.limits.max_sessions_per_peer;
        if self.sessions_of_peer(peer) < max {
            return Ok(());
        }
        self.gate.refusals.count("control", "max_sessions_per_peer");
        Err(format!(
            "peer {peer} has {max} sessions open (max_sessions_per_peer)"
        ))
    }

    /// Whether `peer` may open one more stream; the refusal (counted) says why not.
    pub fn admit_stream(&self, peer: &str) -> Result<(), String> {
        let max = self.gate.limits.max_streams_per_peer;
        if self.streams_of_peer(peer) < max {
            return Ok(());
        }
        self.gate.refusals.count("control", "max_streams_per_peer");
        Err(format!(
            "peer {peer} has {max} streams open (max_streams_per_peer)"
        ))
    }
}
