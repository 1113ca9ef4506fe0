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
