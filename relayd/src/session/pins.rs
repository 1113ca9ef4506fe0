//! What must stay on disk because it may still be resumed or is being forwarded, as recorded on
//! disk so it survives restarts: a trelay:// session whose manifest (`.trelay-sessions/`) is
//! left from a previous run may be resumed until `resume_timeout_s` after this relay started
//! (its sender could not come back while the relay was down), and a session with a forwarding
//! record (`.trelay-forward/`) is pinned until the core acknowledged it. Crash recovery keeps
//! the open-trace markers of pinned sessions ([`crate::storage::recovery::recover_keeping`]),
//! and retention and the archive leave them alone ([`super::Registry::holding`]). A dormant
//! session whose sender does not come back in time is given up ([`Pins::expire`]): its
//! manifest goes and its markers are removed, so retention may delete it like any closed trace.

use super::manifest::{self, Manifest};
use crate::config::GroupBy;
use crate::storage::layout;
use crate::storage::Fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A session of a previous run that its sender may still resume.
#[derive(Debug, Clone)]
pub struct Dormant {
    /// The sender's identity.
    pub uuid: [u8; 16],
    /// Its session directory (absolute).
    pub dir: PathBuf,
    /// When it is given up.
    pub until: Instant,
}

/// The dormant sessions (see the [module docs](self)).
#[derive(Debug, Default)]
pub struct Pins {
    dormant: Mutex<Vec<Dormant>>,
}

fn parse_hex(name: &str) -> Option<[u8; 16]> {
    let hex = name.strip_suffix(".json")?;
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The session directory a manifest names (relative to the output root).
fn rel_dir(m: &Manifest, group: GroupBy) -> PathBuf {
    layout::session_dir(
        group,
        &layout::SessionNames {
            name: &m.name,
            hostname: &m.hostname,
            base_path: "",
            creation_time: m.creation_time,
            name_has_time: false,
        },
    )
}

impl Pins {
    /// The sessions left resumable by a previous run under `output`, pinned for `timeout`
    /// from now.
    pub fn load(fs: &Fs, output: &Path, group: GroupBy, timeout: Duration) -> Pins {
        let until = Instant::now() + timeout;
        let names = fs
            .read_dir(&output.join(manifest::DIR))
            .map(|v| {
                v.into_iter()
                    .filter(|e| !e.meta.is_dir)
                    .map(|e| e.name)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        let dormant: Vec<Dormant> = names
            .iter()
            .filter_map(|n| parse_hex(n))
            .filter_map(|uuid| {
                let m = manifest::read(fs, output, &uuid)?;
                Some(Dormant {
                    uuid,
                    dir: output.join(rel_dir(&m, group)),
                    until,
                })
            })
            .collect();
        for d in &dormant {
            tracing::info!(
                dir = %d.dir.display(),
                timeout_s = timeout.as_secs(),
                "trelay:// session of a previous run kept for its sender to resume"
            );
        }
        Pins {
            dormant: Mutex::new(dormant),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Dormant>> {
        self.dormant
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether `dir` holds or is inside a dormant session.
    pub fn pins(&self, dir: &Path) -> bool {
        self.lock()
            .iter()
            .any(|d| d.dir.starts_with(dir) || dir.starts_with(&d.dir))
    }

    /// The session of `uuid` was resumed: the live session pins it from now on.
    pub fn resumed(&self, uuid: &[u8; 16]) {
        self.lock().retain(|d| d.uuid != *uuid);
    }

    /// Whether a dormant session is past its deadline at `now`.
    pub fn due(&self, now: Instant) -> bool {
        self.lock().iter().any(|d| d.until <= now)
    }

    /// Gives up the dormant sessions past their deadline at `now`: their manifest and their
    /// open-trace markers are removed. Returns how many.
    pub fn expire(&self, fs: &Fs, output: &Path, now: Instant) -> usize {
        let gone: Vec<Dormant> = {
            let mut d = self.lock();
            let (gone, keep) = d.drain(..).partition(|x| x.until <= now);
            *d = keep;
            gone
        };
        for d in &gone {
            tracing::warn!(
                dir = %d.dir.display(),
                "trelay:// sender did not come back within resume_timeout_s after the restart: session closed"
            );
            manifest::remove(fs, output, &d.uuid);
            for m in crate::storage::recovery::marked_dirs(fs, &d.dir) {
                crate::storage::recovery::unmark(fs, &m);
            }
        }
        gone.len()
    }
}

/// The session directories (absolute) with a forwarding record under `output`.
pub fn forwarded_dirs(fs: &Fs, output: &Path) -> Vec<PathBuf> {
    crate::forward::ledger::read_all(fs, output)
        .into_iter()
        .map(|e| output.join(e.rel_dir))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_names_parse_back_to_their_identity() {
        let uuid = [0xa5u8; 16];
        let name = format!("{}.json", manifest::hex(&uuid));
        assert_eq!(parse_hex(&name), Some(uuid));
        assert_eq!(parse_hex("zz.json"), None);
        assert_eq!(parse_hex(&manifest::hex(&uuid)), None);
    }
}
