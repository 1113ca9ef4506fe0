//! The archiver's loop: scan, upload and verify each closed unit, mark it, then (with
//! `keep_local = false`) delete it locally; failed units wait with exponential backoff.

use super::key::key;
use super::manifest::{self, Entry, Manifest, MANIFEST};
use super::scan::{self, Unit, UnitKind};
use super::upload::{upload, verify};
use super::{ArchiveError, ArchiveSettings, ArchiveUrl};
use crate::session::Registry;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use trelay_proto::status::SessionArchive;

/// The retry state of a unit that failed.
#[derive(Debug, Clone, Copy)]
struct Backoff {
    failures: u32,
    next: Instant,
}

/// The delay before retry number `failures` (1 for the first): `initial × 2^(failures-1)`,
/// at most `max`.
pub(crate) fn delay(initial: Duration, max: Duration, failures: u32) -> Duration {
    let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(31));
    initial.saturating_mul(factor).min(max)
}

/// Each session's archive state as the units found by a scan show it, by session directory
/// (`HOST/SESSION`, relative to the output root).
pub(crate) fn session_states(units: &[Unit]) -> HashMap<String, SessionArchive> {
    let mut out: HashMap<String, SessionArchive> = HashMap::new();
    for u in units {
        let Some(dir) = u.rel.get(..2).map(|r| r.join("/")) else {
            continue;
        };
        let e = out.entry(dir).or_insert(SessionArchive {
            chunks: 0,
            uploaded_chunks: 0,
            session_uploaded: false,
        });
        match u.kind {
            UnitKind::Chunk => {
                e.chunks += 1;
                e.uploaded_chunks += u64::from(u.archived);
            }
            UnitKind::Session => e.session_uploaded = u.archived,
        }
    }
    out
}

/// What one pass over the output folder did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Units archived in this pass.
    pub archived: usize,
    /// Units that failed in this pass.
    pub failed: usize,
    /// Units found not archived yet (before the pass).
    pub pending: usize,
}

/// Uploads closed units of the relay's output folder to the archive.
#[derive(Debug)]
pub struct Archiver {
    store: Arc<dyn ObjectStore>,
    url: ArchiveUrl,
    settings: ArchiveSettings,
    registry: Arc<Registry>,
    backoff: HashMap<PathBuf, Backoff>,
}

impl Archiver {
    /// An archiver of `registry`'s output folder into `store` (at `url`'s prefix).
    pub fn new(
        store: Arc<dyn ObjectStore>,
        url: ArchiveUrl,
        settings: ArchiveSettings,
        registry: Arc<Registry>,
    ) -> Archiver {
        Archiver {
            store,
            url,
            settings,
            registry,
            backoff: HashMap::new(),
        }
    }

    /// Runs passes every `interval_ms` on a thread of its own until `shutdown` fires (an upload
    /// in progress is abandoned; its unit is uploaded again by the next relay).
    pub fn spawn(
        self,
        shutdown: CancellationToken,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new()
            .name("trelay-archive".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!("archive: cannot start its runtime: {e}");
                        return;
                    }
                };
                rt.block_on(self.run(shutdown));
            })
    }

    async fn run(mut self, shutdown: CancellationToken) {
        tracing::info!(url = %self.settings.url, keep_local = self.settings.keep_local, "archive: started");
        while !shutdown.is_cancelled() {
            self.pass(&shutdown).await;
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(self.settings.interval()) => {}
            }
        }
    }

    /// One scan of the output folder: archives every closed unit whose retry time has come.
    pub async fn pass(&mut self, shutdown: &CancellationToken) -> PassReport {
        let registry = self.registry.clone();
        let held_fn = registry.holding();
        let units = scan::units(&registry.fs, &registry.output, &held_fn);
        let mut report = PassReport {
            pending: units.iter().filter(|u| !u.archived).count(),
            ..PassReport::default()
        };
        registry.status.archive_passed(session_states(&units));
        let t = &registry.telemetry;
        t.archive_pending.set(report.pending as f64);
        let now = Instant::now();
        self.backoff
            .retain(|dir, _| units.iter().any(|u| u.dir == *dir && !u.archived));
        for unit in &units {
            if shutdown.is_cancelled() {
                break;
            }
            if unit.archived {
                self.drop_local(unit);
                continue;
            }
            if unit.waits || self.backoff.get(&unit.dir).is_some_and(|b| now < b.next) {
                continue;
            }
            let started = Instant::now();
            let result = tokio::select! {
                _ = shutdown.cancelled() => Err(ArchiveError::Cancelled),
                r = self.archive(unit) => r,
            };
            match result {
                Ok(m) => {
                    report.archived += 1;
                    self.backoff.remove(&unit.dir);
                    t.archive_units.increment(1);
                    t.archive_pending.decrement(1.0);
                    tracing::info!(
                        dir = %unit.dir.display(),
                        kind = ?unit.kind,
                        files = m.files.len(),
                        bytes = m.bytes(),
                        secs = started.elapsed().as_secs_f64(),
                        "archive: uploaded and verified"
                    );
                    self.drop_local(unit);
                }
                Err(ArchiveError::Cancelled) => break,
                Err(e) => {
                    report.failed += 1;
                    t.archive_failures.increment(1);
                    let failures = self
                        .backoff
                        .get(&unit.dir)
                        .map_or(1, |b| b.failures.saturating_add(1));
                    let wait = delay(
                        Duration::from_millis(self.settings.retry_initial_ms),
                        Duration::from_millis(self.settings.retry_max_ms),
                        failures,
                    );
                    self.backoff.insert(
                        unit.dir.clone(),
                        Backoff {
                            failures,
                            next: Instant::now() + wait,
                        },
                    );
                    tracing::warn!(
                        dir = %unit.dir.display(),
                        failures,
                        retry_in_ms = wait.as_millis() as u64,
                        "archive: failed: {e}"
                    );
                }
            }
        }
        report
    }

    /// Deletes an archived unit's local directory when `keep_local = false`.
    fn drop_local(&self, unit: &Unit) {
        if self.settings.keep_local {
            return;
        }
        let r = &self.registry;
        if r.forwards.pins(&r.output, &unit.dir) {
            // The core does not have all of it yet: the local copy goes on a later pass.
            return;
        }
        match crate::storage::tree::remove_tree(&self.registry.fs, &unit.dir) {
            Ok(()) => tracing::info!(dir = %unit.dir.display(), "archive: local copy removed"),
            Err(e) => tracing::warn!("archive: cannot remove the local copy: {e}"),
        }
    }

    /// Uploads, verifies and marks one unit.
    async fn archive(&self, unit: &Unit) -> Result<Manifest, ArchiveError> {
        let fs = &self.registry.fs;
        let files = scan::files(fs, unit).map_err(|source| ArchiveError::List {
            path: unit.dir.display().to_string(),
            source,
        })?;
        let prefix = &self.url.prefix;
        let unit_parts = || unit.rel.iter().map(String::as_str);
        let mut m = Manifest::default();
        for f in files {
            let k = key(prefix, unit_parts().chain(f.rel.iter().map(String::as_str)))?;
            let e = upload(
                self.store.as_ref(),
                fs,
                &f.path,
                &k,
                super::key::key_path(&f.rel),
                self.settings.part_size,
            )
            .await?;
            verify(self.store.as_ref(), &k, &e).await?;
            self.registry
                .telemetry
                .archive_uploaded_bytes
                .increment(e.size);
            m.files.push(e);
        }
        let json = m.to_json();
        let k = key(prefix, unit_parts().chain([MANIFEST]))?;
        let e = Entry {
            path: MANIFEST.to_owned(),
            size: json.len() as u64,
            sha256: manifest::hex(&Sha256::digest(&json)),
        };
        self.store.put(&k, PutPayload::from(json)).await?;
        verify(self.store.as_ref(), &k, &e).await?;
        manifest::mark(fs, &unit.dir, &m)?;
        if unit.kind == UnitKind::Session {
            tracing::debug!(dir = %unit.dir.display(), "archive: session complete");
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let (i, m) = (Duration::from_millis(100), Duration::from_secs(1));
        let d: Vec<u128> = (1..=6).map(|n| delay(i, m, n).as_millis()).collect();
        assert_eq!(d, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(delay(i, m, u32::MAX), m);
    }

    #[test]
    fn session_states_count_chunks_per_session() {
        let unit = |rel: &[&str], kind, archived| Unit {
            dir: PathBuf::from(rel.join("/")),
            rel: rel.iter().map(|c| (*c).to_owned()).collect(),
            kind,
            archived,
            waits: false,
        };
        let units = [
            unit(&["h", "s", "archives", "c1"], UnitKind::Chunk, true),
            unit(&["h", "s", "archives", "c2"], UnitKind::Chunk, false),
            unit(&["h", "s"], UnitKind::Session, false),
            unit(&["h", "t"], UnitKind::Session, true),
        ];
        let m = session_states(&units);
        let s = &m["h/s"];
        assert_eq!(
            (s.chunks, s.uploaded_chunks, s.session_uploaded),
            (2, 1, false)
        );
        let t = &m["h/t"];
        assert_eq!(
            (t.chunks, t.uploaded_chunks, t.session_uploaded),
            (0, 0, true)
        );
    }

    #[test]
    fn a_pass_archives_closed_units_and_keeps_them_when_asked() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().to_path_buf();
        let chunk = out.join("host/s-1/archives/c1/ust");
        std::fs::create_dir_all(&chunk).unwrap();
        std::fs::write(chunk.join("metadata"), b"meta").unwrap();
        std::fs::write(out.join("host/s-1/archives/c1/ust/chan_0"), vec![7u8; 1000]).unwrap();
        let registry = Arc::new(Registry::new(
            crate::config::Settings::default(),
            out.clone(),
            crate::config::GroupBy::Host,
            tokio_util::task::TaskTracker::new(),
        ));
        let store = Arc::new(object_store::memory::InMemory::new());
        let settings = ArchiveSettings {
            url: "s3://b/pre".into(),
            keep_local: false,
            ..ArchiveSettings::default()
        };
        let url = ArchiveUrl::parse(&settings.url).unwrap();
        let mut a = Archiver::new(store.clone(), url, settings, registry);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let token = CancellationToken::new();
        let r = rt.block_on(a.pass(&token));
        // The chunk, then (its chunks archived) the session in the same pass? No: the session
        // was listed as waiting when the scan ran; it goes in the next pass.
        assert_eq!((r.archived, r.failed, r.pending), (1, 0, 2), "{r:?}");
        assert!(
            !out.join("host/s-1/archives/c1").exists(),
            "keep_local = false"
        );
        let r = rt.block_on(a.pass(&token));
        assert_eq!((r.archived, r.pending), (1, 1), "{r:?}");
        assert!(!out.join("host/s-1").exists());
        let got = rt.block_on(async {
            store
                .get(&"pre/host/s-1/archives/c1/ust/chan_0".into())
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap()
        });
        assert_eq!(got.len(), 1000);
        let m: Manifest = rt.block_on(async {
            let b = store
                .get(&"pre/host/s-1/archives/c1/.trelay-archive.json".into())
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            serde_json::from_slice(&b).unwrap()
        });
        assert_eq!(m.files.len(), 2);
        assert_eq!(m.bytes(), 1004);
    }

    #[test]
    fn marked_units_are_not_uploaded_again_and_failures_wait() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().to_path_buf();
        std::fs::create_dir_all(out.join("h/s/archives/c1/ust")).unwrap();
        std::fs::write(out.join("h/s/archives/c1/ust/metadata"), b"meta").unwrap();
        let registry = Arc::new(Registry::new(
            crate::config::Settings::default(),
            out.clone(),
            crate::config::GroupBy::Host,
            tokio_util::task::TaskTracker::new(),
        ));
        let settings = ArchiveSettings {
            url: "s3://b".into(),
            retry_initial_ms: 60_000,
            retry_max_ms: 60_000,
            ..ArchiveSettings::default()
        };
        let url = ArchiveUrl::parse(&settings.url).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let token = CancellationToken::new();
        let store = Arc::new(object_store::memory::InMemory::new());
        let mut a = Archiver::new(store, url.clone(), settings.clone(), registry.clone());
        rt.block_on(a.pass(&token));
        rt.block_on(a.pass(&token));
        // A new archiver (a restarted relay) finds both units marked: nothing to do.
        let mut b = Archiver::new(
            Arc::new(object_store::memory::InMemory::new()),
            url.clone(),
            settings.clone(),
            registry.clone(),
        );
        let r = rt.block_on(b.pass(&token));
        assert_eq!((r.archived, r.failed, r.pending), (0, 0, 0));
        assert!(
            out.join("h/s/archives/c1").exists(),
            "keep_local defaults to true"
        );
        // A unit that fails waits for its retry time instead of being tried every pass.
        std::fs::create_dir_all(out.join("h/t/archives/c1")).unwrap();
        std::fs::write(out.join("h/t/archives/c1/x"), b"x").unwrap();
        // (a server that is not there: a port nothing listens on)
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let down = ArchiveSettings {
            endpoint: Some(format!("http://127.0.0.1:{port}")),
            allow_http: Some(true),
            region: Some("us-east-1".into()),
            ..settings
        };
        let (store, url) = down.store().unwrap();
        let mut c = Archiver::new(Arc::new(store), url, down, registry);
        assert_eq!(rt.block_on(c.pass(&token)).failed, 1);
        assert_eq!(rt.block_on(c.pass(&token)).failed, 0, "backing off");
        assert!(!crate::archive::is_archived(
            &crate::storage::RealFs::shared(),
            &out.join("h/t/archives/c1")
        ));
    }
}
