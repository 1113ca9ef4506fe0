//! babeltrace2 2.1 from the LTTng 2.15 bundle (`../shared/peers/lttng-2.15` beside the
//! project), the reader of CTF 2 traces (Debian's babeltrace2 2.0 reads only CTF 1.8).

use anyhow::{bail, ensure, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The bundle's `babeltrace2` (2.1); an error naming the expected path when it is missing.
pub fn binary() -> Result<PathBuf> {
    let p =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/peers/lttng-2.15/bin/babeltrace2");
    ensure!(
        p.is_file(),
        "babeltrace2 2.1 of the LTTng 2.15 bundle missing at {}",
        p.display()
    );
    Ok(p)
}

/// Runs babeltrace2 2.1 on `path` (in UTC) and returns its standard output.
pub fn babeltrace(path: &Path) -> Result<String> {
    let out = Command::new(binary()?)
        .arg(path)
        .env("TZ", "UTC")
        .output()
        .context("babeltrace2 2.1 not runnable")?;
    if !out.status.success() {
        bail!(
            "babeltrace2 2.1 {} failed: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
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
