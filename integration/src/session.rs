//! The recording sessions the tests create on the real lttng-sessiond: streaming to a relay on
//! loopback, event rules keeping only one test's workload, and the contexts the comparisons use.

use crate::lttng::{lttng, SessionGuard, Workload};
use crate::relay::Ports;
use anyhow::Result;

/// Creates session `name` streaming to the relay at `ports` (`lttng create NAME
/// --set-url=net://127.0.0.1:CONTROL:DATA EXTRA`); the guard destroys it.
pub fn create_streaming(name: &str, ports: &Ports, extra: &[&str]) -> Result<SessionGuard> {
    let url = format!("--set-url=net://127.0.0.1:{}:{}", ports.control, ports.data);
    let mut args = vec!["create", name, &url];
    args.extend_from_slice(extra);
    lttng(&args)?;
    Ok(SessionGuard(name.to_owned()))
}

/// The filter keeping only `work`'s allocations of at least 100000 bytes (the recorded events
/// of the workloads).
pub fn large_allocs(work: &Workload) -> String {
    format!("{} && size >= 100000", work.filter())
}

/// `lttng enable-event -u -s NAME [-c CHANNEL] EVENTS --filter FILTER`.
pub fn enable_event(name: &str, channel: Option<&str>, events: &str, filter: &str) -> Result<()> {
    let mut args = vec!["enable-event", "-u", "-s", name];
    if let Some(ch) = channel {
        args.extend(["-c", ch]);
    }
    args.extend([events, "--filter", filter]);
    lttng(&args)?;
    Ok(())
}

/// `lttng add-context -u -s NAME [-c CHANNEL] -t vpid -t procname`.
pub fn add_vpid_procname(name: &str, channel: Option<&str>) -> Result<()> {
    let mut args = vec!["add-context", "-u", "-s", name];
    if let Some(ch) = channel {
        args.extend(["-c", ch]);
    }
    args.extend(["-t", "vpid", "-t", "procname"]);
    lttng(&args)?;
    Ok(())
}

/// Creates and starts session `name` streaming to `ports` (live with a 100 ms timer when `live`)
/// with one channel `c` of 8 × 64 KiB sub-buffers recording `work`'s mallocs of at least 100000
/// bytes: the small sub-buffers fill fast, so a steady workload commits many packets.
pub fn small_buffer_session(
    name: &str,
    ports: &Ports,
    live: bool,
    work: &Workload,
) -> Result<SessionGuard> {
    let extra: &[&str] = if live { &["--live=100000"] } else { &[] };
    let guard = create_streaming(name, ports, extra)?;
    lttng(&[
        "enable-channel",
        "-u",
        "-s",
        name,
        "c",
        "--subbuf-size=64K",
        "--num-subbuf=8",
    ])?;
    enable_event(
        name,
        Some("c"),
        "lttng_ust_libc:malloc",
        &large_allocs(work),
    )?;
    lttng(&["start", name])?;
    Ok(guard)
}
