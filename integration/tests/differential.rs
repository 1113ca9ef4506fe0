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
    // differential.sh filters on the allocation size only: other traced programs on the machine
    // (other tests) leak into one session and not the other, depending on when each session
    // started. Compare the script's own workload (the process with the most events). Each
    // session also records an event with its own probe call: a thread that migrates between the
    // two calls is recorded on different CPUs, so `cpu_id` is left out.
    let work = tmp.path().join("work");
    let read = |f: &str| -> Result<Vec<String>> {
        Ok(std::fs::read_to_string(work.join(f))?
            .lines()
            .map(str::to_owned)
            .collect())
    };
    let (a, b) = (read("a.events")?, read("b.events")?);
    let vpid = |l: &str| {
        l.split("vpid = ")
            .nth(1)
            .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
            .map(str::to_owned)
    };
    let mut counts = std::collections::HashMap::new();
    for l in &a {
        if let Some(v) = vpid(l) {
            *counts.entry(v).or_insert(0usize) += 1;
        }
    }
    let workload = counts.into_iter().max_by_key(|(_, n)| *n).map(|(v, _)| v);
    let only = |v: &[String]| {
        let mut out: Vec<String> = v
            .iter()
            .filter(|l| vpid(l) == workload)
            .map(|l| match (l.find("{ cpu_id = "), l.find(" }, ")) {
                (Some(x), Some(y)) if y > x => format!("{}{}", &l[..x], &l[y + 4..]),
                _ => l.clone(),
            })
            .collect();
        out.sort();
        out
    };
    let (a, b) = (only(&a), only(&b));
    ensure!(
        a.len() > 1000 && a == b,
        "differential.sh {mode}: {text}{} (workload: {} vs {} events)",
        String::from_utf8_lossy(&out.stderr),
        a.len(),
        b.len()
    );
    eprintln!("differential.sh {mode}: the workload's events are the same; {text}");
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
