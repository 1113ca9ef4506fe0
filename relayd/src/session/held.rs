//! What the relay still holds on disk: the session directories of session objects still alive
//! (listed, or read by a viewer) and of sessions being forwarded, which retention and the
//! archive leave alone.

use super::{lock, Registry};
use std::path::{Path, PathBuf};
use std::time::Instant;

impl Registry {
    /// The directories of the session objects still alive (listed, or held by a viewer).
    pub fn held_dirs(&self) -> Vec<PathBuf> {
        self.alive.retain(|_, w| w.strong_count() > 0);
        self.alive
            .iter()
            .filter_map(|w| w.upgrade().map(|s| s.abs_dir.clone()))
            .collect()
    }

    /// Whether a directory holds or is inside a session that must stay: alive (listed, read
    /// by a viewer, or waiting for its trelay:// sender), left resumable by a previous run
    /// until its `resume_timeout_s` ([`super::pins`]), or being forwarded (a job running, or a
    /// forwarding record on disk). The one predicate retention and the archive consult; the
    /// alive sessions and the records are read once, when it is made.
    pub fn holding(&self) -> impl Fn(&Path) -> bool + '_ {
        let mut held = self.held_dirs();
        held.extend(super::pins::forwarded_dirs(&self.fs, &self.output));
        move |dir: &Path| {
            held.iter()
                .any(|h| h.starts_with(dir) || dir.starts_with(h))
                || self.pins.pins(dir)
                || self.forwards.pins(&self.output, dir)
        }
    }

    /// Applies the retention policy now (blocking I/O): closed traces no session object holds
    /// any more go, oldest first, until the quotas are met.
    pub fn apply_retention(&self) -> crate::storage::retention::Report {
        *lock(&self.retention_last) = Some(Instant::now());
        let held_fn = self.holding();
        // What is configured for archive stays until it is archived.
        let archiving = self.settings.archive.is_some();
        let keep = |dir: &Path| archiving && !crate::archive::is_archived(&self.fs, dir);
        let report = crate::storage::retention::apply_guarded(
            &self.fs,
            &self.output,
            &self.settings.retention,
            std::time::SystemTime::now(),
            &held_fn,
            &keep,
        );
        if self.settings.retention.enabled() {
            self.status.retention_measured(report.used);
        }
        report
    }
}
