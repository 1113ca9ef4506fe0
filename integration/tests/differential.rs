//! The team's `differential.sh` (one workload traced into lttng-relayd and into trelayd at once,
//! then compared with babeltrace2), live and non-live. It uses fixed ports (5342-5344 for
//! lttng-relayd, 6342-6344 for trelayd), so it runs under the sessiond lock.

use anyhow::{ensure, Result};
use std::process::Command;
use trelay_integration::relay::trelayd_bin;

fn differential(mode: &str) -> Result<()> {
    let _lock = trelay_integration::lttng::sessiond()?;
    let script = trelay_integration::shared_dir()?.join("tools/differential.sh");
    let tmp = tempfile::tempdir()?;
    let relay_b = format!(
        "{} -v -o {{out}} -C tcp://127.0.0.1:6342 -D tcp://127.0.0.1:6343 -L tcp://127.0.0.1:6344",
        trelayd_bin().display()
    );
    let out = Command::new("bash")
        .arg(script)
        .arg(tmp.path().join("work"))
        .arg(relay_b)
        .arg(mode)
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success() && text.contains("same"),
        "differential.sh {mode}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

#[test]
fn differential_live() -> Result<()> {
    differential("live")
}

#[test]
fn differential_non_live() -> Result<()> {
    differential("nolive")
}
