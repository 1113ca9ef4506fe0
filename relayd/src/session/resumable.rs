//! Sessions of trelay:// senders, found again by the identity the sender chose (a UUID) when it
//! reconnects, with its streams under the sender's own numbers. The connection currently serving
//! a session holds its `owner` generation; a newer connection takes over and the older one stops
//! at its next message.

use super::{Session, Stream};
use dashmap::DashMap;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// One resumable session.
#[derive(Debug)]
pub struct Resumable {
    /// The relay session.
    pub session: Arc<Session>,
    /// Its streams by the sender's numbers.
    pub streams: Mutex<HashMap<u32, Arc<Stream>>>,
    owner: AtomicU64,
}

impl Resumable {
    /// Makes the caller the session's serving connection; returns its generation.
    pub fn take_over(&self) -> u64 {
        self.owner.fetch_add(1, Ordering::AcqRel).saturating_add(1)
    }

    /// Whether generation `g` still serves the session.
    pub fn owned_by(&self, g: u64) -> bool {
        self.owner.load(Ordering::Acquire) == g
    }

    /// The stream the sender numbers `n`.
    pub fn stream(&self, n: u32) -> Option<Arc<Stream>> {
        super::chunk::lock(&self.streams).get(&n).cloned()
    }
}

/// Resumable sessions by sender identity.
#[derive(Debug, Default)]
pub struct Resumables {
    by_uuid: DashMap<[u8; 16], Arc<Resumable>>,
}

impl Resumables {
    /// The session of `uuid`, if it is still open.
    pub fn get(&self, uuid: &[u8; 16]) -> Option<Arc<Resumable>> {
        self.by_uuid.get(uuid).map(|r| r.clone())
    }

    /// Registers a new session under `uuid`.
    pub fn insert(&self, uuid: [u8; 16], session: Arc<Session>) -> Arc<Resumable> {
        let r = Arc::new(Resumable {
            session,
            streams: Mutex::new(HashMap::new()),
            owner: AtomicU64::new(0),
        });
        self.by_uuid.insert(uuid, r.clone());
        r
    }

    /// Forgets `uuid` (the session closed or was given up).
    pub fn remove(&self, uuid: &[u8; 16]) {
        self.by_uuid.remove(uuid);
    }
}
