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
