//! Ingest throughput of trelayd in both durability modes (a bench command, not a timed test):
//!
//! ```sh
//! cargo test --release -p trelay-integration --test ingest_bench -- --ignored --nocapture
//! ```
//!
//! A raw sender pushes `STREAMS × PACKETS` packets of `PACKET` bytes on one data connection while
//! a control connection sends each packet's SEND_INDEX (the way lttng-consumerd does), for a live
//! session (a commit per index: the beacon path) and a non-live one (interval commits). The clock
//! stops once every index entry is committed on disk.

use anyhow::{ensure, Result};
use std::io::Write;
use std::time::{Duration, Instant};
use trelay_integration::client::{self, Control};
use trelay_integration::relay::{free_ports, LttngRelayd, Trelayd};

const STREAMS: u64 = 4;
const PACKETS: u64 = 1024;
const PACKET: usize = 256 * 1024;

/// The relay under test: trelayd in a durability mode, or the reference lttng-relayd.
enum Relay {
    Ours(Trelayd),
    Reference(LttngRelayd),
}

fn run(durability: &str, live_us: u32) -> Result<f64> {
    let tmp = tempfile::Builder::new()
        .prefix("trelay-bench-")
        .tempdir_in("/var/tmp")?;
    let mut relay = if durability == "lttng-relayd" {
        Relay::Reference(LttngRelayd::start(
            &tmp.path().join("out"),
            free_ports()?,
            &[],
        )?)
    } else {
        Relay::Ours(Trelayd::start(
            tmp.path(),
            &[&format!("--durability={durability}"), "-v"],
        )?)
    };
    let (ports, out) = match &relay {
        Relay::Ours(r) => (r.ports, r.out.clone()),
        Relay::Reference(r) => (r.ports, r.out.clone()),
    };
    let mut c = Control::connect(ports.control)?;
    c.handshake()?;
    let name = format!("b{live_us}");
    let (_, rc, path) =
        c.create_session(&client::create_session_payload(&name, "h", "", live_us))?;
    ensure!(rc == 10);
    ensure!(c.create_chunk(0, None)? == 10);
    let mut handles = Vec::new();
    for i in 0..STREAMS {
        handles.push(c.add_stream(&format!("chan_{i}"), "ust/uid/0/64-bit")?.0);
    }
    ensure!(c.status(16, &[])? == 10);
    let data_port = ports.data;
    let hs = handles.clone();
    let start = Instant::now();
    // The data connection stays open until the streams are closed: its end closes the session.
    let sender = std::thread::spawn(move || -> Result<std::net::TcpStream> {
        let mut d = client::data(data_port)?;
        let payload = client::packet(PACKET - 64);
        for seq in 0..PACKETS {
            for h in &hs {
                d.write_all(&client::data_header(*h, seq, (PACKET - 64) as u32, 64))?;
                d.write_all(&payload)?;
            }
        }
        Ok(d)
    });
    for seq in 0..PACKETS {
        for h in &handles {
            ensure!(c.status(13, &client::index_payload(*h, seq, PACKET as u64, seq))? == 10);
        }
    }
    let data_conn = sender
        .join()
        .map_err(|_| anyhow::anyhow!("sender panicked"))??;
    for h in &handles {
        let mut p = h.to_be_bytes().to_vec();
        p.extend_from_slice(&(PACKETS - 1).to_be_bytes());
        ensure!(c.status(7, &p)? == 10);
    }
    let dir = out.join(&path).join("ust/uid/0/64-bit/index");
    let want = 16 + 72 * PACKETS;
    trelay_integration::wait_for(Duration::from_secs(600), "every entry committed", || {
        (0..STREAMS).all(|i| {
            std::fs::metadata(dir.join(format!("chan_{i}.idx")))
                .map(|m| m.len() == want)
                .unwrap_or(false)
        })
    })?;
    let secs = start.elapsed().as_secs_f64();
    drop(data_conn);
    match &mut relay {
        Relay::Ours(r) => drop(r.stop()?),
        Relay::Reference(r) => r.stop()?,
    }
    Ok((STREAMS * PACKETS * PACKET as u64) as f64 / secs / (1 << 20) as f64)
}

#[test]
#[ignore = "bench command: run with --ignored --nocapture"]
fn ingest_throughput() -> Result<()> {
    for (durability, live) in [
        ("lttng-relayd", 0),
        ("none", 0),
        ("beacon", 0),
        ("lttng-relayd", 1_000_000),
        ("none", 1_000_000),
        ("beacon", 1_000_000),
    ] {
        let mbs = match run(durability, live) {
            Ok(v) => v,
            Err(e) if durability == "lttng-relayd" => {
                println!("relay=lttng-relayd live={:5}: failed: {e}", live > 0);
                continue;
            }
            Err(e) => return Err(e),
        };
        println!(
            "relay={durability:12} live={:5}: {mbs:8.1} MiB/s ({} MiB in {} packets of {} KiB)",
            live > 0,
            (STREAMS * PACKETS * PACKET as u64) >> 20,
            STREAMS * PACKETS,
            PACKET >> 10
        );
    }
    Ok(())
}
