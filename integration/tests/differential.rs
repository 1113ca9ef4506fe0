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
    // The script runs `python3` with the libc wrapper preloaded: resolve it to the system
    // interpreter directly, not through a version-manager shim whose helper processes would all
    // be traced (and register with the session daemon) too.
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin)?;
    std::os::unix::fs::symlink(trelay_integration::lttng::python(), bin.join("python3"))?;
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .env("PATH", path)
        .arg(script)
        .arg(tmp.path().join("work"))
        .arg(relay_b)
        .arg(mode)
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    if out.status.success() && text.contains("same") {
        return Ok(());
    }
    // Each session records an event with its own probe call: a thread that migrates between
    // the two calls is recorded on different CPUs. Accept differences in `cpu_id` only.
    let work = tmp.path().join("work");
    let without_cpu = |f: &str| -> Result<Vec<String>> {
        let text = std::fs::read_to_string(work.join(f))?;
        let mut v: Vec<String> = text
            .lines()
            .map(|l| match (l.find("{ cpu_id = "), l.find(" }, ")) {
                (Some(a), Some(b)) if b > a => format!("{}{}", &l[..a], &l[b + 4..]),
                _ => l.to_owned(),
            })
            .collect();
        v.sort();
        Ok(v)
    };
    let (a, b) = (without_cpu("a.events")?, without_cpu("b.events")?);
    ensure!(
        a.len() > 1000 && a == b,
        "differential.sh {mode}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("differential.sh {mode}: same events, some recorded on other CPUs: {text}");
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
