//! `trelay-consumer bench` smoke test: short runs against lttng-relayd and trelayd whose output
//! babeltrace2 reads completely (one line per generated event). No timing is asserted.

mod consumer_support;

use anyhow::{ensure, Context, Result};
use consumer_support::*;
use std::time::Duration;
use trelay_consumer::bench::{bench, BenchOptions, BenchReport};
use trelay_integration::relay::{start_both, Ports};

fn run(
    p: Ports,
    pid: Option<u32>,
    streams: u32,
    (connections, sessions): (u32, u32),
    no_index: bool,
    session: &str,
) -> Result<BenchReport> {
    let o = BenchOptions {
        url: relay_url(p),
        tls: None,
        streams,
        packet_size: 4096,
        duration: Duration::from_millis(200),
        connections,
        sessions,
        no_index,
        index_window: 4,
        relay_pid: pid,
        session: session.into(),
        hostname: "benchhost".into(),
        label: None,
        trace_format: Default::default(),
    };
    Ok(runtime().block_on(bench(&o))?)
}

fn check(out: &std::path::Path, r: &BenchReport) -> Result<()> {
    ensure!(r.packets > 0 && r.bytes == r.packets * 4096, "{r:?}");
    ensure!(r.index == r.index_rtt_us.is_some(), "{r:?}");
    // One session directory per tracing session, one trace directory per connection.
    ensure!(r.relay_paths.len() == r.sessions as usize, "{r:?}");
    let (mut events, mut traces) = (0u64, 0u32);
    for path in &r.relay_paths {
        let dir = out.join(path);
        let text = bt(&dir).with_context(|| format!("babeltrace2 on {}", dir.display()))?;
        ensure!(
            text.lines().all(|l| l.contains("trelay:synthetic")),
            "unexpected event"
        );
        events += text.lines().count() as u64;
        traces += std::fs::read_dir(dir.join("ust/uid"))?.count() as u32;
    }
    if events != r.events {
        let sizes: Vec<String> = r
            .relay_paths
            .iter()
            .flat_map(|p| {
                let dir = out.join(p);
                files(&dir)
                    .iter()
                    .map(|f| {
                        let len = std::fs::metadata(dir.join(f)).map(|m| m.len()).unwrap_or(0);
                        format!("{p}/{} {len}", f.display())
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        anyhow::bail!(
            "babeltrace2 read {events} events, the bench sent {} ({r:?}); files: {sizes:?}",
            r.events
        );
    }
    ensure!(
        traces == r.connections,
        "{traces} trace dirs for {} connections",
        r.connections
    );
    Ok(())
}

#[test]
fn bench_output_is_readable_on_both_relays() -> Result<()> {
    let tmp = tempfile::Builder::new().prefix("trelay-cb-").tempdir()?;
    let (mut reference, mut ours) = start_both(tmp.path(), &[], &["--durability=none"])?;
    let runs = [(false, 2, (1, 1)), (true, 3, (2, 1)), (true, 4, (3, 2))];
    for (i, (no_index, streams, conns)) in runs.into_iter().enumerate() {
        let name = format!("b{i}");
        let r = run(reference.ports, None, streams, conns, no_index, &name)?;
        check(&reference.out, &r).context("lttng-relayd")?;
        let r = run(ours.ports, None, streams, conns, no_index, &name)?;
        check(&ours.out, &r).with_context(|| format!("trelayd\n{}", ours.log_tail()))?;
        ensure!(r.relay_cpu_s.is_none());
    }
    reference.stop()?;
    ours.stop_ok()?;
    Ok(())
}
