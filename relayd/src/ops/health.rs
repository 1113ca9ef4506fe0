//! Readiness: the relay listens on its ports, can write its output folder, and no session waits
//! for disk space.

use crate::session::Registry;
use crate::storage::StorageFile;

/// Name of the probe file created and removed by each readiness check.
const PROBE: &str = ".trelayd-ready";

/// Why the relay is not ready, or `Ok` when it is.
pub fn ready(registry: &Registry, listening: bool) -> Result<(), String> {
    if !listening {
        return Err("not listening yet".into());
    }
    let path = registry.output.join(PROBE);
    let probe = StorageFile::create(&registry.fs, path.clone())
        .and_then(|f| f.write_all_at(b"1", 0))
        .and_then(|()| {
            registry.fs.remove_file(&path).map_err(|e| {
                crate::storage::StorageError::new(crate::storage::Op::Remove, &path, e)
            })
        });
    if let Err(e) = probe {
        return Err(format!("output folder not writable: {e}"));
    }
    let full = registry.disk_full();
    if let Some((s, _)) = full.first() {
        return Err(format!(
            "out of disk space: {} session(s) waiting, first {}",
            full.len(),
            s.rel_dir.display()
        ));
    }
    if registry
        .fs
        .free_space(&registry.output)
        .is_ok_and(|b| b == 0)
    {
        return Err("out of disk space under the output folder".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{GroupBy, Settings};
    use crate::storage::fault::{FaultFs, Rule};
    use crate::storage::{Op, RealFs};

    #[test]
    fn ready_only_when_listening_and_the_output_folder_takes_writes() {
        let dir = tempfile::tempdir().unwrap();
        let (fs, faults) = FaultFs::wrap(RealFs::shared());
        let registry = Registry::with_fs(
            Settings::default(),
            dir.path().to_path_buf(),
            GroupBy::Host,
            tokio_util::task::TaskTracker::new(),
            fs,
        );
        assert_eq!(ready(&registry, false), Err("not listening yet".into()));
        assert_eq!(ready(&registry, true), Ok(()));
        assert!(!dir.path().join(PROBE).exists(), "the probe is removed");
        faults.add(Rule::new(Op::Create, PROBE, libc::EROFS));
        let why = ready(&registry, true).unwrap_err();
        assert!(why.contains("not writable"), "{why}");
        faults.clear();
        faults.add(Rule::new(Op::Write, PROBE, libc::ENOSPC));
        assert!(ready(&registry, true).is_err());
    }
}
