//! Edge → core forwarding: every session this relay receives (from stock LTTng senders or over
//! trelay://) is committed here as usual and shipped, once committed, to a core relay over
//! trelay:// with resume (`--forward trelay://CORE[:PORT]`, or `forward` in the settings).
//!
//! One job per session follows the session directory the way `trelay-consumer follow` follows
//! a local trace: it reads the index files, which the commit group appends to only after the data
//! they point to is durable, so only committed packets leave the edge; it sends them in batches,
//! asks the core to commit and waits for the acknowledgement at `committed`. A cut link or a core
//! restart only delays the job (it reconnects with backoff and resends what the core did not
//! acknowledge; the core drops what it already has). Live sessions stay live at the core: the job
//! sends beacons with the session's live timer.
//!
//! What the core has not acknowledged stays: the job's ledger entry
//! (`OUTPUT/.trelay-forward/<identity>.json`, [`ledger`]) pins the session directory against
//! retention until the core acknowledged the session's close, and survives a restart of the
//! edge, whose next run resumes the job with the same identity. The backlog (packet bytes read
//! and not acknowledged) is logged every [`run::BACKLOG_LOG`] while it is not zero and exposed
//! as `trelay_forward_backlog_bytes`.
//!
//! Rotations: files are known by inode, so a chunk a rotation moved is read on through the
//! descriptors held and the next chunk's files are new streams; at the core each chunk lies where
//! the edge first wrote it. Not forwarded: `lttng clear`.

pub mod ledger;
pub mod run;
mod settings;

pub use settings::ForwardSettings;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use trelay_consumer::native::follow::FollowProgress;

/// One session being forwarded.
#[derive(Debug)]
pub struct Job {
    /// The session directory, relative to the output root.
    pub rel_dir: PathBuf,
    /// Where the job stands.
    pub counters: Arc<FollowProgress>,
}

/// The forwarding jobs of a relay (empty when it does not forward).
#[derive(Debug, Default)]
pub struct Forwards {
    jobs: Mutex<HashMap<[u8; 16], Arc<Job>>>,
    forwarded: std::sync::atomic::AtomicU64,
    /// Sessions created and not picked up by the supervisor yet (held, so a session that ends
    /// at once is still forwarded).
    created: Mutex<Vec<Arc<crate::session::Session>>>,
    wake: tokio::sync::Notify,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Forwards {
    /// A session was created: the supervisor starts its job.
    pub fn created(&self, s: &Arc<crate::session::Session>) {
        lock(&self.created).push(s.clone());
        self.wake.notify_one();
    }

    /// Sessions created since the last call.
    pub(crate) fn take_created(&self) -> Vec<Arc<crate::session::Session>> {
        std::mem::take(&mut *lock(&self.created))
    }

    /// Resolves at the next [`Forwards::created`] (or at once if one came since the last wait).
    pub(crate) async fn wait_created(&self) {
        self.wake.notified().await;
    }

    /// Registers a job; it pins its directory until [`Forwards::finish`].
    pub fn start(&self, id: [u8; 16], job: Arc<Job>) {
        lock(&self.jobs).insert(id, job);
    }

    /// A job is done: the core acknowledged everything and the close.
    pub fn finish(&self, id: &[u8; 16]) {
        if let Some(j) = lock(&self.jobs).remove(id) {
            self.forwarded
                .fetch_add(j.counters.acked(), std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Whether `dir` (absolute, under `output`) holds or is inside a session being forwarded.
    pub fn pins(&self, output: &Path, dir: &Path) -> bool {
        lock(&self.jobs).values().any(|j| {
            let h = output.join(&j.rel_dir);
            h.starts_with(dir) || dir.starts_with(&h)
        })
    }

    /// Whether a job forwards the session directory `rel_dir`.
    pub fn has_dir(&self, rel_dir: &Path) -> bool {
        lock(&self.jobs).values().any(|j| j.rel_dir == rel_dir)
    }

    /// The job forwarding session directory `rel_dir`: connected, backlog and acknowledged bytes.
    pub fn job_for(&self, rel_dir: &Path) -> Option<(bool, u64, u64)> {
        lock(&self.jobs)
            .values()
            .find(|j| j.rel_dir == rel_dir)
            .map(|j| {
                (
                    j.counters.connected(),
                    j.counters.backlog(),
                    j.counters.acked(),
                )
            })
    }

    /// Sessions being forwarded.
    pub fn pending(&self) -> usize {
        lock(&self.jobs).len()
    }

    /// Jobs with a connection to the core up.
    pub fn connected(&self) -> usize {
        lock(&self.jobs)
            .values()
            .filter(|j| j.counters.connected())
            .count()
    }

    /// Packet bytes read from committed data and not acknowledged by the core yet.
    pub fn backlog(&self) -> u64 {
        lock(&self.jobs)
            .values()
            .map(|j| j.counters.backlog())
            .sum()
    }

    /// Packet bytes the core acknowledged as committed, over every job of this run.
    pub fn acked(&self) -> u64 {
        let running: u64 = lock(&self.jobs).values().map(|j| j.counters.acked()).sum();
        running + self.forwarded.load(std::sync::atomic::Ordering::Relaxed)
    }
}
