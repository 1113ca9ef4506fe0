//! Retention: keeping the output folder under its quotas by deleting the oldest closed traces.
//!
//! ```toml
//! [retention]
//! max_bytes = 0           # quota for the whole output folder (bytes on disk, 0: none)
//! max_session_bytes = 0   # quota per session directory (0: none)
//! max_age_s = 0           # closed traces older than this go (seconds since their last write, 0: never)
//! interval_s = 60         # how often the policy runs
//! ```
//!
//! What may be deleted, oldest first (by the newest modification time of anything inside):
//! - **closed trace chunks**: the directories under a session's `archives/` (a chunk is moved
//!   there only once released, i.e. complete and committed);
//! - **closed sessions**: session directories (`HOST/SESSION` or `SESSION/HOST-DATE`, the two
//!   levels below the output root) that hold no open-trace marker anywhere
//!   ([`super::recovery::MARKER`]: something in them is still being written or was never
//!   committed) and that no session of the running relay holds (a live viewer still reading a
//!   closed session keeps it alive).
//!
//! The age limit goes first, then the per-session quota (only that session's closed chunks), then
//! the folder quota (across sessions). With `[archive]` set, a chunk or session not archived yet
//! is never deleted ([`apply_guarded`]). Data that is open, uncommitted or read is never deleted, so
//! a quota smaller than what is open is not met: that is logged, once per run. Every deletion is
//! logged with its size and age.

use super::fs::{Fs, Meta};
use super::recovery::MARKER;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Directories deeper than this under a unit are not measured.
const MAX_DEPTH: usize = 32;

/// The `[retention]` settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionSettings {
    /// Quota of the whole output folder, bytes on disk (0: none).
    pub max_bytes: u64,
    /// Quota of each session directory (0: none).
    pub max_session_bytes: u64,
    /// Maximum age of closed traces, seconds since their last write (0: none).
    pub max_age_s: u64,
    /// Period of the policy (seconds).
    pub interval_s: u64,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        RetentionSettings {
            max_bytes: 0,
            max_session_bytes: 0,
            max_age_s: 0,
            interval_s: 60,
        }
    }
}

impl RetentionSettings {
    /// Whether any limit is set.
    pub fn enabled(&self) -> bool {
        self.max_bytes > 0 || self.max_session_bytes > 0 || self.max_age_s > 0
    }

    /// The policy period.
    pub fn interval(&self) -> Duration {
        Duration::from_secs(self.interval_s.max(1))
    }
}

/// Kinds of deletable unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitKind {
    /// A closed chunk under `archives/`.
    Chunk,
    /// A whole closed session directory.
    Session,
}

/// Something retention may delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// Its directory.
    pub path: PathBuf,
    /// The session directory it is in (itself for a session).
    pub session: PathBuf,
    /// What it is.
    pub kind: UnitKind,
    /// Bytes on disk.
    pub bytes: u64,
    /// Newest modification inside.
    pub newest: SystemTime,
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Units deleted, in order.
    pub deleted: Vec<PathBuf>,
    /// Bytes freed.
    pub freed: u64,
    /// Bytes under the output folder after the run.
    pub used: u64,
    /// A quota could not be met with what may be deleted.
    pub unmet: bool,
}

/// Size on disk and newest modification of a tree.
fn measure(fs: &Fs, dir: &Path, meta: Meta) -> (u64, SystemTime, bool) {
    let mut bytes = meta.allocated;
    let mut newest = meta.modified;
    let mut marked = false;
    let mut stack = vec![(dir.to_path_buf(), 0usize)];
    while let Some((d, depth)) = stack.pop() {
        let Ok(entries) = fs.read_dir(&d) else {
            continue;
        };
        for e in entries {
            bytes = bytes.saturating_add(e.meta.allocated);
            newest = newest.max(e.meta.modified);
            if e.name == MARKER {
                marked = true;
            }
            if e.meta.is_dir && depth < MAX_DEPTH {
                stack.push((d.join(&e.name), depth + 1));
            }
        }
    }
    (bytes, newest, marked)
}

fn subdirs(fs: &Fs, dir: &Path) -> Vec<(PathBuf, Meta)> {
    let mut v: Vec<(PathBuf, Meta)> = fs
        .read_dir(dir)
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.meta.is_dir && !e.name.starts_with('.'))
        .map(|e| (dir.join(&e.name), e.meta))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// A session directory as retention sees it.
struct SessionDir {
    path: PathBuf,
    bytes: u64,
    newest: SystemTime,
    deletable: bool,
    chunks: Vec<Unit>,
}

fn scan(fs: &Fs, root: &Path, held: &dyn Fn(&Path) -> bool) -> (Vec<SessionDir>, u64) {
    let mut sessions = Vec::new();
    let mut loose = 0u64;
    for (top, top_meta) in subdirs(fs, root) {
        loose = loose.saturating_add(top_meta.allocated);
        for (dir, meta) in subdirs(fs, &top) {
            let (bytes, newest, marked) = measure(fs, &dir, meta);
            let mut chunks = Vec::new();
            let archives = dir.join("archives");
            for (c, cmeta) in subdirs(fs, &archives) {
                let (cb, cn, cmarked) = measure(fs, &c, cmeta);
                if !cmarked {
                    chunks.push(Unit {
                        path: c,
                        session: dir.clone(),
                        kind: UnitKind::Chunk,
                        bytes: cb,
                        newest: cn,
                    });
                }
            }
            sessions.push(SessionDir {
                deletable: !marked && !held(&dir),
                path: dir,
                bytes,
                newest,
                chunks,
            });
        }
    }
    (sessions, loose)
}

fn age(now: SystemTime, t: SystemTime) -> Duration {
    now.duration_since(t).unwrap_or_default()
}

fn remove(fs: &Fs, u: &Unit, now: SystemTime, why: &str, report: &mut Report) -> bool {
    match super::tree::remove_tree(fs, &u.path) {
        Ok(()) => {
            tracing::warn!(
                path = %u.path.display(),
                kind = ?u.kind,
                bytes = u.bytes,
                age_s = age(now, u.newest).as_secs(),
                "retention: deleted ({why})"
            );
            report.deleted.push(u.path.clone());
            report.freed = report.freed.saturating_add(u.bytes);
            true
        }
        Err(e) => {
            tracing::error!("retention: cannot delete: {e}");
            false
        }
    }
}

/// Applies `policy` to the output folder `root` at time `now`; `held(dir)` tells whether a
/// session directory belongs to a session the relay still holds (open, or read by a viewer).
pub fn apply(
    fs: &Fs,
    root: &Path,
    policy: &RetentionSettings,
    now: SystemTime,
    held: &dyn Fn(&Path) -> bool,
) -> Report {
    apply_guarded(fs, root, policy, now, held, &|_| false)
}

/// [`apply`], never deleting a chunk or session directory for which `keep(dir)` holds (one
/// configured for archive and not archived yet, [`crate::archive`]).
pub fn apply_guarded(
    fs: &Fs,
    root: &Path,
    policy: &RetentionSettings,
    now: SystemTime,
    held: &dyn Fn(&Path) -> bool,
    keep: &dyn Fn(&Path) -> bool,
) -> Report {
    let report = Report::default();
    if !policy.enabled() {
        return report;
    }
    let (mut sessions, loose) = scan(fs, root, held);
    // Every deletable unit: whole closed sessions, and closed chunks of sessions still held.
    let mut units: Vec<Unit> = Vec::new();
    for s in &mut sessions {
        if s.deletable {
            units.push(Unit {
                path: s.path.clone(),
                session: s.path.clone(),
                kind: UnitKind::Session,
                bytes: s.bytes,
                newest: s.newest,
            });
        } else {
            units.append(&mut s.chunks);
        }
    }
    units.retain(|u| !keep(&u.path));
    units.sort_by(|a, b| a.newest.cmp(&b.newest).then_with(|| a.path.cmp(&b.path)));
    let total = sessions
        .iter()
        .fold(loose, |t, s| t.saturating_add(s.bytes));
    let mut run = Run {
        gone: vec![false; units.len()],
        units,
        session_bytes: sessions.iter().map(|s| (s.path.clone(), s.bytes)).collect(),
        total,
        report,
    };
    // 1. age
    if policy.max_age_s > 0 {
        let max = Duration::from_secs(policy.max_age_s);
        for i in 0..run.units.len() {
            if run.units.get(i).is_some_and(|u| age(now, u.newest) > max) {
                run.take(fs, i, "older than max_age_s", now);
            }
        }
    }
    // 2. per-session quota: that session's closed chunks, oldest first
    if policy.max_session_bytes > 0 {
        for s in &sessions {
            for i in 0..run.units.len() {
                if run.session_used(&s.path) <= policy.max_session_bytes {
                    break;
                }
                let mine = run
                    .units
                    .get(i)
                    .is_some_and(|u| u.session == s.path && u.kind == UnitKind::Chunk);
                if mine {
                    run.take(fs, i, "session over max_session_bytes", now);
                }
            }
        }
    }
    // 3. folder quota: oldest first, across sessions
    if policy.max_bytes > 0 {
        for i in 0..run.units.len() {
            if run.total <= policy.max_bytes {
                break;
            }
            run.take(fs, i, "output folder over max_bytes", now);
        }
    }
    let unmet_session = policy.max_session_bytes > 0
        && run
            .session_bytes
            .iter()
            .any(|(_, b)| *b > policy.max_session_bytes);
    let unmet_total = policy.max_bytes > 0 && run.total > policy.max_bytes;
    let mut report = run.report;
    report.unmet = unmet_session || unmet_total;
    if report.unmet {
        tracing::warn!(
            used = run.total,
            max_bytes = policy.max_bytes,
            max_session_bytes = policy.max_session_bytes,
            "retention: quota not met; what is left is open, uncommitted or read by a viewer"
        );
    }
    report.used = run.total;
    report
}

/// The state of one run of the policy.
struct Run {
    units: Vec<Unit>,
    gone: Vec<bool>,
    session_bytes: Vec<(PathBuf, u64)>,
    total: u64,
    report: Report,
}

impl Run {
    fn session_used(&self, session: &Path) -> u64 {
        self.session_bytes
            .iter()
            .find(|(p, _)| p == session)
            .map_or(0, |(_, b)| *b)
    }

    /// Deletes unit `i` unless it is gone already.
    fn take(&mut self, fs: &Fs, i: usize, why: &str, now: SystemTime) {
        if self.gone.get(i).copied().unwrap_or(true) {
            return;
        }
        let Some(u) = self.units.get(i) else { return };
        if remove(fs, u, now, why, &mut self.report) {
            if let Some(g) = self.gone.get_mut(i) {
                *g = true;
            }
            self.total = self.total.saturating_sub(u.bytes);
            if let Some(sb) = self.session_bytes.iter_mut().find(|(p, _)| *p == u.session) {
                sb.1 = sb.1.saturating_sub(u.bytes);
            }
        }
    }
}

#[cfg(test)]
mod tests;
