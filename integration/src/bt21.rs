//! Reading traces with babeltrace2 2.1 of the LTTng 2.15 bundle ([`crate::lttng215`]), the
//! reader of CTF 2 traces (Debian's babeltrace2 2.0 reads only CTF 1.8), and telling CTF 2
//! metadata on disk.

use anyhow::{ensure, Result};
use std::path::{Path, PathBuf};

/// Runs babeltrace2 2.1 on `path` (in UTC) and returns its standard output.
pub fn babeltrace(path: &Path) -> Result<String> {
    crate::lttng215::bundle()?.read_trace(path)
}

/// The metadata files under `dir` (recursively), sorted.
pub fn metadata_files(dir: &Path) -> Vec<PathBuf> {
    crate::files_under(dir)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "metadata"))
        .map(|p| dir.join(p))
        .collect()
}

/// Checks that every metadata file under `dir` is CTF 2 (a JSON text sequence: first byte
/// 0x1E), and that there is at least one.
pub fn assert_ctf2(dir: &Path) -> Result<()> {
    let files = metadata_files(dir);
    ensure!(!files.is_empty(), "no metadata under {}", dir.display());
    for f in files {
        let first = std::fs::read(&f)?.first().copied();
        ensure!(
            first == Some(0x1E),
            "{} is not CTF 2 metadata (first byte {first:?})",
            f.display()
        );
    }
    Ok(())
}
