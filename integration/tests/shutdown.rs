//! SIGTERM while a session is connected and nothing was committed yet (commit interval set very
//! long through the TOML config): trelayd must commit everything received and exit 0.

use anyhow::{ensure, Result};
use std::io::Write;
use trelay_integration::client::{self, Control};
use trelay_integration::relay::Trelayd;

#[test]
fn sigterm_commits_everything_received() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let config = tmp.path().join("trelay.toml");
    std::fs::write(
        &config,
        "commit_interval_ms = 3600000\ndurability = \"beacon\"\n",
    )?;
    let mut relay = Trelayd::start(tmp.path(), &["--config", config.to_str().unwrap_or("")])?;
    let mut c = Control::connect(relay.ports.control)?;
    c.handshake()?;
    let (_, rc, path) = c.create_session(&client::create_session_payload("term", "h", "", 0))?;
    ensure!(rc == 10 && path == "h/term-20261123-062223", "{rc} {path}");
    ensure!(c.create_chunk(0, None)? == 10);
    let (h, _) = c.add_stream("chan_0", "kernel")?;
    let mut d = client::data(relay.ports.data)?;
    for seq in 0..50u64 {
        // Kernel-style packet: padding sent inline, padding_size 0.
        d.write_all(&client::data_header(h, seq, 4096, 0))?;
        d.write_all(&client::packet(4096))?;
        ensure!(c.status(13, &client::index_payload(h, seq, 4096, seq))? == 10);
    }
    let data = relay.out.join("h/term-20261123-062223/kernel/chan_0");
    trelay_integration::wait_for(std::time::Duration::from_secs(20), "every packet", || {
        std::fs::metadata(&data)
            .map(|m| m.len() == 50 * 4096)
            .unwrap_or(false)
    })?;
    let idx = relay
        .out
        .join("h/term-20261123-062223/kernel/index/chan_0.idx");
    ensure!(
        std::fs::metadata(&idx)?.len() == 16,
        "entries visible before any commit"
    );
    ensure!(relay.stop()? == 0, "trelayd did not exit 0 on SIGTERM");
    ensure!(
        std::fs::metadata(&idx)?.len() == 16 + 50 * 72,
        "not every entry was committed"
    );
    ensure!(std::fs::metadata(data)?.len() == 50 * 4096);
    ensure!(relay
        .log_text()
        .contains("everything received is committed"));
    Ok(())
}

/// SIGTERM while an acknowledged SEND_INDEX still waits for its data: the control and data
/// connections drain independently, and the data connection must not stop reading (quiet for
/// 200 ms) while the data of an index the relay answered OK may still come. The data arrives
/// 600 ms after SIGTERM; the entry must be on disk and no loss recorded.
#[test]
fn sigterm_reads_the_data_of_every_acknowledged_index() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut relay = Trelayd::start(tmp.path(), &[])?;
    let mut c = Control::connect(relay.ports.control)?;
    c.handshake()?;
    let (_, rc, path) = c.create_session(&client::create_session_payload("late", "h", "", 0))?;
    ensure!(rc == 10, "{rc}");
    ensure!(c.create_chunk(0, None)? == 10);
    let (h, _) = c.add_stream("chan_0", "kernel")?;
    let mut d = client::data(relay.ports.data)?;
    d.write_all(&client::data_header(h, 0, 4096, 0))?;
    d.write_all(&client::packet(4096))?;
    ensure!(c.status(13, &client::index_payload(h, 0, 4096, 0))? == 10);
    // Packet 1's index is acknowledged before its data is sent.
    ensure!(c.status(13, &client::index_payload(h, 1, 4096, 1))? == 10);
    let pid = relay.pid().ok_or_else(|| anyhow::anyhow!("no pid"))?;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(pid)?),
        nix::sys::signal::Signal::SIGTERM,
    )?;
    // Longer than the drain's quiet limit: an independent data-side drain ends before this.
    std::thread::sleep(std::time::Duration::from_millis(600));
    d.write_all(&client::data_header(h, 1, 4096, 0))?;
    d.write_all(&client::packet(4096))?;
    drop(c);
    drop(d);
    ensure!(
        relay.stop()? == 0,
        "trelayd did not exit 0: {}",
        relay.log_tail()
    );
    let dir = relay.out.join(&path).join("kernel");
    let idx = std::fs::metadata(dir.join("index/chan_0.idx"))?.len();
    ensure!(
        idx == 16 + 2 * 72,
        "the acknowledged packet 1 is not indexed (index file of {idx} bytes): {}",
        relay.log_tail()
    );
    ensure!(std::fs::metadata(dir.join("chan_0"))?.len() == 2 * 4096);
    // No loss recorded: the index directory holds the index file only (no loss sidecar).
    let names: Vec<_> = std::fs::read_dir(dir.join("index"))?
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect();
    ensure!(names.len() == 1, "{names:?}");
    Ok(())
}

/// SIGTERM while 4 streams stream like a consumer daemon (each packet's data on the data
/// connection, then its SEND_INDEX): every packet whose SEND_INDEX was answered OK is indexed on
/// disk, and data past the last indexed packet is recorded in the loss sidecar.
#[test]
fn sigterm_under_load_keeps_every_acknowledged_packet() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut relay = Trelayd::start(tmp.path(), &[])?;
    let mut c = Control::connect(relay.ports.control)?;
    c.handshake()?;
    let (_, rc, path) = c.create_session(&client::create_session_payload("load", "h", "", 0))?;
    ensure!(rc == 10, "{rc}");
    ensure!(c.create_chunk(0, None)? == 10);
    let mut handles = Vec::new();
    for n in 0..4 {
        handles.push(c.add_stream(&format!("chan_{n}"), "kernel")?.0);
    }
    let mut d = client::data(relay.ports.data)?;
    let pid = relay.pid().ok_or_else(|| anyhow::anyhow!("no pid"))?;
    let started = std::time::Instant::now();
    let mut signalled = false;
    let mut acked = [0u64; 4];
    let packet = client::packet(4096);
    'send: for seq in 0u64.. {
        if !signalled && started.elapsed() > std::time::Duration::from_millis(300) {
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(i32::try_from(pid)?),
                nix::sys::signal::Signal::SIGTERM,
            )?;
            signalled = true;
        }
        for h in &handles {
            if d.write_all(&client::data_header(*h, seq, 4096, 0)).is_err()
                || d.write_all(&packet).is_err()
            {
                break 'send;
            }
        }
        for (n, h) in handles.iter().enumerate() {
            match c.status(13, &client::index_payload(*h, seq, 4096, seq)) {
                Ok(10) => acked[n] = seq + 1,
                _ => break 'send,
            }
        }
    }
    drop(c);
    drop(d);
    ensure!(
        relay.stop()? == 0,
        "trelayd did not exit 0: {}",
        relay.log_tail()
    );
    let dir = relay.out.join(&path).join("kernel");
    for (n, acked) in acked.iter().enumerate() {
        let idx = std::fs::metadata(dir.join(format!("index/chan_{n}.idx")))?.len();
        let entries = (idx - 16) / 72;
        ensure!(
            entries >= *acked,
            "chan_{n}: {acked} packets acknowledged, {entries} indexed"
        );
        let data = std::fs::metadata(dir.join(format!("chan_{n}")))?.len();
        if data > entries * 4096 {
            let sidecars = std::fs::read_dir(dir.join("index"))?
                .filter_map(|e| e.ok())
                .filter(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.starts_with(&format!("chan_{n}")) && !name.ends_with(".idx")
                })
                .count();
            ensure!(
                sidecars > 0,
                "chan_{n}: {} bytes past the last indexed packet, no loss sidecar",
                data - entries * 4096
            );
        }
    }
    ensure!(acked.iter().all(|a| *a > 0), "nothing was sent: {acked:?}");
    Ok(())
}
