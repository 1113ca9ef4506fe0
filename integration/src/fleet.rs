//! A fleet of senders for the multi-relay tests: synthetic traces (one per host, each on its own
//! clock offset so their packets interleave in time) shipped as live sessions to relays by the
//! consumer library's `follow`, which ends the session after an idle period.

use anyhow::Result;
use std::path::{Path, PathBuf};
use std::time::Duration;
use trelay_consumer::ship::{follow, FollowOptions, ShipReport};
use trelay_consumer::synth::{write_trace_dir, SynthTrace};
use trelay_consumer::url::RelayUrl;

use crate::relay::Ports;

/// One host's trace, written locally.
#[derive(Debug, Clone)]
pub struct HostTrace {
    /// The local trace folder (what is shipped).
    pub dir: PathBuf,
    /// The traced host's name.
    pub host: String,
    /// The clock offset of its trace, seconds since the Epoch.
    pub offset_s: u64,
    /// Events written.
    pub events: u64,
}

/// Writes the trace of `host` under `root/host`: `streams` streams of `packets` packets, its
/// clock `offset_s` seconds from the Epoch.
pub fn host_trace(
    root: &Path,
    host: &str,
    session: &str,
    offset_s: u64,
    streams: u32,
    packets: u64,
) -> Result<HostTrace> {
    let mut t = SynthTrace::new(host, session, 4096);
    t.params.clock_offset_s = offset_s;
    let dir = root.join(host);
    let events = write_trace_dir(&t, &dir.join("ust/uid/0/64-bit"), streams, packets)?;
    Ok(HostTrace {
        dir,
        host: host.to_owned(),
        offset_s,
        events,
    })
}

/// Ships `trace` as live session `session` to the relay on `ports` from a thread of its own;
/// the session ends after `idle` without new data.
pub fn ship_live(
    trace: &HostTrace,
    session: &str,
    ports: Ports,
    idle: Duration,
) -> std::thread::JoinHandle<Result<ShipReport>> {
    let url = RelayUrl {
        host: "127.0.0.1".into(),
        control_port: ports.control,
        data_port: ports.data,
        native: false,
    };
    let mut o = FollowOptions::new(trace.dir.clone(), url);
    o.session = Some(session.to_owned());
    o.hostname = Some(trace.host.clone());
    o.live_timer_us = 100_000;
    o.idle_timeout = Some(idle);
    o.watch_session = false;
    o.progress = false;
    o.poll = Duration::from_millis(50);
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(rt.block_on(follow(&o, std::future::pending()))?)
    })
}

/// Makes `local` a copy of the synthetic trace `full` (`streams` streams of `packets`
/// packets, stream files `channel0_N`) that grows in `steps` steps 150 ms apart, data before
/// index, like a tracer writing it.
pub fn grow(full: &Path, local: &Path, streams: u32, packets: u64, steps: u64) {
    let sub = "ust/uid/0/64-bit";
    let (src, dst) = (full.join(sub), local.join(sub));
    std::fs::create_dir_all(dst.join("index")).unwrap();
    std::fs::copy(src.join("metadata"), dst.join("metadata")).unwrap();
    let per = packets.div_ceil(steps);
    for step in 0..steps {
        for s in 0..streams {
            let name = format!("channel0_{s}");
            let data = std::fs::read(src.join(&name)).unwrap();
            let idx = std::fs::read(src.join("index").join(format!("{name}.idx"))).unwrap();
            let entry = u32::from_be_bytes(idx[12..16].try_into().unwrap()) as usize;
            let pkt = data.len() as u64 / packets;
            let (a, b) = (step * per, ((step + 1) * per).min(packets));
            use std::io::Write;
            let mut d = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dst.join(&name))
                .unwrap();
            d.write_all(&data[(a * pkt) as usize..(b * pkt) as usize])
                .unwrap();
            let mut i = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dst.join("index").join(format!("{name}.idx")))
                .unwrap();
            if step == 0 {
                i.write_all(&idx[..16]).unwrap();
            }
            i.write_all(&idx[16 + a as usize * entry..16 + b as usize * entry])
                .unwrap();
        }
        std::thread::sleep(Duration::from_millis(150));
    }
}
