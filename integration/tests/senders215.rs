//! One trelayd, three senders at once: Debian's LTTng 2.13 session daemon, and a 2.15 one with a
//! CTF 1.8 session and a CTF 2 session, all live. babeltrace2 2.1 lists the three sessions and
//! follows the CTF 2 and the 2.13 ones live; Debian's babeltrace2 2.0 lists the two CTF 1.8
//! sessions only (it cannot read CTF 2, and a relay hides CTF 2 sessions from viewers below
//! protocol 2.15) and follows both live; afterwards babeltrace2 2.1 reads each session's output, the CTF 1.8
//! and the CTF 2 recordings of one workload giving the same events, and babeltrace2 2.0 reads
//! the CTF 1.8 ones. Serialized with the other session-daemon tests (`lttng::sessiond`).

use anyhow::{ensure, Context, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;
use trelay_integration::live_viewer::{hostname, LiveBabeltrace};
use trelay_integration::lttng::{lttng, sessiond, SessionGuard, Workload};
use trelay_integration::lttng215::Sessiond215;
use trelay_integration::relay::Trelayd;
use trelay_integration::scenario::{wait_listed, WORKLOAD};
use trelay_integration::session::large_allocs;

/// `lttng create`, one channel, all libc events of `work` of at least 100000 bytes, start.
fn session(
    lt: &dyn Fn(&[&str]) -> Result<String>,
    name: &str,
    url: &str,
    extra: &[&str],
    work: &Workload,
) -> Result<()> {
    let mut create = vec!["create", name, url, "--live=200000"];
    create.extend_from_slice(extra);
    lt(&create)?;
    lt(&[
        "enable-channel",
        "-u",
        "-s",
        name,
        "chan",
        "--subbuf-size=1M",
    ])?;
    lt(&[
        "enable-event",
        "-u",
        "-s",
        name,
        "-c",
        "chan",
        "lttng_ust_libc:*",
        "--filter",
        &large_allocs(work),
    ])?;
    lt(&["start", name])?;
    Ok(())
}

/// The one session folder of session `name` under `root` (`HOST/NAME-DATE`).
fn trace_of(root: &Path, name: &str) -> Result<PathBuf> {
    let host = root.join(hostname());
    let dirs: Vec<PathBuf> = std::fs::read_dir(&host)
        .with_context(|| host.display().to_string())?
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("{name}-"))
        })
        .map(|e| e.path())
        .collect();
    ensure!(dirs.len() == 1, "session {name}: {dirs:?}");
    Ok(dirs[0].clone())
}

/// What `bt` lists on the live port.
fn listing(bt: &Path, port: u16) -> Result<String> {
    let out = std::process::Command::new(bt)
        .args([
            "--input-format=lttng-live",
            &format!("net://127.0.0.1:{port}"),
        ])
        .output()?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn debian_213_and_215_ctf18_and_ctf2_senders_on_one_relay() -> Result<()> {
    let lock = sessiond()?;
    let tmp = tempfile::Builder::new().prefix("trelay-it-").tempdir()?;
    let sd = Sessiond215::start_beside(&tmp.path().join("sessiond"), &[], &lock)?;
    let mut relay = Trelayd::start(tmp.path(), &[])?;
    let url = format!(
        "--set-url=net://127.0.0.1:{}:{}",
        relay.ports.control, relay.ports.data
    );
    let tag = trelay_integration::unique("mix");
    let work = Workload::python(tmp.path(), &tag)?;
    let work215 = sd.python(tmp.path(), &tag)?;
    let (old, c18, c2) = (format!("{tag}a"), format!("{tag}b"), format!("{tag}c"));
    let debian = |a: &[&str]| lttng(a);
    let bundle = |a: &[&str]| sd.lttng(a);
    session(&debian, &old, &url, &[], &work).with_context(|| relay.log_tail())?;
    let _guard = SessionGuard(old.clone());
    session(&bundle, &c18, &url, &["--trace-format=ctf-1.8"], &work)
        .with_context(|| relay.log_tail())?;
    session(&bundle, &c2, &url, &["--trace-format=ctf-2"], &work)
        .with_context(|| relay.log_tail())?;

    let bt21 = sd.bundle.bin("babeltrace2");
    let bt20 = PathBuf::from("babeltrace2");
    let port = relay.ports.live;
    for name in [&old, &c18, &c2] {
        wait_listed(&bt21, port, name).with_context(|| relay.log_tail())?;
    }
    let listed = listing(&bt20, port)?;
    ensure!(
        listed.contains(&format!("/{old} ")) && listed.contains(&format!("/{c18} ")),
        "babeltrace2 2.0 does not list the CTF 1.8 sessions: {listed}"
    );
    ensure!(
        !listed.contains(&format!("/{c2} ")),
        "babeltrace2 2.0 was offered the CTF 2 session: {listed}"
    );
    let live = tmp.path().join("live");
    let mut follow2 = LiveBabeltrace::start_bin(&bt21, &live, "c2", port, &hostname(), &c2)?;
    let mut follow_old = LiveBabeltrace::start_bin(&bt20, &live, "old", port, &hostname(), &old)?;
    let mut follow_old21 =
        LiveBabeltrace::start_bin(&bt21, &live, "old21", port, &hostname(), &old)?;
    let mut follow18 = LiveBabeltrace::start_bin(&bt20, &live, "c18", port, &hostname(), &c18)?;

    // The three sessions at once: one process traced by 2.13, one by 2.15 (both of its sessions).
    let mut a = work.spawn(&["-c", WORKLOAD, "300"])?;
    let mut b = work215.spawn(&["-c", WORKLOAD, "300"])?;
    ensure!(
        a.wait()?.success() && b.wait()?.success(),
        "a workload failed"
    );
    for name in [&c18, &c2] {
        sd.lttng(&["stop", name])?;
        sd.lttng(&["destroy", name])?;
    }
    lttng(&["stop", &old])?;
    lttng(&["destroy", &old])?;
    let live2 = follow2.wait(Duration::from_secs(90))?;
    let live_old = follow_old.wait(Duration::from_secs(90))?;
    let live_old21 = follow_old21.wait(Duration::from_secs(90))?;
    let live18 = follow18.wait(Duration::from_secs(90))?;
    relay.stop_ok()?;

    let read = |bt: &Path, name: &str| -> Result<Vec<String>> {
        let out = std::process::Command::new(bt)
            .arg(trace_of(&relay.out, name)?)
            .env("TZ", "UTC")
            .output()?;
        ensure!(
            out.status.success(),
            "{} on {name}: {}",
            bt.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(trelay_integration::normalize(&String::from_utf8_lossy(
            &out.stdout,
        )))
    };
    let (e_old, e18, e2) = (read(&bt21, &old)?, read(&bt21, &c18)?, read(&bt21, &c2)?);
    ensure!(e_old.len() >= 600, "2.13 session: {} events", e_old.len());
    ensure!(
        e18.len() >= 600,
        "2.15 CTF 1.8 session: {} events",
        e18.len()
    );
    ensure!(
        e18 == e2,
        "the CTF 1.8 and CTF 2 recordings of one process differ: {} and {} events",
        e18.len(),
        e2.len()
    );
    ensure!(
        read(&bt20, &old)? == e_old,
        "babeltrace2 2.0 reads the 2.13 session otherwise"
    );
    ensure!(
        read(&bt20, &c18)? == e18,
        "babeltrace2 2.0 reads the 2.15 CTF 1.8 session otherwise"
    );
    ensure!(
        trelay_integration::normalize(&live2) == e2,
        "CTF 2 followed live differs"
    );
    ensure!(
        trelay_integration::normalize(&live_old) == e_old,
        "2.13 followed live by babeltrace2 2.0 differs"
    );
    ensure!(
        trelay_integration::normalize(&live_old21) == e_old,
        "2.13 followed live by babeltrace2 2.1 differs"
    );
    ensure!(
        trelay_integration::normalize(&live18) == e18,
        "2.15 CTF 1.8 followed live by babeltrace2 2.0 differs"
    );
    let log = relay.log_text();
    ensure!(
        !log.contains(" ERROR "),
        "trelayd logged errors:\n{}",
        relay.log_tail()
    );
    Ok(())
}
