//! A real full disk: the relay writes into a small tmpfs mounted by the test, a session sends
//! more than the tmpfs holds, the relay holds the sender back, space is freed (the tmpfs grows),
//! the session goes on, and babeltrace2 reads every packet sent.

mod storage_support;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use storage_support::{entries, eventually, Relay};
use trelay_relayd::storage::fault::Faults;
use trelay_relayd::storage::RealFs;

/// Unmounts the tmpfs when the test ends, however it ends.
struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn mount_tmpfs(dir: &Path, size: &str) -> Result<Mount, String> {
    let out = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .output()
        .map_err(|e| format!("mount not runnable: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
    }
    Ok(Mount(dir.to_path_buf()))
}

fn resize(dir: &Path, size: &str) {
    let st = Command::new("mount")
        .args(["-o", &format!("remount,size={size}")])
        .arg(dir)
        .status()
        .unwrap();
    assert!(st.success(), "remount {size}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_larger_than_its_disk_waits_for_space_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let mount = match mount_tmpfs(&mnt, "4m") {
        Ok(m) => m,
        Err(why) => {
            println!("skipped: cannot mount a tmpfs here ({why})");
            return;
        }
    };
    let out = mnt.join("out");
    let relay = Relay::start_on(
        dir,
        out.clone(),
        RealFs::shared(),
        Arc::new(Faults::default()),
        |_| {},
    )
    .await;
    const INDEX: &str = "index/channel0_0.idx";
    let packet = 64 * 1024;
    let packets = (12 << 20) / packet as u64;
    let mut s = relay.session("bigger-than-disk", packet).await;
    s.send(16).await.unwrap();
    eventually("16 packets committed", || entries(&out, INDEX) == 16).await;
    let sender = tokio::spawn(async move {
        s.send(packets - 16).await?;
        Ok::<_, anyhow::Error>(s)
    });
    eventually("the relay finds the disk full", || {
        !relay.registry.disk_full().is_empty()
    })
    .await;
    let (_, episode) = relay.registry.disk_full().remove(0);
    assert!(episode.path.starts_with(&out), "{episode:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!sender.is_finished(), "the sender is held back");
    let committed = entries(&out, INDEX);
    assert!(
        (16..packets).contains(&committed),
        "{committed} of {packets} committed"
    );
    // While the disk is full, the committed part reads whole; the packets held back are not
    // indexed yet.
    let report = trelay_viewer::check::check(&out).unwrap();
    assert_eq!(report.entries, committed);
    assert!(
        report
            .problems
            .iter()
            .all(|p| p.what.contains("after the last indexed packet")),
        "{:#?}",
        report.problems
    );

    resize(&mnt, "64m");
    let s = tokio::time::timeout(Duration::from_secs(120), sender)
        .await
        .expect("the session goes on once space returns")
        .unwrap()
        .unwrap();
    let events = s.events;
    s.close().await.unwrap();
    assert!(relay.registry.disk_full().is_empty());
    assert_eq!(entries(&out, INDEX), packets, "every packet indexed once");
    let _keep = relay.stop().await;
    storage_support::assert_checks(&out);
    let text = trelay_integration::babeltrace(&out).expect("babeltrace2 reads the trace");
    assert_eq!(text.lines().count() as u64, events, "every event read");
    drop(mount);
}
