//! Waiting for disk space on behalf of one session's connection.
//!
//! A write that finds the disk full keeps its bytes where they are and waits here: the session's
//! episode is recorded (logged once, see [`crate::storage::space`]), the write is retried with
//! backoff, and the session is failed once the episode outlasts `disk_full_timeout_s`. Between
//! messages, connections of a session that is waiting for space do not read their socket at all
//! ([`Room::hold`]), so TCP pushes back on the sender; whichever write or commit first succeeds
//! ends the episode for all of them.

use crate::session::{Registry, Session};
use crate::storage::StorageError;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How often a held connection looks whether space returned.
const HOLD_POLL: Duration = Duration::from_millis(100);

/// Why a connection stopped waiting for space.
#[derive(Debug, thiserror::Error)]
pub enum GaveUp {
    /// The session failed meanwhile (another connection, the commit, or the timeout).
    #[error("session failed: {0}")]
    Failed(String),
    /// The disk stayed full longer than `disk_full_timeout_s` (or the relay stopped meanwhile);
    /// the session was failed.
    #[error("gave up waiting for disk space after {0}s: {1}")]
    Timeout(u64, #[source] StorageError),
}

/// One connection's view of its session's disk-full state.
pub struct Room<'a> {
    /// Where the timeout comes from.
    pub registry: &'a Registry,
    /// The session written for.
    pub session: &'a Arc<Session>,
    /// The relay's shutdown: a write still waiting for space then gives up.
    pub shutdown: &'a CancellationToken,
}

impl Room<'_> {
    /// A write found the disk full: records it, fails the session after the timeout, else sleeps
    /// before retry number `attempt`.
    pub async fn wait(&self, full: StorageError, attempt: u32) -> Result<(), GaveUp> {
        let s = self.session;
        let lasted = s.disk_full.hit(&s.params.name, &full, Instant::now());
        if let Some(why) = s.lock().failed.clone() {
            return Err(GaveUp::Failed(why));
        }
        if lasted > self.registry.settings.disk_full_timeout() || self.shutdown.is_cancelled() {
            let e = GaveUp::Timeout(lasted.as_secs(), full);
            s.fail(e.to_string());
            return Err(e);
        }
        tokio::select! {
            _ = tokio::time::sleep(crate::storage::space::backoff(attempt)) => {}
            _ = self.shutdown.cancelled() => {}
        }
        Ok(())
    }

    /// Runs `op` until it succeeds, waiting while the disk is full; other errors are returned.
    pub async fn write<E>(
        &self,
        mut op: impl FnMut() -> Result<(), E>,
        no_space: impl Fn(E) -> Result<StorageError, E>,
    ) -> Result<Result<(), E>, GaveUp> {
        let mut attempt = 0;
        loop {
            match op().map_err(&no_space) {
                Ok(()) => {
                    self.cleared();
                    return Ok(Ok(()));
                }
                Err(Ok(full)) => {
                    self.wait(full, attempt).await?;
                    attempt = attempt.saturating_add(1);
                }
                Err(Err(e)) => return Ok(Err(e)),
            }
        }
    }

    /// A write succeeded: ends the session's episode, if one is ongoing.
    pub fn cleared(&self) {
        let s = self.session;
        if s.disk_full.is_full() {
            s.disk_full.cleared(&s.params.name);
        }
    }

    /// Between messages: returns once the session is not waiting for disk space (at once in the
    /// usual case), so that meanwhile nothing more is read from the socket.
    pub async fn hold(&self) -> Result<(), GaveUp> {
        let s = self.session;
        while s.disk_full.is_full() && !self.shutdown.is_cancelled() {
            if let Some(why) = s.lock().failed.clone() {
                return Err(GaveUp::Failed(why));
            }
            tokio::select! {
                _ = tokio::time::sleep(HOLD_POLL) => {}
                _ = self.shutdown.cancelled() => {}
            }
        }
        Ok(())
    }
}
